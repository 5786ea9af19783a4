"""OTLP/HTTP ingest at /v1/traces: a real OpenTelemetry SDK exports to the live server, and bad input is refused.

The SDK tests run the real `opentelemetry-exporter-otlp-proto-http` exporter against pytest-django's
live server (a real HTTP server on loopback); the refusals use Django's test client, which runs
the same view through the whole middleware stack.
"""

from __future__ import annotations

import gzip
import json
import random
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from apps.accounts.services import token_create, token_revoke
from apps.agents.models import Agent
from apps.agents.selectors import inventory_list, inventory_rows
from apps.agents.services import agent_create
from apps.audit.models import AuditEvent
from apps.catalog.models import Model
from apps.catalog.services import catalog_seed_defaults
from apps.observability import ingest
from apps.observability.demo import DEMO_AGENT, demo_external_trace_count, seed_demo_external_traces
from apps.observability.models import Span, SpanLatency, SpanRollup
from apps.observability.redaction import REDACTED
from apps.observability.rollups import hour_of, rollup_recount

PROTOBUF = "application/x-protobuf"
SECRET_HEADER = "Bearer sk-proj-abcdefghijklmnopqrstuvwxyz012345"


@pytest.fixture(autouse=True)
def _fresh_token_cache():
    ingest.ingest_forget()
    yield
    ingest.ingest_forget()


def ingest_token(user, team, scopes=("ingest",)) -> str:
    _, secret = token_create(actor=user, team=team, name="otel-exporter", scopes=list(scopes))
    return secret


class RecordingExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP exporter, remembering what each export returned."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.results: list[SpanExportResult] = []

    def export(self, spans):
        result = super().export(spans)
        self.results.append(result)
        return result


def sdk(url: str, secret: str, *, service="Support Triage (LangChain)", **exporter_kwargs):
    """Return a tracer provider exporting to the live server, and its exporter."""
    exporter = RecordingExporter(
        endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {secret}"}, timeout=10, **exporter_kwargs
    )
    attributes = {"service.version": "2.1.0", "telemetry.sdk.language": "python"}
    if service is not None:
        attributes["service.name"] = service
    provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=512))
    return provider, exporter


def agent_run(provider, *, input_tokens=1200, output_tokens=300):
    """Record one agent run the way a GenAI-instrumented framework does: agent, model call, tool call."""
    tracer = provider.get_tracer("langchain", "0.3.1")
    with tracer.start_as_current_span(
        "invoke_agent support-triage",
        kind=SpanKind.SERVER,
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support-triage"},
    ) as root:
        with tracer.start_as_current_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                "gen_ai.request.temperature": 0.2,
                "gen_ai.response.finish_reasons": ["tool_calls"],
                "http.request.header.authorization": SECRET_HEADER,
            },
        ) as chat:
            chat.set_status(Status(StatusCode.OK))
        with tracer.start_as_current_span(
            "execute_tool lookup_order",
            attributes={"gen_ai.tool.name": "lookup_order", "gen_ai.tool.call.id": "call_7"},
        ) as tool:
            tool.add_event("retry", {"attempt": 2, "reason": "upstream 502"})
            tool.set_status(Status(StatusCode.ERROR, "order service timed out"))
    return root, chat, tool


def hex_span(span) -> str:
    return f"{span.get_span_context().span_id:016x}"


def hex_trace(span) -> str:
    return f"{span.get_span_context().trace_id:032x}"


def rollups_match_recount(team):
    now = timezone.now()
    start, end = hour_of(now - timedelta(days=8)), hour_of(now) + timedelta(hours=2)
    sums, latency = rollup_recount(team_id=team.pk, start=start, end=end)
    stored = {
        (r.team_id, r.hour, r.source, r.agent_id, r.operation, r.model, r.tool, r.is_run): (
            r.span_count,
            r.error_count,
            r.input_tokens,
            r.output_tokens,
            r.cached_tokens,
            r.cost_usd,
        )
        for r in SpanRollup.objects.filter(team=team)
    }
    recounted = {
        key: (
            v["span_count"],
            v["error_count"],
            v["input_tokens"],
            v["output_tokens"],
            v["cached_tokens"],
            v["cost_usd"],
        )
        for key, v in sums.items()
    }
    assert stored == recounted
    latency_stored = {
        (r.team_id, r.hour, r.agent_id, r.operation, r.model, r.tool, r.is_run, r.bucket): r.count
        for r in SpanLatency.objects.filter(team=team)
    }
    assert latency_stored == latency


