"""Reads of the tool registry, filtered by what the user may see (another team's tool is a 404)."""

from __future__ import annotations

from django.db.models import CharField, F, JSONField, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.http import Http404

from apps.accounts.selectors import team_list
from apps.core.drafts import is_semver, latest_version, ref_split
from apps.core.exceptions import ServiceError

from .models import Tool, ToolVersion

FILTERS = ["team", "kind", "side_effect", "deprecated", "q"]


def _latest(field: str):
    rows = ToolVersion.objects.filter(tool=OuterRef("pk")).order_by("-major", "-minor", "-patch").values(field)[:1]
    return Subquery(rows)


def tool_list(*, user, filters: dict | None = None) -> QuerySet[Tool]:
    """Return the tools of the teams the user may see, with their latest version's facts annotated.

    kind, side_effect and permissions come from the latest published version, else from the draft.
    Filters: team (slug), kind, side_effect, deprecated (bool), q (name or description contains).
    """
    qs = (
        Tool.objects.filter(team__in=team_list(user=user))
        .select_related("team", "owner")
        .annotate(
            latest_version=_latest("version"),
            current_kind=Coalesce(_latest("kind"), KT("draft_spec__kind"), output_field=CharField()),
            current_side_effect=Coalesce(
                _latest("side_effect"), KT("draft_spec__side_effect"), output_field=CharField()
            ),
            latest_permissions=Subquery(
                ToolVersion.objects.filter(tool=OuterRef("pk"))
                .order_by("-major", "-minor", "-patch")
                .values("permissions_required")[:1],
                output_field=JSONField(),
            ),
        )
    )
    filters = filters or {}
    if filters.get("team"):
        qs = qs.filter(team__slug=filters["team"])
    if filters.get("kind"):
        qs = qs.filter(current_kind=filters["kind"])
    if filters.get("side_effect"):
        qs = qs.filter(current_side_effect=filters["side_effect"])
    if filters.get("deprecated") is not None:
        qs = qs.filter(deprecated=filters["deprecated"])
    if filters.get("q"):
        qs = qs.filter(Q(name__icontains=filters["q"]) | Q(description__icontains=filters["q"]))
    return qs.order_by("team__slug", "name")


def tool_get(*, user, pk) -> Tool:
    """Return the tool if the user may see it, else raise Http404."""
    try:
        return tool_list(user=user).get(pk=pk)
    except (Tool.DoesNotExist, ValueError, TypeError):
        raise Http404("No such tool.") from None


def tool_permissions(tool: Tool) -> list[str]:
    """Return the permissions the tool needs: its latest version's, else its draft's (no query)."""
    latest = getattr(tool, "latest_permissions", None)
    if latest is not None:
        return latest
    return list(tool.draft_spec.get("permissions_required", []))


def toolversion_list(*, tool: Tool) -> QuerySet[ToolVersion]:
    """Return the tool's published versions, newest first (the tool was read through tool_get)."""
    return tool.versions.select_related("author").order_by("-major", "-minor", "-patch")


def toolversion_get(*, tool: Tool, version: str) -> ToolVersion:
    """Return one published version of the tool, else raise Http404."""
    found = toolversion_list(tool=tool).filter(version=version).first()
    if found is None:
        raise Http404(f"No version {version} of {tool.name}.")
    return found


def tool_impact(*, tool: Tool) -> list[dict]:
    """Return, for each version of the tool, the agent versions using it and where they are live.

    Rows: {version, agent_versions: [{agent, agent_id, version, live: ["staging", "production"]}]}.
    """
    from apps.agents.models import AgentVersion, Channel

    versions = list(toolversion_list(tool=tool))
    users = (
        AgentVersion.objects.filter(tool_versions__in=versions, agent__team=tool.team)
        .select_related("agent")
        .annotate(tool_version_id=F("tool_versions__id"))
        .order_by("agent__name", "-major", "-minor", "-patch")
    )
    users = list(users)
    live: dict[int, list[str]] = {}
    for channel in Channel.objects.filter(version__in=[av.pk for av in users]).order_by("name"):
        live.setdefault(channel.version_id, []).append(channel.name)
    by_version: dict[int, list[dict]] = {}
    for av in users:
        by_version.setdefault(av.tool_version_id, []).append(
            {"agent": av.agent.name, "agent_id": av.agent_id, "version": av.version, "live": live.get(av.pk, [])}
        )
    return [{"version": v, "agent_versions": by_version.get(v.pk, [])} for v in versions]


def tool_version_resolve(*, team, ref: str) -> ToolVersion:
    """Return the tool version a reference names within the team, for a new agent version.

    ref is "name@1.2.0", or "name" for the latest published version. Another team's tool is
    "not found" like a missing one; a deprecated tool is refused.
    """
    name, version = ref_split(ref)
    tool = Tool.objects.filter(team=team, name=name).first()
    if tool is None:
        raise ServiceError(
            f"No tool named '{name}' in team {team.slug}: check the name or create the tool.", field="ref"
        )
    if tool.deprecated:
        raise ServiceError(f"Tool {name} is deprecated: pick another tool or undeprecate it.", field="ref")
    if version is None:
        found = latest_version(tool.versions.all())
        if found is None:
            raise ServiceError(f"Tool {name} has no published version yet: publish its draft first.", field="ref")
    else:
        if not is_semver(version):
            raise ServiceError(f"'{version[:40]}' is not a version like 1.2.0.", field="version")
        found = tool.versions.filter(version=version).first()
        if found is None:
            latest = latest_version(tool.versions.all())
            hint = f" (latest is {latest.version})" if latest else " (it has no published version yet)"
            raise ServiceError(f"Tool {name} has no version {version}{hint}.", field="version")
    found.tool = tool
    return found
