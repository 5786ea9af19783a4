from django.contrib import admin

from apps.core.admin import ReadOnlyModelAdmin

from .models import Prompt, PromptLabel, PromptVersion


@admin.register(Prompt)
class PromptAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "team", "owner", "updated_at"]
    search_fields = ["name", "description"]


@admin.register(PromptVersion)
class PromptVersionAdmin(ReadOnlyModelAdmin):
    list_display = ["prompt", "version", "content_hash", "author", "created_at"]


@admin.register(PromptLabel)
class PromptLabelAdmin(ReadOnlyModelAdmin):
    list_display = ["prompt", "name", "version", "candidate", "rollout_percent", "updated_at"]