# --- The real SDK against the live server ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_sdk_agent_shows_up_with_its_trace_costs_and_rollups(world, live_server):
    catalog_seed_defaults()
    secret = ingest_token(world["builder"], world.team)
    provider, exporter = sdk(live_server.url, secret)
    root, chat, tool = agent_run(provider)
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert exporter.results == [SpanExportResult.SUCCESS]

    spans = {s.span_id: s for s in Span.objects.filter(team=world.team, trace_id=hex_trace(root))}
    assert set(spans) == {hex_span(root), hex_span(chat), hex_span(tool)}
    stored_root, stored_chat, stored_tool = spans[hex_span(root)], spans[hex_span(chat)], spans[hex_span(tool)]
    assert stored_root.parent_span_id == "" and stored_root.is_run and stored_root.kind == "server"
    assert stored_chat.parent_span_id == hex_span(root) and stored_tool.parent_span_id == hex_span(root)
    assert {s.source for s in spans.values()} == {"otlp"}

    # service.name "Support Triage (LangChain)" is registered as an external agent of the team.
    agent = Agent.objects.get(team=world.team, name="support-triage-langchain")
    assert agent.external and agent.status == "active"
    assert {s.agent_id for s in spans.values()} == {agent.pk}
    assert {s.agent_name for s in spans.values()} == {agent.name}
    assert {s.agent_version for s in spans.values()} == {"2.1.0"}
    rows = inventory_rows(inventory_list(user=world["viewer"], filters={"external": "true"}))
    assert [(r["full_name"], r["external"]) for r in rows] == [("payments/support-triage-langchain", True)]
    assert AuditEvent.objects.filter(action="agent.register_external", object_id=str(agent.pk)).exists()

    # The model call is priced from the catalog; the tool call and the run span carry no model cost.
    model = Model.objects.get(provider__name="openai", name="gpt-4o-mini")
    expected = (Decimal(1200) * model.input_price_per_mtok + Decimal(300) * model.output_price_per_mtok) / 1_000_000
    assert stored_chat.cost_usd == expected.quantize(Decimal("0.000001"))
    assert (stored_chat.model, stored_chat.input_tokens, stored_chat.output_tokens) == ("gpt-4o-mini", 1200, 300)
    assert stored_root.cost_usd == 0 and stored_root.operation == "invoke_agent"
    assert (stored_tool.operation, stored_tool.tool, stored_tool.status) == ("execute_tool", "lookup_order", "error")
    assert stored_tool.status_message == "order service timed out"
    assert stored_tool.events[0]["name"] == "retry" and stored_tool.events[0]["attributes"]["attempt"] == 2

    # Attributes are flattened to plain values; the secret in a header attribute is not stored.
    assert stored_chat.attributes["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert stored_chat.attributes["gen_ai.request.temperature"] == 0.2
    assert stored_chat.attributes["otel.scope.name"] == "langchain"
    assert stored_chat.attributes["http.request.header.authorization"] == REDACTED
    assert "sk-proj" not in json.dumps([s.attributes for s in spans.values()])
    assert stored_chat.resource["service.name"] == "Support Triage (LangChain)"

    # Rollups were incremented with the spans and match a recount from the raw spans.
    [chat_rollup] = SpanRollup.objects.filter(team=world.team, operation="chat")
    assert chat_rollup.cost_usd == stored_chat.cost_usd and chat_rollup.agent_id == agent.pk
    rollups_match_recount(world.team)


@pytest.mark.django_db(transaction=True)
def test_gzip_export_and_a_retried_batch_are_stored_once(world, live_server):
    catalog_seed_defaults()
    secret = ingest_token(world["builder"], world.team)
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"x-fleetdeck-token": secret},
        compression=Compression.Gzip,
        timeout=10,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "billing-worker"}), shutdown_on_exit=False)
    finished = []

    class Keep(BatchSpanProcessor):
        def on_end(self, span):
            finished.append(span)

    provider.add_span_processor(Keep(exporter))
    agent_run(provider, input_tokens=500, output_tokens=50)
    agent_run(provider, input_tokens=700, output_tokens=70)
    assert exporter.export(finished) == SpanExportResult.SUCCESS
    rollups = list(SpanRollup.objects.filter(team=world.team).values_list("span_count", "cost_usd"))
    assert Span.objects.filter(team=world.team).count() == 6

    # The exporter retries (e.g. the answer was lost): nothing is stored or counted twice.
    assert exporter.export(finished) == SpanExportResult.SUCCESS
    exporter.shutdown()  # close its keep-alive connection before the live server stops
    assert Span.objects.filter(team=world.team).count() == 6
    assert list(SpanRollup.objects.filter(team=world.team).values_list("span_count", "cost_usd")) == rollups
    assert Agent.objects.filter(team=world.team, name="billing-worker").count() == 1
    rollups_match_recount(world.team)


