"""Writes of the tool registry: each checks `registry.edit` once, changes, and audits in one transaction."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.accounts.permissions import require
from apps.audit.services import audit_record
from apps.core.drafts import (
    default_owner,
    description_check,
    document_import,
    name_check_free,
    owner_check,
    registry_insert,
    registry_set_owner,
    registry_update,
)
from apps.core.exceptions import ServiceError
from apps.core.versioning import parse_semver, version_publish

from .models import Tool, ToolVersion
from .specs import tool_spec_check_grants, tool_spec_validate


def tool_create(*, actor, team, name: str, spec: dict, description: str | None = None, owner=None) -> Tool:
    """Create a tool in the team with spec as its first draft; the owner defaults to the creator."""
    require(actor, "registry.edit", team)
    name = name_check_free(Tool, team=team, name=name, noun="tool")
    spec = tool_spec_validate(spec, team=team)
    tool = _tool_build(team=team, name=name, spec=spec, description=description, owner=owner, actor=actor)
    return registry_insert(actor=actor, obj=tool, noun="tool")


def _tool_build(*, team, name, spec, description, owner, actor) -> Tool:
    description = description_check(description) or spec["description"][:2000]
    owner = owner_check(team=team, owner=owner) if owner is not None else default_owner(team=team, actor=actor)
    return Tool(team=team, name=name, description=description, owner=owner, draft_spec=spec)


def tool_update_draft(
    *, actor, tool: Tool, spec: dict | None = None, description: str | None = None, owner=None
) -> Tool:
    """Replace the tool's draft spec (and/or its summary or owner); published versions stay as they are."""
    require(actor, "registry.edit", tool.team)
    changes = {}
    if spec is not None:
        changes["draft_spec"] = tool_spec_validate(spec, team=tool.team)
    if description is not None:
        changes["description"] = description_check(description)
    return registry_update(actor=actor, obj=tool, changes=changes, owner=owner, noun="tool")


def tool_set_owner(*, actor, tool: Tool, owner) -> Tool:
    """Make a member of the tool's team its owner (owner: a user or a username)."""
    require(actor, "registry.edit", tool.team)
    return registry_set_owner(actor=actor, obj=tool, owner=owner, noun="tool")


def tool_publish(*, actor, tool: Tool, version: str, notes: str = "") -> ToolVersion:
    """Publish the draft as an immutable version after validating it fully (secrets granted included)."""
    require(actor, "registry.edit", tool.team)
    return _tool_publish(actor=actor, tool=tool, version=version, notes=notes)


def _tool_publish(*, actor, tool: Tool, version: str, notes: str) -> ToolVersion:
    if tool.deprecated:
        raise ServiceError(
            f"Tool {tool.name} is deprecated: undeprecate it before publishing a new version.", field="version"
        )
    parse_semver(version)
    spec = tool_spec_validate(tool.draft_spec, team=tool.team)
    tool_spec_check_grants(tool=tool, spec=spec)

    def create(**fields) -> ToolVersion:
        return ToolVersion.objects.create(
            tool=tool,
            kind=spec["kind"],
            side_effect=spec["side_effect"],
            permissions_required=spec["permissions_required"],
            **fields,
        )

    return version_publish(
        actor=actor,
        parent=tool,
        versions=tool.versions.all(),
        spec=spec,
        version=version,
        notes=notes,
        create=create,
        action="tool.publish",
        team=tool.team,
    )


def tool_deprecate(*, actor, tool: Tool, reason: str) -> Tool:
    """Mark the tool deprecated: agent versions keep working, new agent versions cannot use it."""
    require(actor, "registry.edit", tool.team)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Say why the tool is deprecated and what to use instead.", field="reason")
    if len(reason) > 500:
        raise ServiceError("The reason is too long: at most 500 characters.", field="reason")
    if tool.deprecated:
        raise ServiceError(f"Tool {tool.name} is already deprecated.")
    return _deprecation_set(actor=actor, tool=tool, deprecated=True, reason=reason)


def tool_undeprecate(*, actor, tool: Tool) -> Tool:
    """Make a deprecated tool usable by new agent versions again."""
    require(actor, "registry.edit", tool.team)
    if not tool.deprecated:
        raise ServiceError(f"Tool {tool.name} is not deprecated.")
    return _deprecation_set(actor=actor, tool=tool, deprecated=False)


def _deprecation_set(*, actor, tool: Tool, deprecated: bool, reason: str = "") -> Tool:
    with transaction.atomic():
        tool.deprecated = deprecated
        tool.deprecated_at = timezone.now() if deprecated else None
        tool.save(update_fields=["deprecated", "deprecated_at"])
        after = {"deprecated": deprecated, **({"reason": reason} if reason else {})}
        audit_record(
            actor=actor,
            action="tool.deprecate" if deprecated else "tool.undeprecate",
            obj=tool,
            team=tool.team,
            before={"deprecated": not deprecated},
            after=after,
        )
    return tool


def tool_import(
    *, actor, team, text: str | bytes, publish_version: str | None = None, notes: str = ""
) -> tuple[Tool, ToolVersion | None, bool]:
    """Create a tool from a spec file, or replace an existing tool's draft; optionally publish it.

    Returns (tool, the published version or None, whether the tool was created). Everything is
    validated before anything is written, and everything is written in one transaction: a refused
    publish leaves no new tool and no changed draft. Publishing needs the tool's secrets granted to
    it, so a new tool that lists secrets is imported first and published after the grant.
    """
    require(actor, "registry.edit", team)
    return document_import(
        actor=actor,
        team=team,
        text=text,
        kind="Tool",
        model=Tool,
        validate=lambda spec: tool_spec_validate(spec, team=team),
        build=lambda name, spec, description, owner: _tool_build(
            team=team, name=name, spec=spec, description=description, owner=owner, actor=actor
        ),
        publish=lambda tool, version, notes: _tool_publish(actor=actor, tool=tool, version=version, notes=notes),
        publish_version=publish_version,
        notes=notes,
    )
