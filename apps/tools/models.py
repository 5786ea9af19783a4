"""The tool registry: Tool (editable draft) and immutable ToolVersion."""

from django.db import models
from django.utils import timezone

from apps.core.validation import registry_name_validator
from apps.core.versioning import PublishedVersion


class ToolKind(models.TextChoices):
    HTTP = "http", "HTTP request"
    PYTHON = "python", "Python sandbox"
    HANDOFF = "agent_handoff", "Agent handoff"
    MCP = "mcp", "MCP server tool"
    CONTEXT = "context", "Built-in context tool"


class SideEffect(models.TextChoices):
    READ = "read", "Read only"
    WRITE = "write", "Writes or acts"


class Tool(models.Model):
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="tools")
    name = models.CharField(max_length=63, validators=[registry_name_validator])
    description = models.TextField(blank=True, max_length=2000)
    owner = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="owned_tools")
    draft_spec = models.JSONField(default=dict)
    deprecated = models.BooleanField(default=False)
    deprecated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="tool_unique_name_per_team")]

    def __str__(self) -> str:
        return self.name


class ToolVersion(PublishedVersion):
    tool = models.ForeignKey("tools.Tool", on_delete=models.CASCADE, related_name="versions")
    # Copies of spec fields, for filtering and the inventory without reading JSON.
    kind = models.CharField(max_length=32, choices=ToolKind.choices)
    side_effect = models.CharField(max_length=8, choices=SideEffect.choices)
    permissions_required = models.JSONField(default=list)

    class Meta(PublishedVersion.Meta):
        constraints = [models.UniqueConstraint(fields=["tool", "version"], name="toolversion_unique")]

    @property
    def ref(self) -> str:
        return f"{self.tool.name}@{self.version}"