@pytest.mark.django_db(transaction=True)
def test_a_wrong_token_is_refused_and_the_sdk_stores_nothing(world, live_server):
    provider, exporter = sdk(live_server.url, "fdk_not-a-real-token-at-all-000000000")
    agent_run(provider)
    provider.force_flush(10_000)
    provider.shutdown()
    assert exporter.results == [SpanExportResult.FAILURE]
    assert Span.objects.count() == 0 and not Agent.objects.filter(external=True).exists()


# --- Bodies, through the view ------------------------------------------------------------------


def sdk_body(**resource) -> tuple[bytes, list]:
    """Return the protobuf body the SDK's encoder makes for one recorded agent run."""
    finished = []
    provider = TracerProvider(
        resource=Resource.create(resource or {"service.name": "billing-worker"}), shutdown_on_exit=False
    )

    class Keep(BatchSpanProcessor):
        def on_end(self, span):
            finished.append(span)

    provider.add_span_processor(Keep(OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")))
    agent_run(provider)
    return encode_spans(finished).SerializeToString(), finished


def post(client, body: bytes, secret: str | None, *, content_type=PROTOBUF, **headers):
    if secret is not None:
        headers.setdefault("Authorization", f"Bearer {secret}")
    return client.post("/v1/traces", data=body, content_type=content_type, headers=headers)


def rpc_status(response) -> RpcStatus:
    status = RpcStatus()
    if response["Content-Type"].startswith("application/json"):
        data = response.json()
        status.code, status.message = data.get("code", 0), data.get("message", "")
    else:
        status.ParseFromString(response.content)
    return status


def export_answer(response) -> ExportTraceServiceResponse:
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    return answer


@pytest.mark.django_db
def test_otlp_json_with_hex_ids_and_string_integers_is_accepted(client, world):
    catalog_seed_defaults()
    secret = ingest_token(world["builder"], world.team)
    now = timezone.now()
    start = int(now.timestamp() * 1e9)
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-agent"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "my-framework", "version": "1.0"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "chat gpt-4o",
                                "kind": 3,
                                "startTimeUnixNano": str(start),
                                "endTimeUnixNano": str(start + 250_000_000),
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "2000"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 100}},
                                    {"key": "retry", "value": {"boolValue": True}},
                                    {"key": "score", "value": {"doubleValue": 0.5}},
                                    {"key": "raw", "value": {"bytesValue": "3q2+7w=="}},
                                    {
                                        "key": "tags",
                                        "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "2"}]}},
                                    },
                                    {
                                        "key": "request",
                                        "value": {
                                            "kvlistValue": {"values": [{"key": "n", "value": {"intValue": "3"}}]}
                                        },
                                    },
                                ],
                                "status": {"code": 2, "message": "rate limited"},
                                "someFutureField": {"ignored": True},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = post(client, json.dumps(body).encode(), secret, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json" and response.json() == {}
    span = Span.objects.get(team=world.team)
    assert (span.trace_id, span.span_id, span.kind, span.status) == (
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
        "client",
        "error",
    )
    assert span.attributes["retry"] is True and span.attributes["score"] == 0.5
    assert span.attributes["raw"] == "deadbeef"
    assert span.attributes["tags"] == ["a", 2] and span.attributes["request"] == {"n": 3}
    assert (span.input_tokens, span.output_tokens, span.agent_name) == (2000, 100, "json-agent")
    model = Model.objects.get(provider__name="openai", name="gpt-4o")
    assert span.cost_usd == (
        (Decimal(2000) * model.input_price_per_mtok + Decimal(100) * model.output_price_per_mtok) / 1_000_000
    ).quantize(Decimal("0.000001"))


def bad_spans_export() -> ExportTraceServiceRequest:
    start = int(timezone.now().timestamp() * 1e9)
    export = ExportTraceServiceRequest()
    rs = export.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=AnyValue(string_value="partial-agent"))
    spans = rs.scope_spans.add().spans
    good = {"trace_id": bytes.fromhex("0af7651916cd43dd8448eb211c80319c"), "start_time_unix_nano": start}
    spans.add(**good, span_id=bytes.fromhex("00f067aa0ba902b7"), name="ok one", end_time_unix_nano=start + 10)
    spans.add(trace_id=b"\x01" * 8, span_id=b"\x02" * 8, name="short trace id", start_time_unix_nano=start)
    spans.add(**good, span_id=bytes(8), name="zero span id")
    spans.add(**good, span_id=b"\x03" * 8, name="")
    spans.add(**good, span_id=b"\x04" * 8, parent_span_id=b"\x05" * 3, name="bad parent")
    spans.add(trace_id=good["trace_id"], span_id=b"\x06" * 8, name="millis", start_time_unix_nano=start // 1_000_000)
    # An end before the start is clamped to the start, not rejected.
    spans.add(**good, span_id=b"\x07" * 8, name="ends early", end_time_unix_nano=start - 5_000_000)
    big = spans.add(**good, span_id=b"\x08" * 8, name="absurd usage", end_time_unix_nano=start)
    big.attributes.add(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=10**15))
    spans.add(**good, span_id=bytes.fromhex("00f067aa0ba902b7"), name="repeated id")
    return export


