"""Writes of the prompt registry: each checks `registry.edit` once, changes, and audits in one transaction.

Labels: a prompt has at most one `production` and one `staging` label, each pointing at a
published version. A label may carry a candidate - a newer published version - served to
`rollout_percent` (0-99) of callers that resolve it with a key; 0 stages the candidate without
serving it. A rollout percent above 0 needs a candidate; to finish a rollout, set the label's
version to the candidate (that clears the candidate).
"""

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

from .models import Prompt, PromptLabel, PromptVersion
from .selectors import LABEL_NAMES
from .specs import prompt_render as prompt_render  # re-exported: the agents app renders through services too
from .specs import prompt_spec_validate


def prompt_create(*, actor, team, name: str, spec: dict, description: str | None = None, owner=None) -> Prompt:
    """Create a prompt in the team with spec as its first draft; the owner defaults to the creator."""
    require(actor, "registry.edit", team)
    name = name_check_free(Prompt, team=team, name=name, noun="prompt")
    spec = prompt_spec_validate(spec)
    prompt = _prompt_build(team=team, name=name, spec=spec, description=description, owner=owner, actor=actor)
    return registry_insert(actor=actor, obj=prompt, noun="prompt")


def _prompt_build(*, team, name, spec, description, owner, actor) -> Prompt:
    description = description_check(description)
    owner = owner_check(team=team, owner=owner) if owner is not None else default_owner(team=team, actor=actor)
    return Prompt(team=team, name=name, description=description, owner=owner, draft_spec=spec)


def prompt_update_draft(
    *, actor, prompt: Prompt, spec: dict | None = None, description: str | None = None, owner=None
) -> Prompt:
    """Replace the prompt's draft (and/or its description or owner); published versions stay as they are."""
    require(actor, "registry.edit", prompt.team)
    changes = {}
    if spec is not None:
        changes["draft_spec"] = prompt_spec_validate(spec)
    if description is not None:
        changes["description"] = description_check(description)
    return registry_update(actor=actor, obj=prompt, changes=changes, owner=owner, noun="prompt")


def prompt_set_owner(*, actor, prompt: Prompt, owner) -> Prompt:
    """Make a member of the prompt's team its owner (owner: a user or a username)."""
    require(actor, "registry.edit", prompt.team)
    return registry_set_owner(actor=actor, obj=prompt, owner=owner, noun="prompt")


def prompt_publish(*, actor, prompt: Prompt, version: str, notes: str = "") -> PromptVersion:
    """Publish the draft as an immutable version after validating it again."""
    require(actor, "registry.edit", prompt.team)
    return _prompt_publish(actor=actor, prompt=prompt, version=version, notes=notes)


def _prompt_publish(*, actor, prompt: Prompt, version: str, notes: str) -> PromptVersion:
    parse_semver(version)
    spec = prompt_spec_validate(prompt.draft_spec)
    return version_publish(
        actor=actor,
        parent=prompt,
        versions=prompt.versions.all(),
        spec=spec,
        version=version,
        notes=notes,
        create=lambda **fields: PromptVersion.objects.create(prompt=prompt, **fields),
        action="prompt.publish",
        team=prompt.team,
    )


def _version_of(prompt: Prompt, value, *, field: str) -> PromptVersion | None:
    if value is None or value == "":
        return None
    if isinstance(value, PromptVersion):
        if value.prompt_id != prompt.pk:
            raise ServiceError(f"Version {value.version} belongs to another prompt.", field=field)
        return value
    found = prompt.versions.filter(version=str(value).strip()).first() if isinstance(value, str) else None
    if found is None:
        raise ServiceError(f"Prompt {prompt.name} has no published version '{str(value)[:32]}'.", field=field)
    return found


def prompt_label_set(
    *, actor, prompt: Prompt, name: str, version, candidate=None, rollout_percent: int = 0
) -> PromptLabel:
    """Point the production or staging label at a version, optionally rolling out a newer candidate.

    version and candidate are published versions of the prompt (rows or version strings).
    """
    require(actor, "registry.edit", prompt.team)
    if name not in LABEL_NAMES:
        raise ServiceError(f"'{str(name)[:32]}' is not a label: use {' or '.join(LABEL_NAMES)}.", field="name")
    target = _version_of(prompt, version, field="version")
    if target is None:
        raise ServiceError("Pick the published version the label points at.", field="version")
    chosen = _version_of(prompt, candidate, field="candidate")
    if isinstance(rollout_percent, bool) or not isinstance(rollout_percent, int):
        raise ServiceError("rollout_percent must be a whole number from 0 to 99.", field="rollout_percent")
    if not 0 <= rollout_percent <= 100:
        raise ServiceError("rollout_percent must be between 0 and 99.", field="rollout_percent")
    if chosen is None and rollout_percent:
        raise ServiceError(
            "A rollout needs a candidate: pick the newer version to serve to that share of traffic.",
            field="candidate",
        )
    if chosen is not None:
        if (chosen.major, chosen.minor, chosen.patch) <= (target.major, target.minor, target.patch):
            raise ServiceError(
                f"The candidate must be newer than {target.version}: pick a later version, or roll back by "
                "setting the label's version.",
                field="candidate",
            )
        if rollout_percent == 100:
            raise ServiceError(
                f"At 100% the candidate is the version: set the label's version to {chosen.version} instead.",
                field="rollout_percent",
            )
    label = PromptLabel.objects.filter(prompt=prompt, name=name).select_related("version", "candidate").first()
    before = _label_facts(label) if label else None
    with transaction.atomic():
        if label is None:
            label = PromptLabel(prompt=prompt, name=name)
        label.version = target
        label.candidate = chosen
        label.rollout_percent = rollout_percent
        label.updated_at = timezone.now()
        label.updated_by = actor if getattr(actor, "pk", None) else None
        label.save()
        audit_record(
            actor=actor,
            action="prompt.label_set",
            obj=prompt,
            team=prompt.team,
            before=before,
            after=_label_facts(label),
        )
    return label


def _label_facts(label: PromptLabel) -> dict:
    return {
        "label": label.name,
        "version": label.version.version,
        "candidate": label.candidate.version if label.candidate else None,
        "rollout_percent": label.rollout_percent,
    }


def prompt_import(
    *, actor, team, text: str | bytes, publish_version: str | None = None, notes: str = ""
) -> tuple[Prompt, PromptVersion | None, bool]:
    """Create a prompt from a spec file, or replace an existing prompt's draft; optionally publish it.

    Returns (prompt, the published version or None, whether the prompt was created). Everything is
    validated before anything is written, and written in one transaction: nothing is kept on error.
    """
    require(actor, "registry.edit", team)
    return document_import(
        actor=actor,
        team=team,
        text=text,
        kind="Prompt",
        model=Prompt,
        validate=prompt_spec_validate,
        build=lambda name, spec, description, owner: _prompt_build(
            team=team, name=name, spec=spec, description=description, owner=owner, actor=actor
        ),
        publish=lambda prompt, version, notes: _prompt_publish(
            actor=actor, prompt=prompt, version=version, notes=notes
        ),
        publish_version=publish_version,
        notes=notes,
    )
