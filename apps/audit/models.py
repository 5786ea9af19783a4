"""The append-only, hash-chained audit log.

Each event's hash covers the previous event's hash and the event's own canonical content, so
changing, removing or reordering any event breaks the chain at that point (`manage.py audit_verify`).
Rows refuse updates and deletes here; on PostgreSQL a trigger refuses them in the database too.
"""

import hashlib
import json
from datetime import UTC

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

GENESIS_HASH = "0" * 64


class ActorType(models.TextChoices):
    USER = "user", "User"
    TOKEN = "token", "API token"
    AGENT = "agent", "Agent"
    SYSTEM = "system", "System"
    ANONYMOUS = "anonymous", "Anonymous"


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    DENIED = "denied", "Denied"
    FAILURE = "failure", "Failure"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Audit events are append-only: they cannot be updated.")

    def delete(self):
        raise TypeError("Audit events are append-only: they cannot be deleted.")


# The fields the hash covers, in a fixed order; adding one is a format change for audit_verify.
HASHED_FIELDS = (
    "seq",
    "created_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "outcome",
    "object_type",
    "object_id",
    "object_repr",
    "team_id",
    "team_slug",
    "before",
    "after",
    "metadata",
    "request_id",
    "ip",
)


def canonical_time(value) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField(db_index=True)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    # A copy, not a foreign key: the log outlives the team and never cascades.
    team_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    team_slug = models.CharField(max_length=50, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    metadata = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["action", "created_at"], name="audit_action_time")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_label}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError("Audit events are append-only: an existing event cannot be saved again.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Audit events are append-only: they cannot be deleted.")

    def canonical_content(self) -> str:
        """Return the canonical JSON of the hashed fields."""
        content = {name: getattr(self, name) for name in HASHED_FIELDS}
        content["created_at"] = canonical_time(self.created_at)
        return json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder, ensure_ascii=False)

    def compute_hash(self) -> str:
        """Return the hash of the previous hash and this event's canonical content."""
        digest = hashlib.sha256()
        digest.update(self.prev_hash.encode())
        digest.update(b"\n")
        digest.update(self.canonical_content().encode())
        return digest.hexdigest()


class AuditChainHead(models.Model):
    """The single row naming the last event; locked while appending so appends are serialised.

    Comparing it with the last row also reveals events removed from the end of the chain.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"audit head #{self.seq}"
