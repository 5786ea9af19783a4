"""What the runtime API shows and takes. Signing secrets appear only in the create and rotate answers."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from apps.agents.models import ChannelName

from ..models import (
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Run,
    RunStatus,
    Schedule,
    Step,
    StepKind,
    StepStatus,
    Trigger,
    UncertainChoice,
    Webhook,
)

MAX_WAIT_SECONDS = 60


def _one_of(choices) -> serializers.CharField:
    """Return a read-only text field documenting its values (an enum named "status" would clash in the schema)."""
    return serializers.CharField(read_only=True, help_text="One of: " + ", ".join(value for value, _ in choices) + ".")


def _absolute(context, path: str) -> str:
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


class StepSerializer(serializers.ModelSerializer):
    kind = _one_of(StepKind.choices)
    status = _one_of(StepStatus.choices)
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    tool_version = serializers.SerializerMethodField()
    cost_usd = serializers.DecimalField(max_digits=14, decimal_places=6, read_only=True)

    class Meta:
        model = Step
        fields = [
            "index",
            "kind",
            "kind_label",
            "name",
            "status",
            "status_label",
            "tool_version",
            "side_effect",
            "input",
            "output",
            "error",
            "tokens_in",
            "tokens_out",
            "cost_usd",
            "latency_ms",
            "child_run",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_tool_version(self, step) -> str | None:
        tv = step.tool_version
        return f"{step.name}@{tv.version}" if tv is not None else None


class RunSerializer(serializers.ModelSerializer):
    agent_name = serializers.CharField(source="agent.name", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    version = serializers.CharField(source="version_label", read_only=True)
    model = serializers.CharField(source="model.ref", read_only=True)
    status = _one_of(RunStatus.choices)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    trigger = _one_of(Trigger.choices)
    started_by = serializers.CharField(source="started_by_label", read_only=True)
    session = serializers.SlugRelatedField(slug_field="key", read_only=True)
    cost_usd = serializers.DecimalField(max_digits=14, decimal_places=6, read_only=True)
    duration_ms = serializers.IntegerField(read_only=True, allow_null=True)
    finished = serializers.BooleanField(read_only=True)
    url = serializers.SerializerMethodField()
    steps_url = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "id",
            "url",
            "agent",
            "agent_name",
            "team",
            "version",
            "is_draft",
            "channel",
            "model",
            "trigger",
            "started_by",
            "status",
            "status_label",
            "finished",
            "simulated",
            "input",
            "output",
            "error",
            "error_code",
            "tokens_in",
            "tokens_out",
            "cost_usd",
            "step_count",
            "model_calls",
            "trace_id",
            "session",
            "parent",
            "depth",
            "created_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "steps_url",
        ]
        read_only_fields = fields

    def get_url(self, run) -> str:
        return _absolute(self.context, reverse("api:run-detail", args=[run.pk]))

    def get_steps_url(self, run) -> str:
        return _absolute(self.context, reverse("api:run-steps", args=[run.pk]))


class RunDetailSerializer(RunSerializer):
    steps = serializers.SerializerMethodField()
    children = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "children", "steps"]
        read_only_fields = fields

    def get_steps(self, run) -> list[dict]:
        return StepSerializer(self.context["steps"], many=True).data

    def get_children(self, run) -> list[int]:
        return list(self.context["children"])


class RunStartSerializer(serializers.Serializer):
    agent = serializers.IntegerField(help_text="The agent's id; its version in the channel runs.")
    input = serializers.JSONField(required=False, default=dict, help_text="Checked against the agent's input schema.")
    channel = serializers.ChoiceField(choices=ChannelName.choices, default=ChannelName.PRODUCTION)
    session = serializers.CharField(required=False, allow_blank=True, max_length=200)
    wait = serializers.FloatField(
        required=False,
        default=0,
        min_value=0,
        max_value=MAX_WAIT_SECONDS,
        help_text=f"Seconds (at most {MAX_WAIT_SECONDS}) to wait for the run to finish or pause before answering.",
    )


class PlaygroundSerializer(serializers.Serializer):
    input = serializers.JSONField(required=False, default=dict)
    session = serializers.CharField(required=False, allow_blank=True, max_length=200)


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class ApprovalSerializer(serializers.ModelSerializer):
    agent = serializers.IntegerField(source="run.agent_id", read_only=True)
    agent_name = serializers.CharField(source="run.agent.name", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    step = serializers.IntegerField(source="step.index", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    kind = _one_of(ApprovalKind.choices)
    status = _one_of(ApprovalStatus.choices)
    choices = serializers.SerializerMethodField()
    run_url = serializers.SerializerMethodField()

    class Meta:
        model = Approval
        fields = [
            "id",
            "team",
            "agent",
            "agent_name",
            "run",
            "run_url",
            "step",
            "kind",
            "tool_name",
            "arguments",
            "reason_required",
            "status",
            "choices",
            "decision",
            "decided_by",
            "decided_at",
            "comment",
            "created_at",
            "expires_at",
        ]
        read_only_fields = fields

    def get_choices(self, approval) -> dict:
        """Return the decisions an uncertain call offers (empty for a plain approval)."""
        return dict(UncertainChoice.choices) if approval.kind == "uncertain" else {}

    def get_run_url(self, approval) -> str:
        return _absolute(self.context, reverse("api:run-detail", args=[approval.run_id]))


APPROVAL_STATUS_FILTER = [*ApprovalStatus.values, "all"]


class ApprovalDecideSerializer(serializers.Serializer):
    approve = serializers.BooleanField()
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    decision = serializers.ChoiceField(choices=UncertainChoice.choices, required=False)


class WebhookSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Webhook
        # Never secret_ciphertext: the secret is shown once, when created or rotated.
        fields = ["id", "agent", "name", "url", "channel", "enabled", "created_by", "created_at", "last_used_at"]
        read_only_fields = fields

    def get_url(self, webhook) -> str:
        """Return the URL callers POST signed requests to."""
        return _absolute(self.context, reverse("runtime:webhook_receive", args=[webhook.token]))


class WebhookCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63)
    channel = serializers.ChoiceField(choices=ChannelName.choices, default=ChannelName.PRODUCTION)


class WebhookEnabledSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()


class ScheduleSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    timezone = serializers.CharField(source="timezone_name", read_only=True)

    class Meta:
        model = Schedule
        fields = [
            "id",
            "agent",
            "name",
            "cron",
            "timezone",
            "input",
            "channel",
            "enabled",
            "created_by",
            "created_at",
            "last_run_at",
        ]
        read_only_fields = fields


class ScheduleCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=63)
    cron = serializers.CharField(max_length=100, help_text="minute hour day-of-month month day-of-week")
    timezone = serializers.CharField(max_length=64, default="UTC")
    input = serializers.JSONField(required=False, default=dict)
    channel = serializers.ChoiceField(choices=ChannelName.choices, default=ChannelName.PRODUCTION)


class ScheduleUpdateSerializer(serializers.Serializer):
    cron = serializers.CharField(max_length=100, required=False)
    timezone = serializers.CharField(max_length=64, required=False)
    input = serializers.JSONField(required=False)
    channel = serializers.ChoiceField(choices=ChannelName.choices, required=False)
    enabled = serializers.BooleanField(required=False)
