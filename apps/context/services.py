"""Writes of context spaces: each checks permission once, changes, and audits in one transaction.

People need `context.manage` (builders) to create, describe and delete spaces and to grant them
to agents, and `context.write` (operators) to add and edit facts, documents, decisions and state.
An agent writes as an `AgentWriter`: instead of a role, its spec must list the space with write
access and a builder must have granted it write (checked by `context_space_for_agent`).

Decisions are an append-only log: they are recorded, never edited or deleted (delete the space to
drop them all). State is versioned: a write names the version it read, and a mismatch is refused
with VersionConflict rather than silently overwriting someone else's change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.permissions import require
from apps.audit.services import audit_record, describe_actor
from apps.core.drafts import description_check, name_check_free
from apps.core.exceptions import ServiceError

from .models import Access, ContextEntry, ContextGrant, ContextSpace, ContextState, ContextStateVersion, EntryKind
from .selectors import context_entry_by_key

KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
KEY_HELP = "start with a letter or digit; use letters, digits, dots, colons, dashes and underscores (at most 100)"
MAX_TITLE = 200
MAX_BODY_BYTES = {EntryKind.FACT: 20_000, EntryKind.DOCUMENT: 200_000, EntryKind.DECISION: 20_000}
MAX_METADATA_BYTES = 8_000
MAX_STATE_BYTES = 64_000


class VersionConflict(ServiceError):
    """Raise when a state write names a version that is no longer the current one."""

    def __init__(self, *, space: ContextSpace, key: str, expected: int, current: int):
        self.current_version = current
        if current == 0:
            message = (
                f"State {key} in {space.name} does not exist (it was deleted or never written), so it is not at "
                f"version {expected}: write it with expected_version 0 to create it."
            )
        elif expected == 0:
            message = (
                f"State {key} in {space.name} already exists at version {current}: read it, merge your change, "
                f"and write with expected_version {current}."
            )
        else:
            message = (
                f"State {key} in {space.name} changed meanwhile: it is at version {current}, not {expected}. Read it "
                f"again, merge your change, and write with expected_version {current}."
            )
        super().__init__(message, field="expected_version", code="version_conflict")


@dataclass(frozen=True)
class AgentWriter:
    """An agent writing during a run: it acts through its grants, not through a person's role."""

    agent: object
    spec_spaces: list = field(default_factory=list)
    run_id: int | None = None
    label: str = ""

    @property
    def audit_actor(self) -> str:
        return f"agent:{self.agent.name}"

    @property
    def author(self) -> str:
        if self.label:
            return self.label[:200]
        run = f" run {self.run_id}" if self.run_id is not None else ""
        return f"agent:{self.agent.name}{run}"[:200]


def _check_write(actor, space: ContextSpace) -> None:
    """Refuse the write unless a person holds context.write or an agent holds a write grant."""
    if isinstance(actor, AgentWriter):
        from .selectors import context_space_for_agent

        allowed = context_space_for_agent(
            agent=actor.agent, spec_spaces=actor.spec_spaces, name=space.name, need=Access.WRITE
        )
        if allowed.pk != space.pk:
            raise ServiceError(f"Agent {actor.agent.name} may not write context space {space.name}.", field="space")
        return
    require(actor, "context.write", space.team)


def _who(actor) -> tuple[object, str, int | None, dict]:
    """Return (audit actor, author label, run id, audit metadata) for a person or an agent."""
    if isinstance(actor, AgentWriter):
        return actor.audit_actor, actor.author, actor.run_id, {"run_id": actor.run_id, "agent_id": actor.agent.pk}
    return actor, describe_actor(actor)[2], None, {}


def _json_bytes(value) -> int:
    try:
        return len(json.dumps(value, allow_nan=False).encode())
    except (TypeError, ValueError):
        return -1


# --- spaces ---------------------------------------------------------------------------------


def _space_facts(space: ContextSpace) -> dict:
    return {"name": space.name, "description": space.description}


