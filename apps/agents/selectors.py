"""Reads of agents: what the user may see, the fleet inventory, and what an agent can reach."""

from __future__ import annotations

import json
from datetime import timedelta

from django.db import connection
from django.db.models import Max, Prefetch, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user

from apps.accounts.models import Membership, OrgRole, TeamRole, User
from apps.accounts.permissions import ROLE_PERMISSIONS, request_token, sees_every_team
from apps.accounts.selectors import team_list

from .models import Agent, AgentVersion, Channel, ChannelName

GRANT_CODENAMES = ["agents.promote_agent", "agents.run_agent", "agents.approve_agent"]


def agent_list(*, user, team=None, filters: dict | None = None) -> QuerySet[Agent]:
    """Return the agents the user may see: their teams' agents, plus agents granted to them one by one."""
    if user is None or not user.is_authenticated:
        return Agent.objects.none()
    visible = Q(team__in=team_list(user=user))
    if not sees_every_team(user) and request_token(user) is None:
        # A short list of ids, not a subquery: OR-ing a subquery makes PostgreSQL scan every agent.
        granted = get_objects_for_user(user, GRANT_CODENAMES, klass=Agent, any_perm=True, accept_global_perms=False)
        ids = list(granted.values_list("pk", flat=True))
        if ids:
            visible |= Q(pk__in=ids)
    qs = Agent.objects.filter(visible).select_related("team", "owner")
    if team is not None:
        qs = qs.filter(team=team)
    f = {k: v for k, v in (filters or {}).items() if v not in (None, "", [])}
    if "q" in f:
        text = f["q"]
        qs = qs.filter(Q(name__icontains=text) | Q(description__icontains=text) | Q(tags__icontains=text))
    if "team" in f:
        qs = qs.filter(team__slug=f["team"])
    if "status" in f:
        qs = qs.filter(status=f["status"])
    if "risk_tier" in f:
        qs = qs.filter(risk_tier=f["risk_tier"])
    if "owner" in f:
        qs = qs.filter(owner__username=f["owner"])
    if "tag" in f:
        qs = qs.filter(tags__icontains=f["tag"])
    # What the live channels reach, through a subquery: a join with DISTINCT fans out and sorts every row.
    if "model" in f:
        qs = qs.filter(pk__in=_live(version__model__name__icontains=f["model"]))
    if "tool" in f:
        qs = qs.filter(pk__in=_live(version__tool_versions__tool__name=f["tool"]))
    if "permission" in f:
        qs = qs.filter(pk__in=_live(**_has_label(f["permission"])))
    if "external" in f:
        qs = qs.filter(external=f["external"] in (True, "true", "1", "yes"))
    return qs.order_by("team__slug", "name")


def _live(**lookup):
    return Channel.objects.filter(**lookup).values("agent_id")


def _has_label(label: str) -> dict:
    """Return the lookup matching tool versions that require exactly this permission label."""
    if connection.vendor == "postgresql":
        return {"version__tool_versions__permissions_required__contains": [label]}
    # SQLite has no JSON containment; the quoted label matches one whole list item.
    return {"version__tool_versions__permissions_required__icontains": json.dumps(label)}


def agent_get(*, user, pk: int) -> Agent:
    try:
        return agent_list(user=user).get(pk=pk)
    except (Agent.DoesNotExist, ValueError):
        raise Http404("No such agent.") from None


def agent_version_get(*, agent: Agent, version: str) -> AgentVersion:
    try:
        return agent.versions.select_related("model__provider", "prompt_version__prompt").get(version=version)
    except AgentVersion.DoesNotExist:
        raise Http404(f"Agent {agent.name} has no version {version}.") from None


def agent_version_list(*, agent: Agent) -> QuerySet[AgentVersion]:
    return agent.versions.select_related("author", "model__provider").order_by("-major", "-minor", "-patch")


def channel_map(agent: Agent) -> dict[str, AgentVersion]:
    """Return {channel name: version} for the agent."""
    return {c.name: c.version for c in agent.channels.select_related("version")}


def inventory_list(*, user, filters: dict | None = None) -> QuerySet[Agent]:
    """Return the inventory's agents with their channels; rows come from inventory_rows()."""
    channels = Channel.objects.select_related("version__model__provider")
    return agent_list(user=user, filters=filters).prefetch_related(Prefetch("channels", queryset=channels))