@pytest.mark.django_db
def test_invalid_spans_are_rejected_alone_through_partial_success(client, world):
    secret = ingest_token(world["builder"], world.team)
    response = post(client, bad_spans_export().SerializeToString(), secret)
    assert response.status_code == 200
    answer = export_answer(response)
    assert answer.partial_success.rejected_spans == 7
    message = answer.partial_success.error_message
    assert message.startswith("7 of 9 spans rejected (the others were stored)")
    assert "traceId must be 16 bytes (32 hex characters), got 8 bytes" in message
    assert "spanId is all zeros" in message and "name is empty" in message and "and 4 more" in message
    stored = Span.objects.filter(team=world.team).order_by("name")
    assert [s.name for s in stored] == ["ends early", "ok one"]
    assert stored[0].duration_ms == 0 and stored[0].end_time == stored[0].start_time


@pytest.mark.django_db
def test_partial_success_in_json_names_the_problem(client, world):
    secret = ingest_token(world["builder"], world.team)
    from google.protobuf import json_format

    data = json_format.MessageToDict(bad_spans_export())
    for span in data["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in span:
                import base64

                span[key] = base64.b64decode(span[key]).hex()
    response = post(client, json.dumps(data).encode(), secret, content_type="application/json; charset=utf-8")
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 7 and "parentSpanId must be empty or 8 bytes" not in partial["errorMessage"]
    assert Span.objects.filter(team=world.team).count() == 2


@pytest.mark.django_db
def test_gzip_bodies_are_inflated(client, world):
    secret = ingest_token(world["builder"], world.team)
    body, _ = sdk_body()
    response = post(client, gzip.compress(body), secret, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200 and export_answer(response).ByteSize() == 0
    assert Span.objects.filter(team=world.team).count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case",
    ["truncated", "garbage", "bad-json", "json-array", "base64-ids", "bad-gzip", "truncated-gzip", "deep-json"],
)
def test_undecodable_bodies_answer_400_with_a_status_and_store_nothing(client, world, case):
    secret = ingest_token(world["builder"], world.team)
    body, _ = sdk_body()
    content_type, headers = PROTOBUF, {}
    if case == "truncated":
        body = body[: len(body) // 2]
    elif case == "garbage":
        body = b"\xff\xfe this is not protobuf \x00\x01" * 10
    elif case == "bad-json":
        body, content_type = b'{"resourceSpans": [', "application/json"
    elif case == "json-array":
        body, content_type = b"[]", "application/json"
    elif case == "base64-ids":
        body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "W47/95gDgQPSabYzgT/GDA=="}]}]}]})
        body, content_type = body.encode(), "application/json"
    elif case == "bad-gzip":
        headers = {"Content-Encoding": "gzip"}
    elif case == "truncated-gzip":
        body, headers = gzip.compress(body)[:-20], {"Content-Encoding": "gzip"}
    elif case == "deep-json":
        body, content_type = b'{"resourceSpans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json"
    response = post(client, body, secret, content_type=content_type, **headers)
    assert response.status_code == 400, response.content
    status = rpc_status(response)
    assert status.code == 3 and status.message
    if case == "truncated":
        assert "truncated" in status.message and "application/x-protobuf" in status.message
    if case == "base64-ids":
        assert "not hex" in status.message
    assert Span.objects.count() == 0 and not Agent.objects.filter(external=True).exists()


