"""Pieces the tool and prompt registries share: an editable draft beside immutable versions.

Both registries hold a named object per team with an owner, a `draft_spec` and a `versions`
relation of PublishedVersion rows. Names, owners, references like `name@1.2.0`, spec-file
metadata and the "which version" lookups are the same for both, so they are written once here
(STYLE.md 5); apps/core/versioning.py and apps/core/registry.py hold what every registry shares.
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from .exceptions import ServiceError
from .specs import SpecField, validate_spec
from .validation import registry_name_validator
from .versioning import SEMVER_RE, next_versions

NAME_RE = re.compile(registry_name_validator.regex.pattern)
IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
NAME_HELP = "start with a lowercase letter; use lowercase letters, digits, dots, dashes and underscores (at most 63)."


def json_check(spec) -> None:
    """Refuse values JSON cannot hold (dates, NaN, infinity), which YAML files can produce."""
    import json

    try:
        json.dumps(spec, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ServiceError(
            f"The spec holds a value JSON cannot store ({exc}): quote dates and use finite numbers.", field="spec"
        ) from None


def name_check(value, *, noun: str) -> str:
    """Return the name stripped if it is a valid registry name; raise a ServiceError naming `name`."""
    name = (value or "").strip() if isinstance(value, str) else ""
    if not name:
        raise ServiceError(f"Give the {noun} a name: {NAME_HELP}", field="name")
    try:
        registry_name_validator(name)
    except ValidationError:
        raise ServiceError(f"'{name[:80]}' is not a valid {noun} name: {NAME_HELP}", field="name") from None
    if len(name) > 63:
        raise ServiceError(f"The {noun} name is too long: at most 63 characters.", field="name")
    return name


def name_check_free(model, *, team, name: str, noun: str, exclude_pk=None) -> str:
    """Return the name if no other object of the team uses it; raise a ServiceError naming `name`."""
    name = name_check(name, noun=noun)
    clash = model.objects.filter(team=team, name=name)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ServiceError(
            f"A {noun} named '{name}' already exists in team {team.slug}: pick another name or edit that {noun}.",
            field="name",
        )
    return name


def description_check(value) -> str:
    """Return the human description, at most 2000 characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ServiceError("The description must be text.", field="description")
    if len(value) > 2000:
        raise ServiceError("The description is too long: at most 2000 characters.", field="description")
    return value.strip()


def owner_check(*, team, owner):
    """Return owner if they are a member of the team; raise a ServiceError naming `owner`."""
    if owner is None:
        return None
    if isinstance(owner, str):
        user = get_user_model().objects.filter(username=owner, is_active=True).first()
        if user is None:
            raise ServiceError(f"No active user named '{owner[:150]}'.", field="owner")
        owner = user
    if not owner.is_active or not owner.memberships.filter(team=team).exists():
        raise ServiceError(
            f"{owner.username} is not a member of team {team.slug}: the owner must be a member.", field="owner"
        )
    return owner


def default_owner(*, team, actor):
    """Return the actor when they are a member of the team (the default owner), else None."""
    if getattr(actor, "is_authenticated", False) and actor.memberships.filter(team=team).exists():
        return actor
    return None


def ref_split(ref) -> tuple[str, str | None]:
    """Split "name@suffix" into (name, suffix); a bare name gives (name, None)."""
    if not isinstance(ref, str) or not ref.strip():
        raise ServiceError("Give a reference like name@1.2.0 (or just the name for the latest version).", field="ref")
    name, sep, suffix = ref.strip().partition("@")
    if not NAME_RE.match(name):
        raise ServiceError(f"'{ref[:100]}' is not a reference like name@1.2.0.", field="ref")
    if sep and not suffix:
        raise ServiceError(f"'{ref[:100]}' names no version after '@': write name@1.2.0.", field="ref")
    return name, (suffix if sep else None)


def is_semver(value: str) -> bool:
    return bool(SEMVER_RE.match(value or ""))


def latest_version(versions: QuerySet):
    """Return the highest published version of the queryset, or None."""
    return versions.order_by("-major", "-minor", "-patch").first()


def version_previous(versions: QuerySet, version):
    """Return the version published just before `version` in the queryset, or None."""
    earlier = (
        Q(major__lt=version.major)
        | Q(major=version.major, minor__lt=version.minor)
        | Q(major=version.major, minor=version.minor, patch__lt=version.patch)
    )
    return versions.filter(earlier).order_by("-major", "-minor", "-patch").first()


def version_suggestions(versions: QuerySet) -> dict[str, str]:
    """Return the next patch, minor and major versions to offer on a publish form."""
    latest = latest_version(versions)
    return next_versions(latest.version if latest else None)


METADATA_FIELDS = [
    SpecField("name", str, required=True, max_length=63),
    SpecField("description", str, default="", max_length=2000),
    SpecField("owner", str, max_length=150),
]


def document_metadata(obj) -> dict:
    """Return the metadata block of a spec file for a tool or prompt."""
    return {"name": obj.name, "description": obj.description, "owner": obj.owner.username if obj.owner else None}


def metadata_check(metadata: dict) -> dict:
    """Return a spec file's metadata validated; errors name `metadata.<key>`."""
    return validate_spec(metadata, METADATA_FIELDS, "metadata")


