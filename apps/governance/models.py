"""Secrets: encrypted at rest, write-only, granted by name to providers, tools and agents."""

from django.db import models
from django.utils import timezone

from apps.catalog.models import name_validator


class Secret(models.Model):
    """A secret value, encrypted with the key from FLEETDECK_SECRET_KEYS; never shown again.

    team is null for organisation secrets (provider API keys), managed by platform admins.
    """

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="secrets")
    name = models.CharField(max_length=63, validators=[name_validator])
    description = models.CharField(max_length=300, blank=True)
    ciphertext = models.TextField(editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+")
    rotated_at = models.DateTimeField(default=timezone.now, help_text="When the value was last set.")
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="secret_unique_name_per_team"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(team__isnull=True), name="secret_unique_org_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team.slug if self.team_id else 'org'}/{self.name}"


class GranteeType(models.TextChoices):
    PROVIDER = "provider", "Provider"
    TOOL = "tool", "Tool"
    AGENT = "agent", "Agent"


class SecretGrant(models.Model):
    """Allow one provider, tool or agent to use a secret (by the secret's name in its spec)."""

    secret = models.ForeignKey("governance.Secret", on_delete=models.CASCADE, related_name="grants")
    grantee_type = models.CharField(max_length=16, choices=GranteeType.choices)
    grantee_id = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["secret", "grantee_type", "grantee_id"], name="secretgrant_unique")
        ]
        indexes = [models.Index(fields=["grantee_type", "grantee_id"], name="secretgrant_grantee")]

    def __str__(self) -> str:
        return f"{self.secret} → {self.grantee_type}#{self.grantee_id}"
