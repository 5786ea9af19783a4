"""The span store and alerts in the admin, read-only: spans are history, rules change through their services."""

from django.contrib import admin

from apps.core.admin import ReadOnlyModelAdmin

from .models import AlertEvent, AlertRule, Span, SpanRollup


@admin.register(Span)
class SpanAdmin(ReadOnlyModelAdmin):
    list_display = [
        "name",
        "team",
        "source",
        "operation",
        "agent_name",
        "status",
        "duration_ms",
        "cost_usd",
        "start_time",
    ]
    list_filter = ["source", "status", "is_run"]
    search_fields = ["trace_id", "span_id", "name", "agent_name"]
    list_select_related = ["team"]
    show_full_result_count = False  # counting millions of spans on every page is not worth it


@admin.register(SpanRollup)
class SpanRollupAdmin(ReadOnlyModelAdmin):
    list_display = ["hour", "team", "source", "agent_id", "operation", "model", "tool", "span_count", "cost_usd"]
    list_filter = ["source", "is_run"]
    list_select_related = ["team"]
    show_full_result_count = False


@admin.register(AlertRule)
class AlertRuleAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "team", "kind", "threshold", "window_minutes", "enabled", "firing", "last_evaluated_at"]
    list_filter = ["kind", "enabled", "firing"]
    list_select_related = ["team"]
    # The webhook URL may hold a token: it stays out of the admin as it stays out of pages.
    exclude = ["webhook_url"]


@admin.register(AlertEvent)
class AlertEventAdmin(ReadOnlyModelAdmin):
    list_display = ["fired_at", "team", "rule", "message", "acknowledged_by", "delivery_status"]
    list_filter = ["delivery_status"]
    list_select_related = ["team", "rule", "acknowledged_by"]