@pytest.mark.django_db
def test_random_and_truncated_bodies_never_answer_5xx(client, world):
    secret = ingest_token(world["builder"], world.team)
    body, _ = sdk_body()
    rng = random.Random(5)
    bodies = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 400))) for _ in range(60)]
    bodies += [body[:cut] for cut in rng.sample(range(1, len(body)), 40)]
    flipped = bytearray(body)
    for _ in range(40):
        mutated = bytearray(flipped)
        for _ in range(3):
            mutated[rng.randrange(len(mutated))] = rng.getrandbits(8)
        bodies.append(bytes(mutated))
    for candidate in bodies:
        for content_type in (PROTOBUF, "application/json"):
            response = post(client, candidate, secret, content_type=content_type)
            assert response.status_code in (200, 400), (response.status_code, candidate[:40])


@pytest.mark.django_db
def test_nul_characters_nan_and_huge_attribute_counts_are_stored_safely(client, world):
    secret = ingest_token(world["builder"], world.team)
    start = int(timezone.now().timestamp() * 1e9)
    export = ExportTraceServiceRequest()
    rs = export.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=AnyValue(string_value="noisy\x00agent"))
    span = rs.scope_spans.add().spans.add(
        trace_id=b"\x11" * 16, span_id=b"\x22" * 8, name="nul\x00name", start_time_unix_nano=start
    )
    span.attributes.add(key="text\x00key", value=AnyValue(string_value="a\x00b" + "x" * 100_000))
    span.attributes.add(key="nan", value=AnyValue(double_value=float("nan")))
    span.attributes.add(key="inf", value=AnyValue(double_value=float("inf")))
    nested = AnyValue()
    inner = nested
    for _ in range(40):
        inner = inner.array_value.values.add()
    inner.string_value = "deep"
    span.attributes.add(key="deep", value=nested)
    span.attributes.extend(KeyValue(key=f"k{i}", value=AnyValue(int_value=i)) for i in range(20_000))
    for i in range(1000):
        span.events.add(name=f"e{i}", time_unix_nano=start)
    response = post(client, export.SerializeToString(), secret)
    assert response.status_code == 200, response.content
    stored = Span.objects.get(team=world.team)
    assert stored.name == "nulname" and stored.agent_name == "noisyagent"
    assert stored.attributes["textkey"].startswith("ab") and len(stored.attributes["textkey"]) <= 2100
    assert stored.attributes["nan"] == "nan" and stored.attributes["inf"] == "inf"
    assert len(stored.attributes) == 128 and len(stored.events) == 32
    deep = stored.attributes["deep"]
    for _ in range(8):
        deep = deep[0]
    assert deep == "[nested too deep]"


