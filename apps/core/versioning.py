"""One versioning mechanism for tools, prompts, agents (and workflows later).

An object has an editable draft (`draft_spec`); publishing freezes the draft into a version row:
a semantic version that must increase, the canonical spec, its SHA-256 (the version's identity),
the author, the time and release notes. Published versions never change: the service layer only
inserts them, and the model and queryset refuse updates and deletes if anything bypasses it.
"""

from __future__ import annotations

import hashlib
import json
import re

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from .exceptions import ServiceError

SEMVER_RE = re.compile(r"^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$")
MAX_SPEC_BYTES = 256 * 1024


class ImmutableVersionError(TypeError):
    """Raised when code tries to change or delete a published version."""


def parse_semver(value: str) -> tuple[int, int, int]:
    """Return (major, minor, patch); raise a ServiceError naming the field when malformed."""
    match = SEMVER_RE.match((value or "").strip())
    if not match:
        raise ServiceError(f"'{value}' is not a version like 1.4.0 (major.minor.patch, digits only).", field="version")
    return tuple(int(part) for part in match.groups())  # type: ignore[return-value]


def canonical_json(spec) -> str:
    """Return the canonical JSON text of a spec: sorted keys, no spaces, UTF-8."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)


def spec_hash(spec) -> str:
    """Return the SHA-256 of the canonical spec: the identity of a version."""
    return hashlib.sha256(canonical_json(spec).encode()).hexdigest()


def spec_diff(old, new, path: str = "") -> list[dict]:
    """Return the changes from old to new as [{path, change: added|removed|changed, before, after}]."""
    changes: list[dict] = []
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                changes.append({"path": sub, "change": "added", "before": None, "after": new[key]})
            elif key not in new:
                changes.append({"path": sub, "change": "removed", "before": old[key], "after": None})
            else:
                changes.extend(spec_diff(old[key], new[key], sub))
    elif old != new:
        changes.append({"path": path or "(spec)", "change": "changed", "before": old, "after": new})
    return changes


class ImmutableQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ImmutableVersionError("Published versions are immutable: publish a new version instead.")

    def delete(self):
        raise ImmutableVersionError("Published versions are immutable: they cannot be deleted.")


class PublishedVersion(models.Model):
    """A frozen version of a spec; subclasses add the foreign key to what they version."""

    version = models.CharField(max_length=32)
    major = models.PositiveIntegerField()
    minor = models.PositiveIntegerField()
    patch = models.PositiveIntegerField()
    spec = models.JSONField(encoder=DjangoJSONEncoder)
    content_hash = models.CharField(max_length=64, db_index=True)
    author = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    release_notes = models.TextField(blank=True, max_length=5000)

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-major", "-minor", "-patch"]

    def __str__(self) -> str:
        return self.version

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ImmutableVersionError(f"Version {self.version} is published and immutable: publish a new version.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableVersionError(f"Version {self.version} is published and cannot be deleted.")

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]


def check_spec_size(spec, *, field: str = "spec") -> None:
    """Refuse specs too large to be a reasonable definition (oversized text)."""
    size = len(canonical_json(spec).encode())
    if size > MAX_SPEC_BYTES:
        raise ServiceError(f"The spec is {size // 1024} KiB; the limit is {MAX_SPEC_BYTES // 1024} KiB.", field=field)


def version_publish(
    *, actor, parent, versions, spec: dict, version: str, notes: str, create, action: str, team
) -> models.Model:
    """Publish spec as a new version of parent; callers check permission and validate first.

    `versions` is the parent's version queryset, `create(**fields)` inserts the row (so the caller
    can add its own columns), `action` names the audit event.
    """
    from apps.audit.services import audit_record

    major, minor, patch = parse_semver(version)
    if len(notes or "") > 5000:
        raise ServiceError("Release notes are limited to 5000 characters.", field="release_notes")
    check_spec_size(spec)
    digest = spec_hash(spec)
    with transaction.atomic():
        latest = versions.select_for_update().order_by("-major", "-minor", "-patch").first()
        if latest is not None:
            if (major, minor, patch) <= (latest.major, latest.minor, latest.patch):
                raise ServiceError(
                    f"Version {version} must be greater than the latest published version {latest.version}.",
                    field="version",
                )
            if latest.content_hash == digest:
                raise ServiceError(
                    f"Nothing changed since {latest.version}: edit the draft before publishing.", field="version"
                )
        try:
            row = create(
                version=f"{major}.{minor}.{patch}",
                major=major,
                minor=minor,
                patch=patch,
                spec=spec,
                content_hash=digest,
                author=actor,
                release_notes=notes or "",
            )
        except IntegrityError:
            raise ServiceError(f"Version {version} already exists.", field="version") from None
        audit_record(
            actor=actor,
            action=action,
            obj=parent,
            team=team,
            after={"version": row.version, "content_hash": digest, "release_notes": row.release_notes},
        )
    return row


def next_versions(latest: str | None) -> dict[str, str]:
    """Return the next patch, minor and major versions after latest (1.0.0 first)."""
    if not latest:
        return {"major": "1.0.0", "minor": "1.0.0", "patch": "1.0.0"}
    major, minor, patch = parse_semver(latest)
    return {"patch": f"{major}.{minor}.{patch + 1}", "minor": f"{major}.{minor + 1}.0", "major": f"{major + 1}.0.0"}
