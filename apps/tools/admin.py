from django.contrib import admin

from apps.core.admin import ReadOnlyModelAdmin

from .models import Tool, ToolVersion


@admin.register(Tool)
class ToolAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "team", "owner", "deprecated", "updated_at"]
    list_filter = ["deprecated"]
    search_fields = ["name", "description"]


@admin.register(ToolVersion)
class ToolVersionAdmin(ReadOnlyModelAdmin):
    list_display = ["tool", "version", "kind", "side_effect", "content_hash", "author", "created_at"]
    list_filter = ["kind", "side_effect"]
