"""Writes for agents: create, edit the draft, publish, promote, roll back, retire, import.

Each checks permission once, validates fully before writing, and audits in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Team, User
from apps.accounts.permissions import require
from apps.audit.services import audit_record, snapshot
from apps.core.exceptions import ServiceError
from apps.core.specs import load_document
from apps.core.validation import full_clean_or_error
from apps.core.versioning import version_publish

from .models import Agent, AgentStatus, AgentVersion, Channel, ChannelName, DataClassification, Promotion, RiskTier
from .specs import agent_spec_empty, agent_spec_validate_shape

AGENT_FIELDS = ["name", "description", "tags", "risk_tier", "data_classification", "status"]
_META_FIELDS = {"description", "tags", "risk_tier", "data_classification", "owner"}


@dataclass
class ResolvedSpec:
    """An agent spec with every reference resolved, ready to publish."""

    spec: dict
    model: object = None
    prompt_version: object = None
    tool_versions: list = field(default_factory=list)
    handoff_agents: list = field(default_factory=list)
    secrets: list = field(default_factory=list)


def _prefixed(exc: ServiceError, where: str) -> ServiceError:
    return ServiceError(
        exc.message, field=where if not exc.field or exc.field in {"ref", "version"} else f"{where}.{exc.field}"
    )


def agent_spec_resolve(*, team: Team, agent: Agent | None, spec) -> ResolvedSpec:
    """Validate the spec's shape and every reference it makes within the team; pin tool versions."""
    from apps.catalog.selectors import model_check_selectable, model_resolve
    from apps.governance.models import GranteeType, SecretGrant
    from apps.governance.services import secret_resolve
    from apps.prompts.selectors import prompt_version_resolve
    from apps.tools.selectors import tool_version_resolve

    spec = agent_spec_validate_shape(spec)
    resolved = ResolvedSpec(spec=spec)
    try:
        resolved.model = model_resolve(ref=spec["model"])
        model_check_selectable(model=resolved.model)
    except ServiceError as exc:
        raise ServiceError(exc.message, field="model") from None
    prompt = spec["prompt"]
    if prompt.get("ref"):
        try:
            resolved.prompt_version = prompt_version_resolve(team=team, ref=prompt["ref"])
        except ServiceError as exc:
            raise ServiceError(exc.message, field="prompt.ref") from None
        declared = {v["name"]: v for v in resolved.prompt_version.spec.get("variables", [])}
        unknown = sorted(set(prompt["variables"]) - set(declared))
        if unknown:
            raise ServiceError(
                f"The prompt {resolved.prompt_version.ref} has no variable {', '.join(unknown)}.",
                field="prompt.variables",
            )
        # The pinned version is what runs, whatever the label says later.
        spec["prompt"] = {**prompt, "ref": resolved.prompt_version.ref, "inline": None}
    pinned = []
    for i, ref in enumerate(spec["tools"]):
        try:
            tool_version = tool_version_resolve(team=team, ref=ref)
        except ServiceError as exc:
            raise ServiceError(exc.message, field=f"tools[{i}]") from None
        resolved.tool_versions.append(tool_version)
        pinned.append(tool_version.ref)
    spec["tools"] = pinned
    for i, name in enumerate(spec["handoffs"]):
        target = Agent.objects.filter(team=team, name=name).first()
        if target is None:
            raise ServiceError(f"No agent named '{name}' in team {team.slug}.", field=f"handoffs[{i}]")
        if agent is not None and target.pk == agent.pk:
            raise ServiceError("An agent cannot hand off to itself.", field=f"handoffs[{i}]")
        if target.status == AgentStatus.RETIRED:
            raise ServiceError(f"Agent '{name}' is retired: it cannot receive handoffs.", field=f"handoffs[{i}]")
        resolved.handoff_agents.append(target)
    for i, name in enumerate(spec["secrets"]):
        try:
            secret = secret_resolve(team=team, name=name)
        except ServiceError as exc:
            raise ServiceError(exc.message, field=f"secrets[{i}]") from None
        granted = (
            agent is not None
            and SecretGrant.objects.filter(secret=secret, grantee_type=GranteeType.AGENT, grantee_id=agent.pk).exists()
        )
        if not granted:
            raise ServiceError(
                f"Secret '{name}' is not granted to this agent: a team owner grants it under Secrets.",
                field=f"secrets[{i}]",
            )
        resolved.secrets.append(secret)
    return resolved


