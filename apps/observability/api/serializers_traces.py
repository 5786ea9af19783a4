"""What the traces, spans and rollups API shows. Attributes are stored redacted, so they are shown as stored."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from ..models import Span, SpanSource, SpanStatus
from ..traces import DETAIL_FIELDS, TRACE_FIELDS


def _one_of(choices, **kwargs) -> serializers.CharField:
    """Return a read-only text field documenting its values (an enum named "status" would clash in the schema)."""
    return serializers.CharField(
        read_only=True, help_text="One of: " + ", ".join(value for value, _ in choices) + ".", **kwargs
    )


def _absolute(context, path: str) -> str:
    request = context.get("request")
    return request.build_absolute_uri(path) if request is not None else path


def trace_url(context, trace_id: str, team: str) -> str:
    return _absolute(context, reverse("api:trace-detail", args=[trace_id]) + f"?team={team}")


class SpanSerializer(serializers.ModelSerializer):
    team = serializers.SerializerMethodField()
    status = _one_of(SpanStatus.choices)
    source = _one_of(SpanSource.choices)
    cost_usd = serializers.DecimalField(max_digits=14, decimal_places=6, read_only=True)

    class Meta:
        model = Span
        # The span's columns (its team as a slug), then the attribute blobs.
        fields = [*("team" if f == "team_id" else f for f in TRACE_FIELDS), *DETAIL_FIELDS]
        read_only_fields = fields

    def get_team(self, span) -> str:
        """Return the slug of the span's team."""
        return self.context["teams"][span.team_id]


class TraceSpanSerializer(SpanSerializer):
    depth = serializers.IntegerField(read_only=True, help_text="How deep the span is nested (roots: 0).")

    class Meta(SpanSerializer.Meta):
        fields = [*SpanSerializer.Meta.fields, "depth"]
        read_only_fields = fields


class TraceTotalsSerializer(serializers.Serializer):
    """What a trace list row and a whole trace share: its time, status and totals."""

    trace_id = serializers.CharField(read_only=True)
    team = serializers.CharField(read_only=True, help_text="The slug of the trace's team.")
    start_time = serializers.DateTimeField(read_only=True)
    end_time = serializers.DateTimeField(read_only=True)
    duration_ms = serializers.FloatField(read_only=True)
    status = serializers.CharField(read_only=True, help_text="error when any span of the trace failed, else ok.")
    span_count = serializers.IntegerField(read_only=True)
    error_count = serializers.IntegerField(read_only=True)
    input_tokens = serializers.IntegerField(read_only=True)
    output_tokens = serializers.IntegerField(read_only=True)
    cached_tokens = serializers.IntegerField(read_only=True)
    cost_usd = serializers.DecimalField(max_digits=18, decimal_places=6, read_only=True)


class TraceSummarySerializer(TraceTotalsSerializer):
    url = serializers.SerializerMethodField()
    name = serializers.CharField(source="root.name", read_only=True, help_text="The root span's name.")
    agent_id = serializers.IntegerField(source="root.agent_id", read_only=True, allow_null=True)
    agent_name = serializers.CharField(source="root.agent_name", read_only=True)
    run_id = serializers.IntegerField(source="root.run_id", read_only=True, allow_null=True)
    source = _one_of(SpanSource.choices, source="root.source")

    def get_url(self, trace) -> str:
        return trace_url(self.context, trace.trace_id, trace.team)


class TracePageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True, read_only=True, help_text="The next (older) page, or null.")
    since = serializers.DateTimeField(read_only=True)
    until = serializers.DateTimeField(read_only=True)
    results = TraceSummarySerializer(many=True, read_only=True)


class TraceDetailSerializer(TraceTotalsSerializer):
    other_teams = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Other teams you may see with a trace of the same id (read them with ?team=<slug>).",
    )
    truncated = serializers.BooleanField(read_only=True, help_text="True when the trace has more spans than shown.")
    spans = serializers.SerializerMethodField()

    def get_spans(self, trace) -> list[dict]:
        """Return the spans depth first, children under their parent in start order."""
        return TraceSpanSerializer(
            trace.spans, many=True, context={**self.context, "teams": {trace.team_id: trace.team}}
        ).data


class RollupSerializer(serializers.Serializer):
    period = serializers.DateTimeField(read_only=True, help_text="The hour (or day, with group_by=day), UTC.")
    team = serializers.SerializerMethodField()
    agent_id = serializers.IntegerField(read_only=True, help_text="0 for spans that name no agent.")
    source = _one_of(SpanSource.choices)
    operation = serializers.CharField(read_only=True)
    model = serializers.CharField(read_only=True)
    tool = serializers.CharField(read_only=True)
    is_run = serializers.BooleanField(read_only=True)
    span_count = serializers.IntegerField(read_only=True)
    error_count = serializers.IntegerField(read_only=True)
    input_tokens = serializers.IntegerField(read_only=True)
    output_tokens = serializers.IntegerField(read_only=True)
    cached_tokens = serializers.IntegerField(read_only=True)
    cost_usd = serializers.DecimalField(max_digits=18, decimal_places=6, read_only=True)
    duration_sum_ms = serializers.FloatField(read_only=True)
    duration_max_ms = serializers.FloatField(read_only=True)
    duration_avg_ms = serializers.SerializerMethodField()

    def get_team(self, row) -> str:
        """Return the slug of the row's team."""
        return self.context["teams"][row["team_id"]]

    def get_duration_avg_ms(self, row) -> float:
        return round(row["duration_sum_ms"] / row["span_count"], 3) if row["span_count"] else 0.0
