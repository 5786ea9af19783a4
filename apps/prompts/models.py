"""The prompt registry: Prompt (editable draft), immutable PromptVersion, labels with rollout."""

from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone

from apps.core.validation import registry_name_validator
from apps.core.versioning import PublishedVersion


class Prompt(models.Model):
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="prompts")
    name = models.CharField(max_length=63, validators=[registry_name_validator])
    description = models.TextField(blank=True, max_length=2000)
    owner = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="owned_prompts")
    draft_spec = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="prompt_unique_name_per_team")]

    def __str__(self) -> str:
        return self.name


class PromptVersion(PublishedVersion):
    prompt = models.ForeignKey("prompts.Prompt", on_delete=models.CASCADE, related_name="versions")

    class Meta(PublishedVersion.Meta):
        constraints = [models.UniqueConstraint(fields=["prompt", "version"], name="promptversion_unique")]

    @property
    def ref(self) -> str:
        return f"{self.prompt.name}@{self.version}"


class PromptLabel(models.Model):
    """A named pointer (production, staging) at a version, with an optional candidate in rollout."""

    prompt = models.ForeignKey("prompts.Prompt", on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=32)
    version = models.ForeignKey("prompts.PromptVersion", on_delete=models.PROTECT, related_name="+")
    candidate = models.ForeignKey(
        "prompts.PromptVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    rollout_percent = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["prompt", "name"], name="promptlabel_unique")]

    def __str__(self) -> str:
        return f"{self.prompt.name}:{self.name}"
