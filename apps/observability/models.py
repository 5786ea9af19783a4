"""The span store, its hourly rollups, and alert rules and events.

Spans are written by one path only (`store.spans_write`): the runtime's OpenTelemetry exporter,
OTLP ingest and (later) the gateway all call it, so every dashboard covers internal and
external agents alike (DESIGN.md invariant 8).

Agent and run are kept as plain ids without database constraints: spans are history written at
volume, they must not cascade or lock when an agent or run changes, and `agent_name` keeps the
name a span was written under.
"""

from django.db import models
from django.utils import timezone


class SpanSource(models.TextChoices):
    RUNTIME = "runtime", "Fleetdeck runtime"
    OTLP = "otlp", "OTLP ingest"
    GATEWAY = "gateway", "LLM gateway"


class SpanStatus(models.TextChoices):
    UNSET = "unset", "Unset"
    OK = "ok", "OK"
    ERROR = "error", "Error"


class Span(models.Model):
    id = models.BigAutoField(primary_key=True)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, default="internal")
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    duration_ms = models.FloatField(default=0)
    status = models.CharField(max_length=5, choices=SpanStatus.choices, default=SpanStatus.UNSET)
    status_message = models.CharField(max_length=1000, blank=True)
    attributes = models.JSONField(default=dict)
    resource = models.JSONField(default=dict)
    events = models.JSONField(default=list)
    source = models.CharField(max_length=8, choices=SpanSource.choices)
    # Denormalised so dashboards and search never parse attributes.
    operation = models.CharField(max_length=40, blank=True)
    agent_id = models.BigIntegerField(null=True, blank=True)
    agent_name = models.CharField(max_length=63, blank=True)
    agent_version = models.CharField(max_length=32, blank=True)
    run_id = models.BigIntegerField(null=True, blank=True)
    model = models.CharField(max_length=100, blank=True)
    tool = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    # A run: a trace's root span or an agent invocation. Run counts and failure rates count these.
    is_run = models.BooleanField(default=False)
    ingested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["start_time", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "trace_id", "span_id"], name="span_unique_per_trace"),
        ]
        indexes = [
            models.Index(fields=["team", "start_time"], name="span_team_start"),
            models.Index(fields=["agent_id", "start_time"], name="span_agent_start"),
            models.Index(fields=["team", "is_run", "start_time"], name="span_team_runs"),
            models.Index(fields=["run_id"], name="span_run"),
            # The agent dashboard's error breakdown reads failed runs only: a small partial index.
            models.Index(
                fields=["agent_id", "start_time"],
                condition=models.Q(is_run=True, status="error"),
                name="span_agent_failed_runs",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.trace_id}/{self.span_id})"


class SpanRollup(models.Model):
    """Counts, errors, tokens and cost per hour and (source, agent, operation, model, tool, is_run).

    Kept current by atomic increments in the same transaction that stores the spans, so it always
    equals a recount of the raw spans it covers (`rollups.rollup_recount`).
    """

    id = models.BigAutoField(primary_key=True)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    source = models.CharField(max_length=8, choices=SpanSource.choices)
    agent_id = models.BigIntegerField(default=0, help_text="0 when the spans name no agent.")
    operation = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=100, blank=True)
    tool = models.CharField(max_length=100, blank=True)
    is_run = models.BooleanField(default=False)
    span_count = models.BigIntegerField(default=0)
    error_count = models.BigIntegerField(default=0)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    duration_sum_ms = models.FloatField(default=0)
    duration_max_ms = models.FloatField(default=0)

    class Meta:
        ordering = ["hour", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "hour", "source", "agent_id", "operation", "model", "tool", "is_run"],
                name="rollup_unique_key",
            ),
        ]
        indexes = [
            models.Index(fields=["team", "hour"], name="rollup_team_hour"),
            models.Index(fields=["agent_id", "hour"], name="rollup_agent_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.operation} {self.model or self.tool}: {self.span_count}"


class SpanLatency(models.Model):
    """A latency histogram per hour and (agent, operation, model, tool, is_run): spans per bucket.

    Bucket i counts durations in (BOUNDS_MS[i-1], BOUNDS_MS[i]] (see `rollups.BOUNDS_MS`); p50
    and p95 over any period are read by summing buckets, with at most 10% error.
    """

    id = models.BigAutoField(primary_key=True)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    agent_id = models.BigIntegerField(default=0)
    operation = models.CharField(max_length=40, blank=True)
    model = models.CharField(max_length=100, blank=True)
    tool = models.CharField(max_length=100, blank=True)
    is_run = models.BooleanField(default=False)
    bucket = models.PositiveSmallIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["hour", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "hour", "agent_id", "operation", "model", "tool", "is_run", "bucket"],
                name="latency_unique_key",
            ),
        ]
        indexes = [
            models.Index(fields=["team", "hour"], name="latency_team_hour"),
            models.Index(fields=["agent_id", "hour"], name="latency_agent_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.operation} bucket {self.bucket}: {self.count}"


class AlertKind(models.TextChoices):
    BUDGET_PERCENT = "budget_percent", "Team's monthly budget used (%)"
    FAILURE_RATE = "failure_rate", "Failure rate of runs (%)"
    COST_RISE = "cost_rise", "Cost rise week over week (%)"
    LATENCY_P95 = "latency_p95", "Run latency p95 (ms)"
    RUN_COST = "run_cost", "A run over a cost (USD)"


class AlertRule(models.Model):
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    threshold = models.DecimalField(max_digits=14, decimal_places=4)
    # Narrow the rule to one agent; null covers the whole team.
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    window_minutes = models.PositiveIntegerField(default=60, help_text="The period the value is measured over.")
    webhook_url = models.URLField(blank=True, max_length=500)
    enabled = models.BooleanField(default=True)
    # While a rule's condition holds it fires once; it fires again only after it has cleared.
    firing = models.BooleanField(default=False)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    created_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="alert_rule_unique_name_per_team")]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    NONE = "none", "No webhook"
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class AlertEvent(models.Model):
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="alert_events")
    rule = models.ForeignKey("observability.AlertRule", on_delete=models.CASCADE, related_name="events")
    fired_at = models.DateTimeField(default=timezone.now)
    value = models.FloatField()
    threshold = models.FloatField()
    message = models.CharField(max_length=500)
    # The run (internal) or trace (external) that crossed a run-cost rule, when there is one.
    run_id = models.BigIntegerField(null=True, blank=True)
    trace_id = models.CharField(max_length=32, blank=True)
    acknowledged_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    delivery_status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.NONE)
    delivery_attempts = models.PositiveSmallIntegerField(default=0)
    delivery_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-fired_at", "-id"]
        indexes = [models.Index(fields=["team", "-fired_at"], name="alert_event_team_fired")]

    def __str__(self) -> str:
        return self.message
