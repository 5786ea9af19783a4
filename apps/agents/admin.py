from django.contrib import admin

from apps.core.admin import ReadOnlyModelAdmin

from .models import Agent, AgentVersion, Channel, Promotion


@admin.register(Agent)
class AgentAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "team", "owner", "status", "risk_tier", "updated_at"]
    list_filter = ["status", "risk_tier"]
    search_fields = ["name", "description"]


@admin.register(AgentVersion)
class AgentVersionAdmin(ReadOnlyModelAdmin):
    list_display = ["agent", "version", "model", "content_hash", "author", "created_at"]


@admin.register(Channel)
class ChannelAdmin(ReadOnlyModelAdmin):
    list_display = ["agent", "name", "version", "updated_at"]


@admin.register(Promotion)
class PromotionAdmin(ReadOnlyModelAdmin):
    list_display = ["agent", "channel", "from_version", "to_version", "is_rollback", "actor", "created_at"]