# --- Size limits -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_oversized_bodies_and_gzip_bombs_answer_413(client, world, settings):
    secret = ingest_token(world["builder"], world.team)
    settings.FLEETDECK_INGEST_MAX_BYTES = 10_000
    settings.FLEETDECK_INGEST_MAX_DECOMPRESSED_BYTES = 100_000
    response = post(client, b"\x0a" * 10_001, secret)
    assert response.status_code == 413 and "larger than 10000 bytes" in rpc_status(response).message
    bomb = gzip.compress(b"\x00" * 5_000_000)
    assert len(bomb) < 10_000
    response = post(client, bomb, secret, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413 and "inflates to more than 100000 bytes" in rpc_status(response).message
    assert Span.objects.count() == 0


@pytest.mark.django_db
def test_too_many_spans_in_one_request_answers_413(client, world, monkeypatch):
    secret = ingest_token(world["builder"], world.team)
    monkeypatch.setattr(ingest, "MAX_SPANS_PER_REQUEST", 2)
    body, _ = sdk_body()
    response = post(client, body, secret)
    assert response.status_code == 413 and "at most 2 spans per request" in rpc_status(response).message
    assert Span.objects.count() == 0


# --- Who may send ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_missing_bad_and_revoked_tokens_answer_401(client, world, monkeypatch):
    body, _ = sdk_body()
    response = post(client, body, None)
    assert response.status_code == 401 and "Authorization: Bearer" in rpc_status(response).message
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert post(client, body, "fdk_unknown-token-000000000000000").status_code == 401
    assert post(client, body, None, Authorization="Basic dXNlcjpwYXNz").status_code == 401
    secret = ingest_token(world["builder"], world.team)
    assert post(client, body, secret).status_code == 200
    token = world["builder"].api_tokens.get(name="otel-exporter")
    token_revoke(actor=world["builder"], token=token)
    # Within the cache window a revoked token may still be taken; after it, it is refused.
    monkeypatch.setattr(ingest, "TOKEN_CACHE_SECONDS", 0.0)
    response = post(client, body, secret)
    assert response.status_code == 401 and "revoked" in rpc_status(response).message
    assert AuditEvent.objects.filter(action="auth.token_refused", metadata__reason="revoked").exists()
    assert Span.objects.count() == 3


@pytest.mark.django_db
def test_tokens_without_the_ingest_scope_or_permission_answer_403(client, world):
    body, _ = sdk_body()
    secret = ingest_token(world["builder"], world.team, scopes=("read", "write"))
    response = post(client, body, secret, content_type="application/json")
    assert response.status_code == 403 and response["Content-Type"] == "application/json"
    assert "lacks the 'ingest' scope" in response.json()["message"]
    ingest.ingest_forget()
    # A builder who made an ingest token and was later made a viewer can no longer send.
    secret = ingest_token(world["builder"], world.team)
    world["builder"].memberships.filter(team=world.team).update(role="viewer")
    response = post(client, body, secret)
    assert response.status_code == 403 and "builder or owner" in rpc_status(response).message
    assert Span.objects.count() == 0


@pytest.mark.django_db
def test_a_token_writes_only_to_its_own_team(client, world):
    body, _ = sdk_body(**{"service.name": "merchant-faq"})
    payments_agent = agent_create(actor=world["builder"], team=world.team, name="merchant-faq")
    secret = ingest_token(world["outsider"], world.other_team)
    assert post(client, body, secret).status_code == 200
    assert Span.objects.filter(team=world.team).count() == 0
    spans = Span.objects.filter(team=world.other_team)
    assert spans.count() == 3 and payments_agent.pk not in {s.agent_id for s in spans}
    assert Agent.objects.get(team=world.other_team, name="merchant-faq").external


@pytest.mark.django_db
def test_an_existing_agent_of_the_name_is_used_and_no_service_name_maps_to_unknown(client, world):
    agent = agent_create(actor=world["builder"], team=world.team, name="billing-worker")
    secret = ingest_token(world["builder"], world.team)
    body, _ = sdk_body(**{"service.name": "Billing-Worker"})
    assert post(client, body, secret).status_code == 200
    assert set(Span.objects.values_list("agent_id", flat=True)) == {agent.pk}
    assert not Agent.objects.get(pk=agent.pk).external
    export = ExportTraceServiceRequest()
    span = (
        export.resource_spans.add()
        .scope_spans.add()
        .spans.add(
            trace_id=b"\x31" * 16,
            span_id=b"\x32" * 8,
            name="anonymous",
            start_time_unix_nano=int(timezone.now().timestamp() * 1e9),
        )
    )
    assert span.name == "anonymous"
    assert post(client, export.SerializeToString(), secret).status_code == 200
    assert Span.objects.get(span_id="3232323232323232").agent_name == "unknown-service"
    assert Agent.objects.get(team=world.team, name="unknown-service").external


@pytest.mark.django_db
def test_other_methods_and_content_types_are_refused(client, world):
    secret = ingest_token(world["builder"], world.team)
    response = client.get("/v1/traces", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 405 and response["Allow"] == "POST"
    body, _ = sdk_body()
    response = post(client, body, secret, content_type="text/plain")
    assert response.status_code == 415 and "application/x-protobuf" in rpc_status(response).message
    response = post(client, body, secret, **{"Content-Encoding": "br"})
    assert response.status_code == 415 and "gzip" in rpc_status(response).message
    assert Span.objects.count() == 0


# --- The demo's external agent -----------------------------------------------------------------


@pytest.mark.django_db
def test_demo_external_traces_are_ingested_once_priced_and_spread_over_the_week(world):
    catalog_seed_defaults()
    stored = seed_demo_external_traces(world.team)
    assert stored == 28 and demo_external_trace_count(world.team) == 7
    assert seed_demo_external_traces(world.team) == 0 and Span.objects.filter(team=world.team).count() == 28
    agent = Agent.objects.get(team=world.team, name=DEMO_AGENT)
    assert agent.external
    spans = Span.objects.filter(team=world.team)
    assert all(s.agent_id == agent.pk for s in spans)
    assert sum(s.cost_usd for s in spans if s.operation == "chat") > 0
    assert spans.filter(operation="execute_tool", status="error").count() == 1
    days = {s.start_time.date() for s in spans}
    assert len(days) >= 6 and min(s.start_time for s in spans) > timezone.now() - timedelta(days=7)
    rollups_match_recount(world.team)


# --- PostgreSQL: concurrent exporters ----------------------------------------------------------


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_batches_of_a_new_service_register_one_agent(world, live_server):
    import requests

    secret = ingest_token(world["builder"], world.team)
    bodies = []
    for _ in range(6):
        body, _ = sdk_body(**{"service.name": "parallel-agent"})
        bodies.append(body)
    answers = []

    def send(body):
        answers.append(
            requests.post(
                f"{live_server.url}/v1/traces",
                data=body,
                headers={"Content-Type": PROTOBUF, "Authorization": f"Bearer {secret}"},
                timeout=30,
            ).status_code
        )

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * 6
    assert Agent.objects.filter(team=world.team, name="parallel-agent").count() == 1
    assert Span.objects.filter(team=world.team).count() == 18
    rollups_match_recount(world.team)
