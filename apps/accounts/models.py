"""Users, teams (the tenants), memberships with a team role, API tokens and SSO group mappings."""

from django.contrib.auth.models import AbstractUser
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone


class TeamRole(models.TextChoices):
    OWNER = "owner", "Owner"
    BUILDER = "builder", "Builder"
    OPERATOR = "operator", "Operator"
    VIEWER = "viewer", "Viewer"


class OrgRole(models.TextChoices):
    NONE = "", "None"
    PLATFORM_ADMIN = "platform_admin", "Platform admin"
    SECURITY_AUDITOR = "security_auditor", "Security auditor"


class Source(models.TextChoices):
    """Where a role came from: granted here, or synced from the SSO provider at each login."""

    LOCAL = "local", "Granted in Fleetdeck"
    SSO = "sso", "Synced from SSO"


class TokenScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    RUN = "run", "Run agents"
    INGEST = "ingest", "Ingest telemetry"


class User(AbstractUser):
    """A person (or break-glass account) who signs in; roles come from memberships and org_role."""

    display_name = models.CharField(max_length=150, blank=True)
    org_role = models.CharField(max_length=32, choices=OrgRole.choices, blank=True, default=OrgRole.NONE)
    org_role_source = models.CharField(max_length=8, choices=Source.choices, default=Source.LOCAL)
    is_break_glass = models.BooleanField(
        default=False, help_text="May sign in with a password even when password login is limited to break-glass."
    )
    sso_subject = models.CharField(max_length=255, unique=True, null=True, blank=True)

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @property
    def is_platform_admin(self) -> bool:
        return self.is_active and (self.is_superuser or self.org_role == OrgRole.PLATFORM_ADMIN)

    @property
    def is_security_auditor(self) -> bool:
        return self.is_active and self.org_role == OrgRole.SECURITY_AUDITOR


slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    "Use 1-50 lowercase letters, digits and hyphens, starting and ending with a letter or digit.",
)


class Team(models.Model):
    """A tenant: the agent space that owns agents, tools, prompts, runs and budgets."""

    slug = models.SlugField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=2000)
    monthly_budget = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0)],
        help_text="USD; 0 means no budget set.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("manage_members", "Add, change and remove the team's members"),
            ("manage_tokens", "Revoke any API token of the team"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=TeamRole.choices)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.LOCAL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team__name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="membership_unique_user_team")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} as {self.role}"


class ApiToken(models.Model):
    """A bearer token acting for one user within one team, limited to its scopes.

    Only the SHA-256 of the token is stored; the token itself is shown once at creation.
    """

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="api_tokens")
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True, help_text="The token's first characters, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="revoked_tokens"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @property
    def is_usable(self) -> bool:
        return self.status == "active"


class SsoGroupMapping(models.Model):
    """Map an SSO group name to a team role or an organisation role.

    Groups named `<prefix>:<team-slug>:<role>` and `<prefix>:platform-admin` /
    `<prefix>:security-auditor` map without a row here; rows map any other group name.
    """

    group = models.CharField(max_length=255)
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="sso_mappings"
    )
    role = models.CharField(max_length=32, help_text="A team role (with a team) or an organisation role (without).")

    class Meta:
        ordering = ["group"]
        constraints = [models.UniqueConstraint(fields=["group", "team", "role"], name="ssogroupmapping_unique")]

    def __str__(self) -> str:
        return f"{self.group} → {self.team.slug + ':' if self.team_id else ''}{self.role}"
