"""The runtime's spans: one per step and one per run, in one trace, priced from the catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal

import pytest

from apps.catalog.models import Model
from apps.observability.models import Span, SpanRollup
from apps.observability.pricing import MILLION
from apps.observability.rollups import rollup_recount
from apps.runtime.models import Approval, RunStatus, StepKind
from apps.runtime.services import approval_decide
from tests.runtime.loopback import loopback_server

pytestmark = pytest.mark.django_db

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ok_server():
    return loopback_server(lambda request: request.reply(200, {"ok": True}))


def spans_of(run):
    return {s.span_id: s for s in Span.objects.filter(team=run.team, trace_id=run.trace_id)}


def test_every_step_has_its_span_under_the_run_span_and_costs_match_the_catalog(rt):
    with ok_server() as server:
        tool = rt.http_tool("kb.search", f"{server.url}/search/{{q}}", cost_per_call=0.002)
        agent = rt.agent(
            "researcher",
            tools=["kb.search"],
            script=[
                {"call": [{"tool": "kb.search", "arguments": {"q": "{input.topic}"}}]},
                {"answer": "Found {result.body.ok}"},
            ],
        )
        run = rt.run(agent, {"topic": "refunds"})
    assert run.status == RunStatus.SUCCEEDED, run.error
    spans = spans_of(run)
    steps = list(run.steps.order_by("index"))
    run_spans = [s for s in spans.values() if s.operation == "invoke_agent"]
    assert len(run_spans) == 1 and len(spans) == len(steps) + 1
    [root] = run_spans
    assert root.is_run and root.parent_span_id == "" and root.status == "ok" and root.run_id == run.pk
    assert root.agent_id == agent.pk and root.agent_name == "researcher" and root.agent_version == "1.0.0"
    model = Model.objects.get(provider__name="simulated", name="sim-small")
    for step in steps:
        span = spans[step.span_id]
        assert span.parent_span_id == root.span_id and span.run_id == run.pk
        assert span.start_time <= span.end_time
        if step.kind == StepKind.MODEL:
            assert span.operation == "chat" and span.model == "sim-small" and span.kind == "client"
            assert (span.input_tokens, span.output_tokens) == (step.tokens_in, step.tokens_out)
            expected = (
                Decimal(step.tokens_in) * model.input_price_per_mtok
                + Decimal(step.tokens_out) * model.output_price_per_mtok
            ) / MILLION
            assert span.cost_usd == expected.quantize(Decimal("0.000001"), ROUND_HALF_UP) == step.cost_usd
            assert span.attributes["gen_ai.request.model"] == "sim-small"
        else:
            assert span.operation == "execute_tool" and span.tool == "kb.search"
            assert span.attributes["gen_ai.tool.call.id"] == step.call_id
            assert span.cost_usd == Decimal("0.002") == step.cost_usd
    assert sum(s.cost_usd for s in spans.values()) == run.cost_usd
    assert tool.pk  # the registry tool the span names


def test_failed_run_span_is_an_error_with_the_runs_message(rt):
    agent = rt.agent(
        "caller",
        script=[{"call": [{"tool": "nope", "arguments": {}}]}, {"answer": "not json"}],
        output_schema={"type": "object"},
    )
    run = rt.run(agent)
    assert run.status == RunStatus.FAILED
    root = Span.objects.get(trace_id=run.trace_id, operation="invoke_agent")
    assert root.status == "error" and root.status_message == run.error[:1000]
    assert root.attributes["fleetdeck.run.error_code"] == "bad_output"
    # The call to an unknown tool was refused at the decision point: an error span of its own.
    refused = Span.objects.get(trace_id=run.trace_id, tool="nope")
    assert refused.status == "error" and refused.cost_usd == 0


def test_handoff_child_run_is_in_the_parents_trace_under_the_handoff_span(rt):
    rt.agent("specialist", script=[{"answer": "specialist says ok"}])
    front = rt.agent(
        "front",
        handoffs=["specialist"],
        script=[
            {"call": [{"tool": "handoff_to_specialist", "arguments": {"input": {"topic": "x"}}}]},
            {"answer": "front: {result}"},
        ],
    )
    run = rt.run(front, {"topic": "refunds"})
    assert run.status == RunStatus.SUCCEEDED, run.error
    handoff = run.steps.get(kind=StepKind.HANDOFF)
    child = handoff.child_run
    spans = spans_of(run)
    child_root = next(s for s in spans.values() if s.run_id == child.pk and s.operation == "invoke_agent")
    assert child_root.parent_span_id == handoff.span_id
    assert spans[handoff.span_id].attributes["fleetdeck.child_run.id"] == child.pk
    assert len(spans) == run.steps.count() + child.steps.count() + 2


def test_an_approval_wait_is_a_span_covering_the_wait(rt):
    with ok_server() as server:
        rt.http_tool("refund.issue", f"{server.url}/refund", method="POST", side_effect="write", requires_approval=True)
        agent = rt.agent(
            "refunder",
            tools=["refund.issue"],
            script=[{"call": [{"tool": "refund.issue", "arguments": {"q": "42"}}]}, {"answer": "done"}],
        )
        run = rt.run(agent)
        assert run.status == RunStatus.WAITING
        # No run span yet: the run has not ended.
        assert not Span.objects.filter(trace_id=run.trace_id, operation="invoke_agent").exists()
        approval = Approval.objects.get(run=run)
        approval_decide(actor=rt.operator, approval=approval, approve=True, comment="fine")
        run = rt.drive(run, worker="another-worker@elsewhere:2")
    assert run.status == RunStatus.SUCCEEDED
    approval.refresh_from_db()
    step = run.steps.get(kind=StepKind.APPROVAL)
    span = Span.objects.get(trace_id=run.trace_id, span_id=step.span_id)
    assert span.operation == "approval"
    assert span.start_time == approval.created_at and span.end_time == approval.decided_at
    assert Span.objects.filter(trace_id=run.trace_id).count() == run.steps.count() + 1


def test_rollups_match_a_recount_of_the_raw_spans(rt):
    good = rt.agent("good", script=[{"answer": "ok"}])
    bad = rt.agent("bad", script=[{"answer": "not json"}], output_schema={"type": "object"})
    for _ in range(3):
        rt.run(good)
    rt.run(bad)
    first = Span.objects.order_by("start_time").first().start_time.replace(minute=0, second=0, microsecond=0)
    sums, latency = rollup_recount(team_id=rt.team.pk, start=first, end=first.replace(year=first.year + 1))
    stored = {
        (r.team_id, r.hour, r.source, r.agent_id, r.operation, r.model, r.tool, r.is_run): r
        for r in SpanRollup.objects.filter(team=rt.team)
    }
    assert set(stored) == set(sums)
    for key, value in sums.items():
        row = stored[key]
        for column in ("span_count", "error_count", "input_tokens", "output_tokens", "cost_usd"):
            assert getattr(row, column) == value[column], (key, column)
    runs = sum(r.span_count for r in stored.values() if r.is_run)
    failed = sum(r.error_count for r in stored.values() if r.is_run)
    assert (runs, failed) == (4 + 0, 1)
    assert latency


def test_a_run_started_by_a_request_links_to_the_requests_span(client, world, rt):
    from apps.accounts.services import token_create

    agent = rt.agent("linked", script=[{"answer": "ok"}])
    _, secret = token_create(actor=world["operator"], team=world.team, name="runner", scopes=["run", "read"])
    response = client.post(
        "/api/v1/runs/",
        {"agent": agent.pk, "input": {}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
        HTTP_TRACEPARENT="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    assert response.status_code in (201, 202), response.content
    from apps.runtime.models import Run

    run = Run.objects.get(pk=response.json()["id"])
    # The request joined the caller's trace (W3C traceparent header), and the run records that request's span.
    assert run.origin_traceparent.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    run = rt.drive(run)
    root = Span.objects.get(trace_id=run.trace_id, operation="invoke_agent")
    assert root.attributes["fleetdeck.links"] == [run.origin_traceparent[:-2] + "01"]


def test_spans_also_go_to_an_external_collector_over_otlp(tmp_path):
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, the platform's spans reach that collector (a real HTTP server here)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received = []

    def handler(request):
        received.append((request.path, request.headers.get("Content-Type"), request.body))
        request.reply(200, {})

    script = (
        "import django; django.setup()\n"
        "from apps.observability import tracing\n"
        "tracing.emit_span(name='invoke_agent demo', trace_id='ab'*16, span_id='cd'*8, start_ns=1_700_000_000_000_000_000,"
        " end_ns=1_700_000_000_500_000_000, attributes={'fleetdeck.team.id': 1, 'gen_ai.operation.name': 'invoke_agent'})\n"
        "assert tracing.flush()\n"
    )
    with loopback_server(handler) as server:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "platform_site.settings",
            "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
            "FLEETDECK_TRACE_EXPORT": "off",
            "FLEETDECK_VAR_DIR": str(tmp_path),
        }
        result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
    [(path, content_type, body)] = received
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    [span] = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert span.name == "invoke_agent demo" and span.trace_id.hex() == "ab" * 16 and span.span_id.hex() == "cd" * 8
    resource = {a.key: a.value.string_value for a in request.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "fleetdeck"
    assert json.dumps(resource)  # plain values


def test_a_run_executed_inside_a_task_span_keeps_its_own_trace(rt):
    """A worker runs the engine inside Celery's task span: the run's spans stay in the run's trace."""
    from apps.observability.tracing import tracer

    agent = rt.agent("inside", script=[{"answer": "ok"}])
    run = rt.start(agent)
    with tracer().start_as_current_span("run/runtime.run_execute"):
        run = rt.drive(run)
    root = Span.objects.get(run_id=run.pk, operation="invoke_agent")
    assert root.trace_id == run.trace_id and root.parent_span_id == ""
    assert not Span.objects.filter(name="run/runtime.run_execute").exists()  # framework spans stay out of the store