def context_space_create(*, actor, team, name: str, description: str = "") -> ContextSpace:
    """Create a context space in the team; agents name it in their spec's memory.context_spaces."""
    require(actor, "context.manage", team)
    name = name_check_free(ContextSpace, team=team, name=name, noun="context space")
    space = ContextSpace(
        team=team,
        name=name,
        description=description_check(description),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    try:
        with transaction.atomic():
            space.save()
            audit_record(actor=actor, action="context.space_create", obj=space, team=team, after=_space_facts(space))
    except IntegrityError:
        raise ServiceError(
            f"A context space named '{name}' already exists in team {team.slug}: pick another name.", field="name"
        ) from None
    return space


def context_space_update(*, actor, space: ContextSpace, description: str) -> ContextSpace:
    """Change the space's description (its name stays: agent specs refer to it)."""
    require(actor, "context.manage", space.team)
    description = description_check(description)
    before = _space_facts(space)
    with transaction.atomic():
        space.description = description
        space.save(update_fields=["description"])
        audit_record(actor=actor, action="context.space_update", obj=space, before=before, after=_space_facts(space))
    return space


def context_space_delete(*, actor, space: ContextSpace) -> None:
    """Delete the space with all its entries, decisions, state and grants."""
    require(actor, "context.manage", space.team)
    before = {
        **_space_facts(space),
        "entries": space.entries.count(),
        "states": space.states.count(),
        "grants": sorted(space.grants.values_list("agent__name", flat=True)),
    }
    with transaction.atomic():
        audit_record(actor=actor, action="context.space_delete", obj=space, before=before)
        space.delete()


# --- grants ---------------------------------------------------------------------------------


def context_grant_set(*, actor, space: ContextSpace, agent, access: str) -> ContextGrant:
    """Let one agent of the space's team read (access "read") or read and write ("write") the space.

    The agent uses it only while its spec also lists the space; granting again changes the access.
    """
    require(actor, "context.manage", space.team)
    if access not in Access.values:
        raise ServiceError(f"'{str(access)[:16]}' is not an access: use read or write.", field="access")
    if getattr(agent, "team_id", None) != space.team_id:
        raise ServiceError(
            f"Agent {getattr(agent, 'name', agent)} belongs to another team: a space is granted only to its own "
            "team's agents.",
            field="agent",
        )
    grant = ContextGrant.objects.filter(space=space, agent=agent).first()
    before = {"agent": agent.name, "access": grant.access} if grant else None
    with transaction.atomic():
        if grant is None:
            grant = ContextGrant(space=space, agent=agent, granted_by=actor if getattr(actor, "pk", None) else None)
        grant.access = access
        grant.save()
        audit_record(
            actor=actor,
            action="context.grant_set",
            obj=space,
            before=before,
            after={"agent": agent.name, "agent_id": agent.pk, "access": access},
        )
    return grant


def context_grant_revoke(*, actor, grant: ContextGrant) -> None:
    """Take back an agent's grant: it can no longer read or write the space."""
    space = grant.space
    require(actor, "context.manage", space.team)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="context.grant_revoke",
            obj=space,
            before={"agent": grant.agent.name, "agent_id": grant.agent_id, "access": grant.access},
        )
        grant.delete()


# --- entries --------------------------------------------------------------------------------


def _check_key(key, *, required: bool = False) -> str:
    if key is None or (isinstance(key, str) and not key.strip()):
        if required:
            raise ServiceError(f"Give a key: {KEY_HELP}.", field="key")
        return ""
    if not isinstance(key, str) or not KEY_RE.match(key.strip()):
        raise ServiceError(f"'{str(key)[:100]}' is not a valid key: {KEY_HELP}.", field="key")
    return key.strip()


def _check_title(title, *, required: bool = False) -> str:
    if title is None:
        title = ""
    if not isinstance(title, str):
        raise ServiceError("The title must be text.", field="title")
    title = " ".join(title.split())
    if required and not title:
        raise ServiceError("Give a title: one line saying what this is.", field="title")
    if len(title) > MAX_TITLE:
        raise ServiceError(f"The title is too long: at most {MAX_TITLE} characters.", field="title")
    return title


def _check_body(body, kind: str, *, what: str = "body") -> str:
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise ServiceError(f"The {what} must be text.", field="body")
    if not body.strip():
        raise ServiceError(f"The {what} is empty: write the content to keep.", field="body")
    limit = MAX_BODY_BYTES[kind]
    if len(body.encode()) > limit:
        raise ServiceError(
            f"The {what} is too long for a {kind}: at most {limit // 1000} KB"
            + (" (store long text as a document)." if kind == EntryKind.FACT else "."),
            field="body",
        )
    return body


def _check_metadata(metadata) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ServiceError('metadata must be a JSON object, e.g. {"source": "wiki"}.', field="metadata")
    size = _json_bytes(metadata)
    if size < 0:
        raise ServiceError(
            "metadata holds a value JSON cannot store: use text, numbers, lists and objects.", field="metadata"
        )
    if size > MAX_METADATA_BYTES:
        raise ServiceError(f"metadata is too large: at most {MAX_METADATA_BYTES // 1000} KB of JSON.", field="metadata")
    return metadata