def inventory_rows(agents) -> list[dict]:
    """Return inventory rows for a page of agents (from inventory_list) in one more query.

    Only the live version's tools matter (production, else staging), so they are read for those
    versions alone, as plain values.
    """
    agents = list(agents)
    live = {}
    for agent in agents:
        channels = {c.name: c.version for c in agent.channels.all()}
        live[agent.pk] = (channels, channels.get(ChannelName.PRODUCTION) or channels.get(ChannelName.STAGING))
    version_ids = [version.pk for _, version in live.values() if version is not None]
    through = AgentVersion.tool_versions.through
    tools_by_version: dict[int, list[dict]] = {}
    rows = (
        through.objects.filter(agentversion_id__in=version_ids)
        .values_list(
            "agentversion_id",
            "toolversion__tool__name",
            "toolversion__version",
            "toolversion__kind",
            "toolversion__side_effect",
            "toolversion__permissions_required",
            "toolversion__spec",
        )
        .order_by("toolversion__tool__name")
    )
    for version_id, name, version, kind, side_effect, permissions, spec in rows:
        tools_by_version.setdefault(version_id, []).append(
            {
                "name": name,
                "version": version,
                "kind": kind,
                "side_effect": side_effect,
                "permissions": permissions,
                "secrets": spec.get("secrets", []) if isinstance(spec, dict) else [],
            }
        )
    activity = _run_activity([agent.pk for agent in agents])
    result = []
    for agent in agents:
        channels, version = live[agent.pk]
        last_run_at, cost_7d = activity.get(agent.pk, (None, None))
        tools = tools_by_version.get(version.pk, []) if version else []
        secrets = {s for t in tools for s in t.pop("secrets")} | set(version.spec.get("secrets", []) if version else [])
        result.append(
            {
                "id": agent.pk,
                "team": agent.team.slug,
                "name": agent.name,
                "namespace": agent.team.slug,
                "full_name": f"{agent.team.slug}/{agent.name}",
                "owner": agent.owner.username if agent.owner else None,
                "status": agent.status,
                "risk_tier": agent.risk_tier,
                "data_classification": agent.data_classification,
                "external": agent.external,
                "production_version": channels[ChannelName.PRODUCTION].version
                if ChannelName.PRODUCTION in channels
                else None,
                "staging_version": channels[ChannelName.STAGING].version if ChannelName.STAGING in channels else None,
                "model": version.model.ref if version else None,
                "tools": tools,
                "permissions": sorted({p for t in tools for p in t["permissions"]}),
                "secrets": sorted(secrets),
                "last_run_at": last_run_at,
                "cost_7d_usd": float(cost_7d) if cost_7d is not None else 0.0,
            }
        )
    return result


def _run_activity(agent_ids: list[int]) -> dict[int, tuple]:
    """Return agent id -> (last run's start, cost of the last 7 days) through the runs relation, in one query."""
    if not agent_ids:
        return {}
    week_ago = timezone.now() - timedelta(days=7)
    rows = (
        Agent.objects.filter(pk__in=agent_ids)
        .annotate(
            last_run=Max("runs__created_at"),
            cost_7d=Sum("runs__cost_usd", filter=Q(runs__created_at__gte=week_ago)),
        )
        .values_list("pk", "last_run", "cost_7d")
    )
    return {pk: (last, cost) for pk, last, cost in rows}


def _reach(version: AgentVersion) -> dict:
    spec = version.spec
    return {
        "model": version.model.ref,
        "model_status": version.model.status,
        "tools": [
            {
                "name": tv.tool.name,
                "version": tv.version,
                "kind": tv.kind,
                "side_effect": tv.side_effect,
                "permissions": tv.permissions_required,
                "requires_approval": bool(tv.spec.get("requires_approval")),
                "secrets": tv.spec.get("secrets", []),
            }
            for tv in version.tool_versions.select_related("tool")
        ],
        "secrets": spec.get("secrets", []),
        "context_spaces": spec.get("memory", {}).get("context_spaces", []),
        "handoffs": [a.name for a in version.handoff_agents.all()],
    }


def agent_access(*, agent: Agent, version: AgentVersion | None = None) -> dict:
    """Answer "what can it reach" (transitively through handoffs) and "who can change, run, promote, approve it"."""
    root = version or _live_version_query(agent)
    direct = _reach(root) if root else None
    # Follow handoffs to the production (else staging) version of each target, once each.
    transitive, seen, frontier = [], {agent.pk}, list(root.handoff_agents.all()) if root else []
    while frontier:
        target = frontier.pop(0)
        if target.pk in seen:
            continue
        seen.add(target.pk)
        target_version = _live_version_query(target)
        entry = {"agent": target.name, "version": target_version.version if target_version else None}
        if target_version:
            entry.update(_reach(target_version))
            frontier.extend(target_version.handoff_agents.all())
        transitive.append(entry)
    everything = [direct] + [t for t in transitive if "tools" in t] if direct else []
    summary = {
        "permissions": sorted({p for r in everything for t in r["tools"] for p in t["permissions"]}),
        "secrets": sorted(
            {s for r in everything for s in r["secrets"]}
            | {s for r in everything for t in r["tools"] for s in t["secrets"]}
        ),
        "models": sorted({r["model"] for r in everything}),
        "context_spaces": sorted({f"{c['space']} ({c['access']})" for r in everything for c in r["context_spaces"]}),
        "tools": sorted({t["name"] for r in everything for t in r["tools"]}),
        "handoff_targets": [t["agent"] for t in transitive],
    }
    return {
        "version": root.version if root else None,
        "direct": direct,
        "through_handoffs": transitive,
        "summary": summary,
        "people": agent_people(agent=agent),
    }