def _clean_meta(team: Team, data: dict) -> dict:
    meta = {}
    if "description" in data:
        if len(data["description"] or "") > 2000:
            raise ServiceError("The description is too long: at most 2000 characters.", field="description")
        meta["description"] = data["description"] or ""
    if "tags" in data:
        tags = data["tags"] or []
        if (
            not isinstance(tags, list)
            or not all(isinstance(t, str) and 0 < len(t) <= 40 for t in tags)
            or len(tags) > 20
        ):
            raise ServiceError("Tags are a list of at most 20 words of up to 40 characters.", field="tags")
        meta["tags"] = sorted({t.strip().lower() for t in tags if t.strip()})
    if "risk_tier" in data:
        if data["risk_tier"] not in RiskTier.values:
            raise ServiceError(f"Risk tier must be one of {', '.join(RiskTier.values)}.", field="risk_tier")
        meta["risk_tier"] = data["risk_tier"]
    if "data_classification" in data:
        if data["data_classification"] not in DataClassification.values:
            raise ServiceError(
                f"Data classification must be one of {', '.join(DataClassification.values)}.",
                field="data_classification",
            )
        meta["data_classification"] = data["data_classification"]
    if "owner" in data and data["owner"] is not None:
        owner = data["owner"]
        if not isinstance(owner, User):
            owner = User.objects.filter(username=owner, is_active=True).first()
        if owner is None or not owner.memberships.filter(team=team).exists():
            raise ServiceError("The owner must be an active member of the agent's team.", field="owner")
        meta["owner"] = owner
    return meta


def agent_create(*, actor, team: Team, name: str, draft_spec: dict | None = None, **meta) -> Agent:
    """Create an agent in the team with an empty (or given) draft."""
    require(actor, "registry.edit", team)
    cleaned = _clean_meta(team, meta)
    cleaned.setdefault("owner", actor if actor.memberships.filter(team=team).exists() else None)
    agent = Agent(team=team, name=(name or "").strip(), **cleaned)
    full_clean_or_error(agent, exclude=["draft_spec", "owner"])
    if Agent.objects.filter(team=team, name=agent.name).exists():
        raise ServiceError(f"Team {team.slug} already has an agent named '{agent.name}'.", field="name")
    if draft_spec is not None:
        agent.draft_spec = agent_spec_resolve(team=team, agent=None, spec=draft_spec).spec
    else:
        agent.draft_spec = agent_spec_empty()
    try:
        with transaction.atomic():
            agent.save()
            audit_record(actor=actor, action="agent.create", obj=agent, team=team, after=snapshot(agent, AGENT_FIELDS))
    except IntegrityError:
        raise ServiceError(f"Team {team.slug} already has an agent named '{agent.name}'.", field="name") from None
    return agent


def agent_update(*, actor, agent: Agent, **changes) -> Agent:
    """Change an agent's description, tags, risk tier, data classification or owner."""
    require(actor, "registry.edit", agent.team, obj=agent)
    unknown = set(changes) - _META_FIELDS
    if unknown:
        raise ServiceError(f"These fields cannot be changed here: {', '.join(sorted(unknown))}.")
    cleaned = _clean_meta(agent.team, changes)
    before = {**snapshot(agent, AGENT_FIELDS), "owner": agent.owner.username if agent.owner else None}
    for key, value in cleaned.items():
        setattr(agent, key, value)
    agent.updated_at = timezone.now()
    with transaction.atomic():
        agent.save()
        after = {**snapshot(agent, AGENT_FIELDS), "owner": agent.owner.username if agent.owner else None}
        audit_record(actor=actor, action="agent.update", obj=agent, before=before, after=after)
    return agent


