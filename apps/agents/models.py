"""The agent registry: Agent, immutable AgentVersion, channels, promotion history."""

from django.db import models
from django.utils import timezone

from apps.core.validation import registry_name_validator
from apps.core.versioning import PublishedVersion


class RiskTier(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class DataClassification(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted"


class AgentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class Agent(models.Model):
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=63, validators=[registry_name_validator])
    owner = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="owned_agents")
    description = models.TextField(blank=True, max_length=2000)
    tags = models.JSONField(default=list, blank=True)
    risk_tier = models.CharField(max_length=16, choices=RiskTier.choices, default=RiskTier.LOW)
    data_classification = models.CharField(
        max_length=16, choices=DataClassification.choices, default=DataClassification.INTERNAL
    )
    status = models.CharField(max_length=16, choices=AgentStatus.choices, default=AgentStatus.ACTIVE)
    external = models.BooleanField(
        default=False, help_text="Runs elsewhere and is only observed (OTLP ingest, gateway)."
    )
    draft_spec = models.JSONField(default=dict)
    # A hard stop for runs: USD per UTC day; 0 means no daily budget (the team's monthly one still applies).
    daily_budget_usd = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="agent_unique_name_per_team")]
        indexes = [models.Index(fields=["team", "status"], name="agent_team_status")]
        permissions = [
            ("promote_agent", "Promote the agent to production"),
            ("run_agent", "Run the agent"),
            ("approve_agent", "Approve the agent's tool calls"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def namespace(self) -> str:
        return self.team.slug


class AgentVersion(PublishedVersion):
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="versions")
    # Resolved references, kept as rows so "who uses this tool version" is one indexed query.
    model = models.ForeignKey("catalog.Model", on_delete=models.PROTECT, related_name="agent_versions")
    prompt_version = models.ForeignKey(
        "prompts.PromptVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="agent_versions"
    )
    tool_versions = models.ManyToManyField("tools.ToolVersion", related_name="agent_versions", blank=True)
    handoff_agents = models.ManyToManyField("agents.Agent", related_name="handoff_from", blank=True)

    class Meta(PublishedVersion.Meta):
        constraints = [models.UniqueConstraint(fields=["agent", "version"], name="agentversion_unique")]

    @property
    def ref(self) -> str:
        return f"{self.agent.name}@{self.version}"


class ChannelName(models.TextChoices):
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"


class Channel(models.Model):
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="channels")
    name = models.CharField(max_length=16, choices=ChannelName.choices)
    version = models.ForeignKey("agents.AgentVersion", on_delete=models.PROTECT, related_name="channels")
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["agent", "name"], name="channel_unique")]

    def __str__(self) -> str:
        return f"{self.agent.name}:{self.name}"


class Promotion(models.Model):
    """One move of a channel: who, when, why, from which version to which (rollbacks too)."""

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="promotions")
    channel = models.CharField(max_length=16, choices=ChannelName.choices)
    from_version = models.ForeignKey("agents.AgentVersion", on_delete=models.PROTECT, null=True, related_name="+")
    to_version = models.ForeignKey("agents.AgentVersion", on_delete=models.PROTECT, related_name="+")
    is_rollback = models.BooleanField(default=False)
    actor = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+")
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.agent.name} {self.channel} → {self.to_version.version}"
