"""Runs, approvals and triggers in the admin, read-only: they change through the runtime's services."""

from django.contrib import admin

from apps.core.admin import ReadOnlyModelAdmin

from .models import Approval, Run, Schedule, Session, Step, Webhook


@admin.register(Run)
class RunAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "agent", "team", "trigger", "status", "step_count", "cost_usd", "created_at"]
    list_filter = ["status", "trigger", "simulated"]
    search_fields = ["agent__name", "trace_id", "error"]
    list_select_related = ["agent", "team"]


@admin.register(Step)
class StepAdmin(ReadOnlyModelAdmin):
    list_display = ["run", "index", "kind", "name", "status", "latency_ms"]
    list_filter = ["kind", "status"]
    list_select_related = ["run__agent"]


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "tool_name", "run", "kind", "status", "decided_by", "created_at", "expires_at"]
    list_filter = ["status", "kind"]
    list_select_related = ["run__agent", "decided_by"]


@admin.register(Session)
class SessionAdmin(ReadOnlyModelAdmin):
    list_display = ["key", "agent", "team", "updated_at"]


@admin.register(Webhook)
class WebhookAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "agent", "team", "channel", "enabled", "last_used_at"]
    # The encrypted secret stays out of every page, the admin's included.
    exclude = ["secret_ciphertext"]


@admin.register(Schedule)
class ScheduleAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "agent", "team", "cron", "timezone_name", "channel", "enabled", "last_run_at"]