def _key_free(space: ContextSpace, key: str, *, exclude_pk=None, for_state: bool = False) -> None:
    """Refuse a key another fact, document or state of the space already uses: a key names one thing."""
    if not key:
        return
    clash = space.entries.filter(kind__in=[EntryKind.FACT, EntryKind.DOCUMENT], key=key)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ServiceError(
            f"Key '{key}' is already a fact or document in {space.name}: edit that entry, or pick another key.",
            field="key",
            code="duplicate_key",
        )
    if not for_state and space.states.filter(key=key).exists():
        raise ServiceError(
            f"Key '{key}' already names a state value in {space.name}: pick another key for this entry.",
            field="key",
            code="duplicate_key",
        )


def _entry_facts(entry: ContextEntry) -> dict:
    return {
        "kind": entry.kind,
        "key": entry.key,
        "title": entry.title,
        "body_chars": len(entry.body),
        "decided_by": entry.decided_by,
    }


def context_entry_add(
    *, actor, space: ContextSpace, kind: str, title: str = "", body: str, key: str = "", metadata: dict | None = None
) -> ContextEntry:
    """Add a fact or a document to the space (a key, if given, must be new in the space)."""
    _check_write(actor, space)
    if kind == EntryKind.DECISION:
        raise ServiceError("Record decisions with context_decision_record: they carry a rationale.", field="kind")
    if kind not in (EntryKind.FACT, EntryKind.DOCUMENT):
        raise ServiceError(f"'{str(kind)[:16]}' is not a kind of entry: use fact or document.", field="kind")
    key = _check_key(key)
    title = _check_title(title, required=kind == EntryKind.DOCUMENT and not key)
    body = _check_body(body, kind)
    metadata = _check_metadata(metadata)
    _key_free(space, key)
    return _entry_insert(actor, space, kind=kind, key=key, title=title, body=body, metadata=metadata)


def _entry_insert(actor, space, **fields) -> ContextEntry:
    audit_actor, author, run_id, meta = _who(actor)
    now = timezone.now()
    entry = ContextEntry(space=space, author=author, run_id=run_id, created_at=now, updated_at=now, **fields)
    try:
        with transaction.atomic():
            entry.save()
            audit_record(
                actor=audit_actor,
                action=f"context.{'decision_record' if entry.kind == EntryKind.DECISION else 'entry_add'}",
                obj=space,
                team=space.team,
                after={"entry_id": entry.pk, **_entry_facts(entry)},
                metadata=meta,
            )
    except IntegrityError:
        raise ServiceError(
            f"Key '{fields.get('key')}' was just taken in {space.name}: edit that entry, or pick another key.",
            field="key",
            code="duplicate_key",
        ) from None
    return entry


def context_entry_update(
    *,
    actor,
    entry: ContextEntry,
    title: str | None = None,
    body: str | None = None,
    key: str | None = None,
    metadata: dict | None = None,
) -> ContextEntry:
    """Change a fact or a document; decisions are append-only (record a new one that supersedes it)."""
    space = entry.space
    _check_write(actor, space)
    if entry.kind == EntryKind.DECISION:
        raise ServiceError(
            "Decisions are an append-only log and cannot be edited: record a new decision that supersedes this one.",
            code="append_only",
        )
    audit_actor, author, run_id, meta = _who(actor)
    before = _entry_facts(entry)
    if key is not None:
        entry.key = _check_key(key)
        _key_free(space, entry.key, exclude_pk=entry.pk)
    if title is not None:
        entry.title = _check_title(title, required=entry.kind == EntryKind.DOCUMENT and not entry.key)
    if body is not None:
        entry.body = _check_body(body, entry.kind)
    if metadata is not None:
        entry.metadata = _check_metadata(metadata)
    entry.author, entry.run_id, entry.updated_at = author, run_id, timezone.now()
    try:
        with transaction.atomic():
            entry.save()
            audit_record(
                actor=audit_actor,
                action="context.entry_update",
                obj=space,
                team=space.team,
                before={"entry_id": entry.pk, **before},
                after={"entry_id": entry.pk, **_entry_facts(entry)},
                metadata=meta,
            )
    except IntegrityError:
        raise ServiceError(f"Key '{entry.key}' is taken in {space.name}: pick another key.", field="key") from None
    return entry


def context_entry_put(
    *, actor, space: ContextSpace, key: str, body: str, kind: str = EntryKind.FACT, title: str | None = None
) -> tuple[ContextEntry, bool]:
    """Write the fact or document with this key: update it if it exists, else add it. Return (entry, created)."""
    key = _check_key(key, required=True)
    existing = context_entry_by_key(space=space, key=key)
    if existing is None:
        entry = context_entry_add(actor=actor, space=space, kind=kind, key=key, title=title or "", body=body)
        return entry, True
    if existing.kind != kind:
        raise ServiceError(
            f"Key '{key}' is a {existing.kind} in {space.name}, not a {kind}: write it as a {existing.kind} or pick "
            "another key.",
            field="kind",
        )
    return context_entry_update(actor=actor, entry=existing, title=title, body=body), False


