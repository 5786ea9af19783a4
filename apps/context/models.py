"""Shared context spaces: facts, documents, a decision log and versioned state that agents share.

A space belongs to one team. Agents reach a space only when their spec asks for it
(`memory.context_spaces`) and a builder granted it to them (ContextGrant): the spec is the
request, the grant is the permission.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.validation import registry_name_validator


class ContextSpace(models.Model):
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="context_spaces")
    name = models.CharField(max_length=63, validators=[registry_name_validator])
    description = models.TextField(blank=True, max_length=2000)
    created_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="contextspace_unique_name_per_team")]

    def __str__(self) -> str:
        return self.name


class EntryKind(models.TextChoices):
    FACT = "fact", "Fact"
    DOCUMENT = "document", "Document"
    DECISION = "decision", "Decision"


class ContextEntry(models.Model):
    """A fact, a document or a decision. Facts and documents may be edited; decisions only appended."""

    space = models.ForeignKey("context.ContextSpace", on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    # A short name agents read the entry by; optional, and unused for decisions.
    key = models.CharField(max_length=100, blank=True)
    title = models.CharField(max_length=200, blank=True)
    # A decision's rationale lives in body.
    body = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Who wrote it: a username, or "agent:<name> run <id>"; a label, so it outlives users and runs.
    author = models.CharField(max_length=200)
    decided_by = models.CharField(max_length=200, blank=True)
    run_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["space", "key"],
                condition=Q(kind__in=["fact", "document"]) & ~Q(key=""),
                name="contextentry_unique_key_per_space",
            )
        ]
        indexes = [models.Index(fields=["space", "kind", "-created_at"], name="contextentry_space_kind")]

    def __str__(self) -> str:
        return self.title or self.key or f"{self.kind} #{self.pk}"


class ContextState(models.Model):
    """One versioned value; every write names the version it read (optimistic concurrency)."""

    space = models.ForeignKey("context.ContextSpace", on_delete=models.CASCADE, related_name="states")
    key = models.CharField(max_length=100)
    value = models.JSONField(null=True)
    version = models.PositiveIntegerField(default=1)
    updated_by = models.CharField(max_length=200)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["space", "key"], name="contextstate_unique_key_per_space")]

    def __str__(self) -> str:
        return f"{self.key}@{self.version}"


class ContextStateVersion(models.Model):
    """Every value a state held, so earlier versions can be seen (written with each change)."""

    state = models.ForeignKey("context.ContextState", on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    value = models.JSONField(null=True)
    author = models.CharField(max_length=200)
    run_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["state", "version"], name="contextstateversion_unique")]

    def __str__(self) -> str:
        return f"{self.state.key}@{self.version}"


class Access(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


class ContextGrant(models.Model):
    """A builder's permission for one agent to read (or read and write) one space."""

    space = models.ForeignKey("context.ContextSpace", on_delete=models.CASCADE, related_name="grants")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="context_grants")
    access = models.CharField(max_length=8, choices=Access.choices, default=Access.READ)
    granted_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["agent__name"]
        constraints = [models.UniqueConstraint(fields=["space", "agent"], name="contextgrant_unique")]

    def __str__(self) -> str:
        return f"{self.agent.name} {self.access} {self.space.name}"