def agent_set_budget(*, actor, agent: Agent, daily_budget_usd) -> Agent:
    """Set the agent's daily budget in USD (0 for none); runs stop before spending beyond it."""
    require(actor, "team.change", agent.team)
    try:
        value = Decimal(str(daily_budget_usd)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise ServiceError(
            "The daily budget must be a number of US dollars, e.g. 25.00.", field="daily_budget_usd"
        ) from None
    if value < 0 or value > Decimal("1000000"):
        raise ServiceError(
            "The daily budget must be between 0 (no budget) and 1,000,000 USD.", field="daily_budget_usd"
        )
    before = {"daily_budget_usd": str(agent.daily_budget_usd)}
    with transaction.atomic():
        agent.daily_budget_usd = value
        agent.updated_at = timezone.now()
        agent.save(update_fields=["daily_budget_usd", "updated_at"])
        audit_record(
            actor=actor, action="agent.set_budget", obj=agent, before=before, after={"daily_budget_usd": str(value)}
        )
    return agent


def agent_update_draft(*, actor, agent: Agent, spec: dict) -> Agent:
    """Replace the agent's draft with spec, validated completely (nothing saved when invalid)."""
    require(actor, "registry.edit", agent.team, obj=agent)
    if agent.status == AgentStatus.RETIRED:
        raise ServiceError("This agent is retired: its draft can no longer change.")
    resolved = agent_spec_resolve(team=agent.team, agent=agent, spec=spec)
    with transaction.atomic():
        agent.draft_spec = resolved.spec
        agent.updated_at = timezone.now()
        agent.save(update_fields=["draft_spec", "updated_at"])
        audit_record(actor=actor, action="agent.update_draft", obj=agent, after={"draft_spec": resolved.spec})
    return agent


def agent_publish(*, actor, agent: Agent, version: str, notes: str = "") -> AgentVersion:
    """Freeze the draft as a new immutable version (semver must increase; references pinned)."""
    require(actor, "registry.edit", agent.team, obj=agent)
    if agent.status == AgentStatus.RETIRED:
        raise ServiceError("This agent is retired: it cannot publish new versions.")
    resolved = agent_spec_resolve(team=agent.team, agent=agent, spec=agent.draft_spec)

    def create(**fields):
        row = AgentVersion.objects.create(
            agent=agent, model=resolved.model, prompt_version=resolved.prompt_version, **fields
        )
        row.tool_versions.set(resolved.tool_versions)
        row.handoff_agents.set(resolved.handoff_agents)
        return row

    with transaction.atomic():
        row = version_publish(
            actor=actor,
            parent=agent,
            versions=agent.versions.all(),
            spec=resolved.spec,
            version=version,
            notes=notes,
            create=create,
            action="agent.publish",
            team=agent.team,
        )
        Agent.objects.filter(pk=agent.pk).update(draft_spec=resolved.spec, updated_at=timezone.now())
    return row


def _check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) < 2:
        raise ServiceError("Say why, in a few words: the promotion history keeps it.", field="reason")
    if len(reason) > 500:
        raise ServiceError("The reason is too long: at most 500 characters.", field="reason")
    return reason