def service_field(exc: ServiceError, prefix: str) -> ServiceError:
    """Return the error with its field moved under prefix (e.g. spec), for spec-file imports."""
    field = f"{prefix}.{exc.field}" if exc.field and exc.field != prefix else prefix
    return ServiceError(exc.message, field=field, code=exc.code)


# --- Writes shared by tool and prompt services (callers check permission first) -----------------


def registry_facts(obj) -> dict:
    """Return what audit events record about a tool or prompt row."""
    return {"name": obj.name, "description": obj.description, "owner": obj.owner.username if obj.owner else None}


def registry_insert(*, actor, obj, noun: str):
    """Save a new tool or prompt and audit `<noun>.create`; a name taken meanwhile names `name`."""
    from django.db import IntegrityError, transaction

    from apps.audit.services import audit_record

    try:
        with transaction.atomic():
            obj.save()
            audit_record(
                actor=actor,
                action=f"{noun}.create",
                obj=obj,
                team=obj.team,
                after={**registry_facts(obj), "draft_spec": obj.draft_spec},
            )
    except IntegrityError:
        raise ServiceError(
            f"A {noun} named '{obj.name}' already exists in team {obj.team.slug}.", field="name"
        ) from None
    return obj


def draft_apply(*, actor, obj, changes: dict, noun: str) -> None:
    """Write validated changes (draft_spec, description) and audit `<noun>.update_draft`; call in a transaction."""
    from django.utils import timezone

    from apps.audit.services import audit_record

    from .versioning import spec_hash

    if not changes:
        return
    before = {key: getattr(obj, key) for key in changes}
    for key, value in changes.items():
        setattr(obj, key, value)
    obj.updated_at = timezone.now()
    obj.save(update_fields=[*changes, "updated_at"])
    after = dict(changes)
    if "draft_spec" in changes:
        # A draft can be long: the event keeps the hash before and the full text after.
        before["draft_spec_hash"] = spec_hash(before.pop("draft_spec"))
        after["draft_spec_hash"] = spec_hash(changes["draft_spec"])
    audit_record(actor=actor, action=f"{noun}.update_draft", obj=obj, team=obj.team, before=before, after=after)


def owner_apply(*, actor, obj, owner, noun: str) -> None:
    """Make owner (already checked) the owner and audit `<noun>.set_owner`; call in a transaction."""
    from django.utils import timezone

    from apps.audit.services import audit_record

    if owner.pk == obj.owner_id:
        return
    before = {"owner": obj.owner.username if obj.owner else None}
    obj.owner = owner
    obj.updated_at = timezone.now()
    obj.save(update_fields=["owner", "updated_at"])
    audit_record(
        actor=actor, action=f"{noun}.set_owner", obj=obj, team=obj.team, before=before, after={"owner": owner.username}
    )


def registry_update(*, actor, obj, changes: dict, owner, noun: str):
    """Write validated draft changes and an optional new owner (user or username) in one transaction."""
    from django.db import transaction

    owner = owner_check(team=obj.team, owner=owner) if owner is not None else None
    with transaction.atomic():
        draft_apply(actor=actor, obj=obj, changes=changes, noun=noun)
        if owner is not None:
            owner_apply(actor=actor, obj=obj, owner=owner, noun=noun)
    return obj


def registry_set_owner(*, actor, obj, owner, noun: str):
    """Make a member of the object's team its owner (owner: a user or a username)."""
    if owner is None or owner == "":
        raise ServiceError(f"Pick the member who owns this {noun}.", field="owner")
    return registry_update(actor=actor, obj=obj, changes={}, owner=owner, noun=noun)


def document_import(*, actor, team, text, kind: str, model, validate, build, publish, publish_version, notes):
    """Import a spec file: create the object or replace its draft, then optionally publish; all or nothing.

    `validate(spec) -> spec` checks the document's spec, `build(name, spec, description, owner) -> obj`
    makes a new unsaved object, `publish(obj, version, notes) -> version row` publishes. Every check
    of the file runs before the first write, and every write shares one transaction.
    """
    from django.db import transaction

    from .specs import load_document
    from .versioning import parse_semver

    noun = kind.lower()
    metadata, raw_spec = load_document(text, kind=kind)
    metadata = metadata_check(metadata)
    try:
        name = name_check(metadata["name"], noun=noun)
        owner = owner_check(team=team, owner=metadata["owner"]) if metadata["owner"] else None
    except ServiceError as exc:
        raise service_field(exc, "metadata") from None
    try:
        spec = validate(raw_spec)
    except ServiceError as exc:
        raise service_field(exc, "spec") from None
    if publish_version:
        parse_semver(publish_version)
    with transaction.atomic():
        obj = model.objects.select_for_update().filter(team=team, name=name).first()
        created = obj is None
        if created:
            obj = registry_insert(actor=actor, obj=build(name, spec, metadata["description"], owner), noun=noun)
        else:
            changes = {"draft_spec": spec}
            if metadata["description"]:
                changes["description"] = description_check(metadata["description"])
            draft_apply(actor=actor, obj=obj, changes=changes, noun=noun)
            if owner is not None:
                owner_apply(actor=actor, obj=obj, owner=owner, noun=noun)
        published = publish(obj, publish_version, notes) if publish_version else None
    return obj, published, created
