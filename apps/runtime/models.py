"""Runs and their steps, approvals, sessions, webhooks and schedules.

A Run pins what it executes: the agent version (or, for a playground run, the draft's resolved
spec), the channel, the trigger and who started it. Each Step is committed before its side effect
(status started) and after it (succeeded, failed, ...), so a worker that dies mid-run is
recovered from the last committed step (DESIGN.md invariant 4).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    WAITING = "waiting_for_approval", "Waiting for approval"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    LIMIT_EXCEEDED = "limit_exceeded", "Limit exceeded"
    TIMED_OUT = "timed_out", "Timed out"


FINISHED = {
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.LIMIT_EXCEEDED,
    RunStatus.TIMED_OUT,
}


class Trigger(models.TextChoices):
    UI = "ui", "Run form"
    PLAYGROUND = "playground", "Studio playground"
    API = "api", "API"
    WEBHOOK = "webhook", "Webhook"
    SCHEDULE = "schedule", "Schedule"
    HANDOFF = "handoff", "Handoff"


class Session(models.Model):
    """A conversation: runs with the same session key see the earlier turns."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="sessions")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="sessions")
    key = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [models.UniqueConstraint(fields=["agent", "key"], name="session_unique_key_per_agent")]

    def __str__(self) -> str:
        return self.key


class Run(models.Model):
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="runs")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="runs")
    # None for a playground run of a draft; spec then holds the draft as resolved at start.
    agent_version = models.ForeignKey(
        "agents.AgentVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="runs"
    )
    channel = models.CharField(max_length=16, blank=True)
    is_draft = models.BooleanField(default=False)
    spec = models.JSONField(default=dict)
    spec_hash = models.CharField(max_length=64, blank=True)
    model = models.ForeignKey("catalog.Model", on_delete=models.PROTECT, related_name="runs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    trigger_ref = models.CharField(max_length=100, blank=True, help_text="Which webhook, schedule or token.")
    started_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="started_runs"
    )
    started_by_label = models.CharField(max_length=200, blank=True)
    input = models.JSONField(default=dict)
    output = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=24, choices=RunStatus.choices, default=RunStatus.QUEUED)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    step_count = models.PositiveIntegerField(default=0)
    model_calls = models.PositiveIntegerField(default=0)
    trace_id = models.CharField(max_length=32)
    # The W3C traceparent of the request or task that started the run; the run's span links to it.
    origin_traceparent = models.CharField(max_length=55, blank=True)
    session = models.ForeignKey(
        "runtime.Session", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    parent = models.ForeignKey("runtime.Run", on_delete=models.CASCADE, null=True, blank=True, related_name="children")
    depth = models.PositiveSmallIntegerField(default=0)
    idempotency_key = models.CharField(max_length=200, blank=True)
    simulated = models.BooleanField(default=False)
    cancel_requested = models.BooleanField(default=False)
    # The worker executing the run now; the reaper takes over when that worker's heartbeat stops.
    worker = models.CharField(max_length=255, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    recoveries = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["team", "-created_at"], name="run_team_created"),
            models.Index(fields=["agent", "-created_at"], name="run_agent_created"),
            models.Index(fields=["status"], name="run_status"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="run_unique_idempotency_key_per_team",
            )
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.agent.name}"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return int((end - self.started_at).total_seconds() * 1000)

    @property
    def version_label(self) -> str:
        return "draft" if self.is_draft else (self.spec.get("_version") or "")


class StepKind(models.TextChoices):
    MODEL = "model_call", "Model call"
    TOOL = "tool_call", "Tool call"
    HANDOFF = "handoff", "Handoff"
    APPROVAL = "approval", "Approval"
    GUARDRAIL = "guardrail", "Guardrail"
    LIMIT = "limit", "Limit"


class StepStatus(models.TextChoices):
    STARTED = "started", "Started"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused"
    WAITING = "waiting", "Waiting for approval"
    REJECTED = "rejected", "Rejected"
    UNCERTAIN = "uncertain", "Uncertain: may have run"