def _move_channel(
    *, actor, agent: Agent, channel: str, version: AgentVersion, reason: str, rollback: bool
) -> Promotion:
    if channel not in ChannelName.values:
        raise ServiceError(f"Channel must be one of {', '.join(ChannelName.values)}.", field="channel")
    if version.agent_id != agent.pk:
        raise ServiceError("That version belongs to another agent.", field="version")
    if agent.status == AgentStatus.RETIRED:
        raise ServiceError("This agent is retired: its channels can no longer move.")
    reason = _check_reason(reason)
    with transaction.atomic():
        current = Channel.objects.select_for_update().filter(agent=agent, name=channel).first()
        from_version = current.version if current else None
        if from_version is not None and from_version.pk == version.pk:
            raise ServiceError(f"{channel} already runs {version.version}.", field="version")
        if current is None:
            Channel.objects.create(agent=agent, name=channel, version=version, updated_by=actor)
        else:
            current.version = version
            current.updated_by = actor
            current.updated_at = timezone.now()
            current.save(update_fields=["version", "updated_by", "updated_at"])
        promotion = Promotion.objects.create(
            agent=agent,
            channel=channel,
            from_version=from_version,
            to_version=version,
            is_rollback=rollback,
            actor=actor,
            reason=reason,
        )
        audit_record(
            actor=actor,
            action="agent.rollback" if rollback else "agent.promote",
            obj=agent,
            before={"channel": channel, "version": from_version.version if from_version else None},
            after={"channel": channel, "version": version.version, "reason": reason},
        )
    return promotion


def _require_channel_perm(actor, agent: Agent, channel: str) -> None:
    # Staging is the builders' to move; production needs the owner role or an object grant.
    require(actor, "agent.promote" if channel == ChannelName.PRODUCTION else "registry.edit", agent.team, obj=agent)


def agent_promote(*, actor, agent: Agent, version: AgentVersion, channel: str, reason: str) -> Promotion:
    """Point a channel (staging or production) at a published version, recording who and why."""
    _require_channel_perm(actor, agent, channel)
    return _move_channel(actor=actor, agent=agent, channel=channel, version=version, reason=reason, rollback=False)


def agent_rollback(*, actor, agent: Agent, channel: str, reason: str, version: AgentVersion | None = None) -> Promotion:
    """Promote an earlier version again: the one the channel ran before, unless one is named."""
    _require_channel_perm(actor, agent, channel)
    if version is None:
        current = Channel.objects.filter(agent=agent, name=channel).select_related("version").first()
        if current is None:
            raise ServiceError(f"Nothing runs in {channel} yet: there is nothing to roll back.", field="channel")
        previous = (
            Promotion.objects.filter(
                agent=agent, channel=channel, to_version=current.version, from_version__isnull=False
            )
            .select_related("from_version")
            .first()
        )
        if previous is None:
            raise ServiceError(
                f"{channel} has run no other version: name the version to roll back to.", field="version"
            )
        version = previous.from_version
    return _move_channel(actor=actor, agent=agent, channel=channel, version=version, reason=reason, rollback=True)


def agent_retire(*, actor, agent: Agent, reason: str) -> Agent:
    """Retire the agent: it keeps its history but runs no more and cannot change."""
    require(actor, "agent.promote", agent.team, obj=agent)
    reason = _check_reason(reason)
    if agent.status == AgentStatus.RETIRED:
        raise ServiceError("This agent is already retired.")
    with transaction.atomic():
        agent.status = AgentStatus.RETIRED
        agent.retired_at = timezone.now()
        agent.save(update_fields=["status", "retired_at"])
        audit_record(actor=actor, action="agent.retire", obj=agent, after={"status": "retired", "reason": reason})
    return agent


AGENT_METADATA = [
    ("name", str),
    ("description", str),
    ("owner", str),
    ("tags", list),
    ("risk_tier", str),
    ("data_classification", str),
]