def context_entry_delete(*, actor, entry: ContextEntry) -> None:
    """Delete a fact or a document; decisions stay in the log."""
    space = entry.space
    _check_write(actor, space)
    if entry.kind == EntryKind.DECISION:
        raise ServiceError(
            "Decisions are an append-only log and cannot be deleted: record a new decision that supersedes this one.",
            code="append_only",
        )
    audit_actor, _, _, meta = _who(actor)
    with transaction.atomic():
        audit_record(
            actor=audit_actor,
            action="context.entry_delete",
            obj=space,
            team=space.team,
            before={"entry_id": entry.pk, **_entry_facts(entry)},
            metadata=meta,
        )
        entry.delete()


def context_decision_record(
    *, actor, space: ContextSpace, title: str, rationale: str, decided_by: str = "", metadata: dict | None = None
) -> ContextEntry:
    """Append a decision (what was decided, why, by whom) to the space's log; it is never changed afterwards."""
    _check_write(actor, space)
    title = _check_title(title, required=True)
    rationale = _check_body(rationale, EntryKind.DECISION, what="rationale")
    if decided_by is not None and not isinstance(decided_by, str):
        raise ServiceError("decided_by must be text: who took the decision.", field="decided_by")
    decided_by = " ".join((decided_by or "").split())[:200] or _who(actor)[1]
    metadata = _check_metadata(metadata)
    return _entry_insert(
        actor,
        space,
        kind=EntryKind.DECISION,
        key="",
        title=title,
        body=rationale,
        decided_by=decided_by,
        metadata=metadata,
    )


# --- state ----------------------------------------------------------------------------------


def _check_version(expected_version) -> int | None:
    if expected_version is None:
        return None
    if isinstance(expected_version, bool) or not isinstance(expected_version, int) or expected_version < 0:
        raise ServiceError(
            "expected_version must be a whole number: the version you read, or 0 to create the key.",
            field="expected_version",
        )
    return expected_version


def context_state_write(
    *, actor, space: ContextSpace, key: str, value, expected_version: int | None = None
) -> ContextState:
    """Write a state value and return it with its new version; keep the previous values as history.

    expected_version is the version the writer read (0: the key must not exist yet). When the
    state has moved on, VersionConflict says the current version and nothing is written.
    None writes whatever the current version is (last writer wins).
    """
    _check_write(actor, space)
    key = _check_key(key, required=True)
    expected = _check_version(expected_version)
    size = _json_bytes(value)
    if size < 0:
        raise ServiceError(
            "The value holds something JSON cannot store: use text, numbers, lists and objects.", field="value"
        )
    if size > MAX_STATE_BYTES:
        raise ServiceError(
            f"The value is too large: at most {MAX_STATE_BYTES // 1000} KB of JSON (keep long text as a document).",
            field="value",
        )
    _key_free(space, key, for_state=True)
    audit_actor, author, run_id, meta = _who(actor)
    now = timezone.now()
    with transaction.atomic():
        state = ContextState.objects.filter(space=space, key=key).first()
        if state is None:
            if expected not in (None, 0):
                raise VersionConflict(space=space, key=key, expected=expected, current=0)
            try:
                with transaction.atomic():
                    state = ContextState.objects.create(
                        space=space, key=key, value=value, version=1, updated_by=author, updated_at=now
                    )
            except IntegrityError:
                # Someone created it between our read and our insert.
                current = ContextState.objects.filter(space=space, key=key).values_list("version", flat=True).first()
                raise VersionConflict(space=space, key=key, expected=expected or 0, current=current or 0) from None
            before_version = 0
        else:
            before_version = state.version
            if expected is not None and expected != state.version:
                raise VersionConflict(space=space, key=key, expected=expected, current=state.version)
            # Compare-and-swap in one statement: a concurrent writer that read the same version loses.
            updated = ContextState.objects.filter(pk=state.pk, version=before_version).update(
                value=value, version=F("version") + 1, updated_by=author, updated_at=now
            )
            if not updated:
                state.refresh_from_db()
                raise VersionConflict(space=space, key=key, expected=before_version, current=state.version)
            state.refresh_from_db()
        ContextStateVersion.objects.create(
            state=state, version=state.version, value=value, author=author, run_id=run_id, created_at=now
        )
        audit_record(
            actor=audit_actor,
            action="context.state_write",
            obj=space,
            team=space.team,
            before={"key": key, "version": before_version} if before_version else None,
            after={"key": key, "version": state.version, "value_bytes": size},
            metadata=meta,
        )
    return state