def _live_version_query(agent: Agent) -> AgentVersion | None:
    channel = (
        Channel.objects.filter(agent=agent, name__in=[ChannelName.PRODUCTION, ChannelName.STAGING])
        .select_related("version__model__provider")
        .order_by("name")  # "production" sorts before "staging"
        .first()
    )
    return channel.version if channel else None


def agent_people(*, agent: Agent) -> dict[str, list[str]]:
    """Return who can change, run, promote and approve the agent, and through what."""
    from guardian.shortcuts import get_users_with_perms

    actions = {"change": "registry.edit", "run": "run.start", "promote": "agent.promote", "approve": "run.approve"}
    people: dict[str, list[str]] = {action: [] for action in actions}
    members = Membership.objects.filter(team=agent.team).select_related("user").order_by("user__username")
    for m in members:
        for action, perm in actions.items():
            if perm in ROLE_PERMISSIONS[m.role]:
                people[action].append(f"{m.user.username} ({TeamRole(m.role).label.lower()})")
    grants = get_users_with_perms(agent, attach_perms=True, with_group_users=False, with_superusers=False)
    codename_action = {"promote_agent": "promote", "run_agent": "run", "approve_agent": "approve"}
    for user, codes in grants.items():
        for code in codes:
            if code in codename_action:
                people[codename_action[code]].append(f"{user.username} (object grant)")
    admins = User.objects.filter(Q(org_role=OrgRole.PLATFORM_ADMIN) | Q(is_superuser=True), is_active=True)
    for admin in admins.order_by("username"):
        for action in actions:
            people[action].append(f"{admin.username} (platform admin)")
    return people


def studio_choices(*, team, agent: Agent | None = None) -> dict:
    """Return what the Studio offers: approved models, the team's prompts, tools and handoff targets."""
    from apps.catalog.models import Model, ModelStatus
    from apps.prompts.models import PromptLabel, PromptVersion
    from apps.tools.models import Tool

    models = Model.objects.filter(status=ModelStatus.APPROVED, provider__enabled=True).select_related("provider")
    prompt_versions = (
        PromptVersion.objects.filter(prompt__team=team)
        .select_related("prompt")
        .order_by("prompt__name", "-major", "-minor", "-patch")
    )
    labels = PromptLabel.objects.filter(prompt__team=team).select_related("prompt", "version")
    prompts = [
        (f"{label.prompt.name}@{label.name}", f"{label.prompt.name} @ {label.name} (now {label.version.version})")
        for label in labels
    ]
    prompts += [(pv.ref, pv.ref) for pv in prompt_versions]
    prompt_variables = {pv.ref: [v["name"] for v in pv.spec.get("variables", [])] for pv in prompt_versions}
    for label in labels:
        prompt_variables[f"{label.prompt.name}@{label.name}"] = [
            v["name"] for v in label.version.spec.get("variables", [])
        ]
    tools = []
    for tool in Tool.objects.filter(team=team, deprecated=False).prefetch_related("versions").order_by("name"):
        versions = sorted(tool.versions.all(), key=lambda v: (v.major, v.minor, v.patch), reverse=True)
        if versions:
            latest = versions[0]
            tools.append(
                {
                    "name": tool.name,
                    "latest": latest.version,
                    "kind": latest.get_kind_display(),
                    "side_effect": latest.side_effect,
                    "permissions": latest.permissions_required,
                    "requires_approval": bool(latest.spec.get("requires_approval")),
                    "description": tool.description or latest.spec.get("description", ""),
                }
            )
    handoffs = Agent.objects.filter(team=team, status="active").exclude(pk=agent.pk if agent else None).order_by("name")
    return {
        "models": [(m.ref, f"{m.ref} — ${m.input_price_per_mtok}/${m.output_price_per_mtok} per Mtok") for m in models],
        "prompts": prompts,
        "prompt_variables": prompt_variables,
        "tools": tools,
        "handoffs": [(a.name, a.name) for a in handoffs],
    }


def agent_grant_list(*, agent: Agent) -> list[dict]:
    """Return the object grants on the agent: [{user, permission}]."""
    from guardian.shortcuts import get_users_with_perms

    from apps.accounts.permissions import PERMISSIONS

    by_codename = {
        p.object_codename.split(".")[1]: p.name
        for p in PERMISSIONS.values()
        if (p.object_codename or "").startswith("agents.")
    }
    grants = get_users_with_perms(agent, attach_perms=True, with_group_users=False, with_superusers=False)
    return sorted(
        (
            {"user": u.username, "permission": by_codename[c]}
            for u, codes in grants.items()
            for c in codes
            if c in by_codename
        ),
        key=lambda g: (g["user"], g["permission"]),
    )