def agent_import(*, actor, team: Team, text: str | bytes, publish_version: str | None = None, notes: str = "") -> Agent:
    """Create or update an agent from a spec file; validate everything before writing anything."""
    from apps.core.specs import SpecField, validate_spec

    require(actor, "registry.edit", team)
    metadata, spec = load_document(text, kind="Agent")
    metadata = validate_spec(
        metadata,
        [
            SpecField("name", str, required=True, max_length=63),
            SpecField("team", str),
            SpecField("description", str, default="", max_length=2000),
            SpecField("owner", str),
            SpecField("tags", list, default=list, item_type=str),
            SpecField("risk_tier", str, default=RiskTier.LOW, choices=RiskTier.values),
            SpecField(
                "data_classification", str, default=DataClassification.INTERNAL, choices=DataClassification.values
            ),
        ],
        "metadata",
    )
    if metadata.get("team") and metadata["team"] != team.slug:
        raise ServiceError(
            f"The file is for team '{metadata['team']}' but you are importing into '{team.slug}'.",
            field="metadata.team",
        )
    existing = Agent.objects.filter(team=team, name=metadata["name"]).first()
    meta = {k: metadata[k] for k in ("description", "tags", "risk_tier", "data_classification") if k in metadata}
    if metadata.get("owner"):
        meta["owner"] = metadata["owner"]
    with transaction.atomic():
        if existing is None:
            agent = agent_create(actor=actor, team=team, name=metadata["name"], **meta)
        else:
            agent = agent_update(actor=actor, agent=existing, **meta)
        agent = agent_update_draft(actor=actor, agent=agent, spec=spec)
        if publish_version:
            agent_publish(
                actor=actor, agent=agent, version=publish_version, notes=notes or "Imported from a spec file."
            )
    return agent


def agent_document_metadata(agent: Agent) -> dict:
    """Return the metadata block of the agent's spec file."""
    return {
        "name": agent.name,
        "team": agent.team.slug,
        "description": agent.description,
        "owner": agent.owner.username if agent.owner else None,
        "tags": agent.tags,
        "risk_tier": agent.risk_tier,
        "data_classification": agent.data_classification,
    }


def agent_grant_change(*, actor, agent: Agent, user: User, perm: str, grant: bool) -> None:
    """Give (or take back) one person a permission on this one agent: promote, run or approve.

    For people outside the team's roles, e.g. an operator of another team approving this agent's
    tool calls. Team owners decide, as they do for memberships.
    """
    from guardian.shortcuts import assign_perm, remove_perm

    from apps.accounts.permissions import PERMISSIONS

    require(actor, "membership.manage", agent.team)
    spec = PERMISSIONS.get(perm)
    if spec is None or not spec.object_codename or not spec.object_codename.startswith("agents."):
        choices = ", ".join(p.name for p in PERMISSIONS.values() if (p.object_codename or "").startswith("agents."))
        raise ServiceError(f"'{perm}' cannot be granted on an agent: use one of {choices}.", field="permission")
    detail = {"user": user.username, "permission": perm}
    with transaction.atomic():
        (assign_perm if grant else remove_perm)(spec.object_codename, user, agent)
        audit_record(
            actor=actor,
            action="agent.grant_add" if grant else "agent.grant_remove",
            obj=agent,
            after=detail if grant else None,
            before=None if grant else detail,
        )


def agent_register_external(*, team: Team, name: str, actor_label: str) -> Agent:
    """Return the team's agent of that name, registering it as an external agent when it is new.

    Called when telemetry (OTLP ingest) names an agent the registry does not know yet. It acts as
    the system actor given (e.g. "ingest:fdk_1a2b3c4d"), without a permission check of its own: the
    caller authenticated a token holding telemetry.ingest on the team. Safe under concurrency: two
    requests registering the same name get the same agent (the unique team+name constraint decides).
    """
    existing = Agent.objects.filter(team=team, name=name).first()
    if existing is not None:
        return existing
    agent = Agent(
        team=team,
        name=name,
        external=True,
        status=AgentStatus.ACTIVE,
        description=f"Runs elsewhere; registered when its telemetry first arrived ({actor_label[:100]}).",
        draft_spec=agent_spec_empty(),
    )
    full_clean_or_error(agent, exclude=["draft_spec", "owner"])
    try:
        with transaction.atomic():
            agent.save()
            audit_record(
                actor=actor_label,
                action="agent.register_external",
                obj=agent,
                team=team,
                after={**snapshot(agent, AGENT_FIELDS), "external": True},
            )
    except IntegrityError:
        return Agent.objects.get(team=team, name=name)
    return agent