class Step(models.Model):
    run = models.ForeignKey("runtime.Run", on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=StepKind.choices)
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.STARTED)
    # The model's tool call id this step answers (tool steps) so messages can be rebuilt on resume.
    call_id = models.CharField(max_length=100, blank=True)
    tool_version = models.ForeignKey(
        "tools.ToolVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="steps"
    )
    side_effect = models.BooleanField(default=False)
    idempotency_key = models.CharField(max_length=64, blank=True)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    child_run = models.ForeignKey("runtime.Run", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    span_id = models.CharField(max_length=16, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="step_unique_index_per_run")]

    def __str__(self) -> str:
        return f"step {self.index} ({self.kind} {self.name})"


class ApprovalKind(models.TextChoices):
    TOOL_CALL = "tool_call", "Tool call needs approval"
    UNCERTAIN = "uncertain", "Tool call may have run"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


class UncertainChoice(models.TextChoices):
    RETRY = "retry", "Run it again with the same idempotency key"
    ASSUME_DONE = "assume_done", "It ran: go on without running it again"
    FAIL = "fail", "Stop the run"


class Approval(models.Model):
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="approvals")
    run = models.ForeignKey("runtime.Run", on_delete=models.CASCADE, related_name="approvals")
    step = models.OneToOneField("runtime.Step", on_delete=models.CASCADE, related_name="approval")
    kind = models.CharField(max_length=16, choices=ApprovalKind.choices, default=ApprovalKind.TOOL_CALL)
    tool_name = models.CharField(max_length=200)
    arguments = models.JSONField(default=dict)
    reason_required = models.CharField(max_length=300, help_text="Why a person must decide.")
    status = models.CharField(max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    decision = models.CharField(max_length=16, blank=True, help_text="For uncertain calls: retry, assume_done, fail.")
    decided_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["team", "status"], name="approval_team_status")]

    def __str__(self) -> str:
        return f"approval of {self.tool_name} in run {self.run_id}"


class Webhook(models.Model):
    """A URL that starts a run of the agent when called with a valid HMAC-SHA256 signature."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="webhooks")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=63)
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # The signing secret, encrypted with the platform's Fernet keys; shown once when created.
    secret_ciphertext = models.TextField()
    channel = models.CharField(max_length=16, default="production")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["agent", "name"], name="webhook_unique_name_per_agent")]

    def __str__(self) -> str:
        return f"{self.agent.name}/{self.name}"


class WebhookDelivery(models.Model):
    """A signature already accepted: the same signed request again is a replay and is refused."""

    webhook = models.ForeignKey("runtime.Webhook", on_delete=models.CASCADE, related_name="deliveries")
    signature = models.CharField(max_length=64)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    run = models.ForeignKey("runtime.Run", on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["webhook", "signature"], name="webhook_delivery_unique")]

    def __str__(self) -> str:
        return f"delivery to webhook {self.webhook_id} at {self.received_at:%Y-%m-%d %H:%M:%S}"


class Schedule(models.Model):
    """A cron expression that starts a run of the agent; beat's PeriodicTask row is kept in step."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="schedules")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=63)
    cron = models.CharField(max_length=100, help_text="minute hour day-of-month month day-of-week")
    timezone_name = models.CharField(max_length=64, default="UTC")
    input = models.JSONField(default=dict)
    channel = models.CharField(max_length=16, default="production")
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey("accounts.User", on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["agent", "name"], name="schedule_unique_name_per_agent")]

    def __str__(self) -> str:
        return f"{self.agent.name}/{self.name}"


class SpendPeriod(models.TextChoices):
    DAY = "day", "Day"
    MONTH = "month", "Month"


class SpendCounter(models.Model):
    """Money spent by an agent in a day or a team in a month, kept as one row so budgets are one read."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    period = models.CharField(max_length=8, choices=SpendPeriod.choices)
    period_start = models.DateField()
    cost_usd = models.DecimalField(max_digits=16, decimal_places=6, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "agent", "period", "period_start"], name="spend_counter_unique"),
            models.UniqueConstraint(
                fields=["team", "period", "period_start"],
                condition=models.Q(agent__isnull=True),
                name="spend_counter_unique_team",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.period} from {self.period_start}: {self.cost_usd} USD"


class RateWindow(models.Model):
    """A fixed-window counter for per-tool rate limits where there is no Redis (the embedded default)."""

    key = models.CharField(max_length=200, unique=True)
    window_start = models.BigIntegerField()
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
