"""The demo's external agent: traces of an agent built elsewhere, arriving through OTLP ingest.

`seed_demo_external_traces` builds the OTLP protobuf export that an agent written with another
framework (LangGraph here) would send to /v1/traces, and passes it through the same decoding,
mapping and span-writing path as the endpoint. So the demo fleet's dashboards show an external
agent, registered in the inventory on its first trace, beside the internal ones, with its model
calls priced from the catalog. Span ids are derived from the team and the trace's index:
seeding again stores nothing twice.
"""

from __future__ import annotations

import hashlib
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from .ingest import PROTOBUF, export_decode, export_ingest
from .models import Span

DEMO_AGENT = "support-triage-ext"
ACTOR = "system:seed_demo"
HOUR_NS = 3600 * 1_000_000_000
MS = 1_000_000
# (hours ago, customer question, input tokens, output tokens, whether the ticket lookup failed)
DEMO_TRACES = [
    (160, "My card was charged twice", 1840, 220, False),
    (131, "Where is my refund?", 1620, 180, False),
    (98, "Cancel my subscription", 1410, 160, False),
    (75, "Invoice shows the wrong VAT number", 2210, 260, True),
    (49, "Payout did not arrive", 1930, 240, False),
    (26, "How do I add a team member?", 1280, 150, False),
    (3, "Charge I do not recognise", 2050, 300, False),
]


def _kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        any_value = AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = AnyValue(int_value=value)
    else:
        any_value = AnyValue(string_value=str(value))
    return KeyValue(key=key, value=any_value)


def _id(team_slug: str, index: int, what: str, size: int) -> bytes:
    return hashlib.sha256(f"fleetdeck-demo-ext:{team_slug}:{index}:{what}".encode()).digest()[:size]


def demo_export(team_slug: str, *, now_ns: int | None = None) -> ExportTraceServiceRequest:
    """Return the OTLP export the demo's external agent would send: one trace per question of the week."""
    now_ns = now_ns or time.time_ns()
    export = ExportTraceServiceRequest()
    resource_spans = export.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [
            _kv("service.name", DEMO_AGENT),
            _kv("service.version", "0.9.3"),
            _kv("telemetry.sdk.name", "opentelemetry"),
            _kv("telemetry.sdk.language", "python"),
            _kv("deployment.environment.name", "production"),
        ]
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "langgraph"
    scope_spans.scope.version = "0.2.60"
    for index, (hours_ago, question, input_tokens, output_tokens, tool_failed) in enumerate(DEMO_TRACES):
        trace_id = _id(team_slug, index, "trace", 16)
        root_id, chat_id, tool_id, answer_id = (_id(team_slug, index, w, 8) for w in ("root", "chat", "tool", "answer"))
        start = now_ns - hours_ago * HOUR_NS
        spans = [
            (root_id, b"", "invoke_agent support-triage-ext", OtlpSpan.SPAN_KIND_SERVER, 0, 2600,
             {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": DEMO_AGENT, "input.value": question}),
            (chat_id, root_id, "chat gpt-4o-mini", OtlpSpan.SPAN_KIND_CLIENT, 40, 980,
             {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
              "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
              "gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens // 3}),
            (tool_id, root_id, "execute_tool ticket_lookup", OtlpSpan.SPAN_KIND_INTERNAL, 1030, 1450,
             {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "ticket_lookup",
              "gen_ai.tool.call.id": f"call_{index:03d}", "gen_ai.tool.type": "function"}),
            (answer_id, root_id, "chat gpt-4o-mini", OtlpSpan.SPAN_KIND_CLIENT, 1500, 2550,
             {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
              "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": input_tokens + 350,
              "gen_ai.usage.output_tokens": output_tokens}),
        ]  # fmt: skip
        for span_id, parent, name, kind, begin_ms, end_ms, attributes in spans:
            span = scope_spans.spans.add(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=parent,
                name=name,
                kind=kind,
                start_time_unix_nano=start + begin_ms * MS,
                end_time_unix_nano=start + end_ms * MS,
            )
            span.attributes.extend(_kv(k, v) for k, v in attributes.items())
            if span_id == tool_id and tool_failed:
                span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="ticket service timed out"))
                event = span.events.add(name="exception", time_unix_nano=start + 1450 * MS)
                event.attributes.extend(
                    [_kv("exception.type", "TimeoutError"), _kv("exception.message", "read timeout")]
                )
            else:
                span.status.code = Status.STATUS_CODE_OK
    return export


def seed_demo_external_traces(team) -> int:
    """Ingest the demo's external agent's traces of the last 7 days into the team (once); return spans stored."""
    body = demo_export(team.slug).SerializeToString()
    result = export_ingest(team_id=team.pk, export=export_decode(body, PROTOBUF), actor_label=ACTOR)
    return result.stored


def demo_external_trace_count(team) -> int:
    """Return how many traces of the demo's external agent the team holds."""
    return (
        Span.objects.filter(team=team, source="otlp", agent_name=DEMO_AGENT, parent_span_id="")
        .values("trace_id")
        .distinct()
        .count()
    )


DEMO_ALERT_RULES = [
    # (team slug, name, kind, threshold, window minutes)
    ("payments", "Monthly budget 80% used", "budget_percent", 80, 60),
    ("payments", "Runs failing", "failure_rate", 20, 24 * 60),
    ("support", "Any run over $0.50", "run_cost", "0.50", 60),
]


def seed_demo_alert_rules(*, admin) -> int:
    """Create the demo's alert rules that are missing (idempotent); return how many the demo teams have."""
    from apps.accounts.models import Team

    from .models import AlertRule
    from .services import alert_rule_create

    teams = {t.slug: t for t in Team.objects.filter(slug__in={r[0] for r in DEMO_ALERT_RULES})}
    for slug, name, kind, threshold, window in DEMO_ALERT_RULES:
        team = teams.get(slug)
        if team is not None and not AlertRule.objects.filter(team=team, name=name).exists():
            alert_rule_create(actor=admin, team=team, name=name, kind=kind, threshold=threshold, window_minutes=window)
    return AlertRule.objects.filter(team__in=teams.values()).count()
