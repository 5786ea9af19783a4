"""The traces, spans and rollups API: shapes, filters, paging, tenant isolation and bad input."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.accounts.services import token_create
from apps.observability.models import Span, SpanRollup
from tests.observability.test_traces import make_fleet, otlp_trace, thousand_span_trace, view_timings

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(rt):
    return make_fleet(rt)


def bearer(world, role: str = "viewer", scopes=("read",), team=None) -> dict:
    _, secret = token_create(actor=world[role], team=team or world.team, name=f"{role}-api", scopes=list(scopes))
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_trace_list_shape_and_filters_with_a_read_token(client, world, fleet):
    auth = bearer(world)
    body = client.get("/api/v1/traces/", **auth).json()
    assert [t["trace_id"] for t in body["results"]] == [
        fleet["bad"].trace_id,
        fleet["good"].trace_id,
        fleet["external"],
    ]
    good = body["results"][1]
    run = fleet["good"]
    assert good["team"] == "payments" and good["name"] == "invoke_agent researcher"
    assert good["agent_id"] == fleet["researcher"].pk and good["run_id"] == run.pk and good["source"] == "runtime"
    assert good["status"] == "ok" and good["span_count"] == run.steps.count() + 1
    assert (good["input_tokens"], good["output_tokens"]) == (run.tokens_in, run.tokens_out)
    spans_cost = sum(s.cost_usd for s in Span.objects.filter(trace_id=run.trace_id))
    assert Decimal(good["cost_usd"]) == spans_cost
    assert good["url"].endswith(f"/api/v1/traces/{run.trace_id}/?team=payments")
    assert body["next"] is None and body["since"] and body["until"]
    for query, expected in [
        ("status=error", [fleet["bad"].trace_id]),
        (f"agent={fleet['researcher'].pk}", [run.trace_id]),
        ("model=gpt-4o-mini", [fleet["external"]]),
        ("tool=kb.search", [run.trace_id]),
        ("source=otlp", [fleet["external"]]),
        ("q=checkout", [fleet["external"]]),
        ("range=1h&status=ok", [run.trace_id, fleet["external"]]),
    ]:
        got = client.get(f"/api/v1/traces/?{query}", **auth).json()["results"]
        assert [t["trace_id"] for t in got] == expected, query


def test_trace_list_pages_with_next(client, world):
    now = timezone.now()
    for i in range(3):
        otlp_trace(world.team, trace_id=f"{i + 1:032x}", at=now - timedelta(minutes=10 + i))
    auth = bearer(world)
    first = client.get("/api/v1/traces/?limit=2", **auth).json()
    assert [t["trace_id"] for t in first["results"]] == [f"{1:032x}", f"{2:032x}"]
    second = client.get(first["next"], **auth).json()
    assert [t["trace_id"] for t in second["results"]] == [f"{3:032x}"] and second["next"] is None


def test_trace_detail_has_every_span_depth_first_with_totals(client, world, fleet):
    run = fleet["good"]
    body = client.get(f"/api/v1/traces/{run.trace_id}/", **bearer(world)).json()
    assert body["trace_id"] == run.trace_id and body["team"] == "payments" and body["other_teams"] == []
    spans = body["spans"]
    assert len(spans) == run.steps.count() + 1 == body["span_count"]
    assert spans[0]["operation"] == "invoke_agent" and spans[0]["depth"] == 0
    assert {s["span_id"] for s in spans[1:]} == set(run.steps.values_list("span_id", flat=True))
    assert all(s["depth"] == 1 and s["parent_span_id"] == spans[0]["span_id"] for s in spans[1:])
    tool = next(s for s in spans if s["tool"] == "kb.search")
    assert tool["attributes"]["gen_ai.tool.name"] == "kb.search" and tool["cost_usd"] == "0.002000"
    assert (body["input_tokens"], body["output_tokens"]) == (run.tokens_in, run.tokens_out)
    assert body["status"] == "ok" and body["truncated"] is False


def test_another_teams_trace_is_404_and_never_listed(client, world, fleet):
    theirs = "d" * 32
    otlp_trace(world.other_team, trace_id=theirs)
    auth = bearer(world)
    assert client.get(f"/api/v1/traces/{theirs}/", **auth).status_code == 404
    assert client.get(f"/api/v1/traces/{theirs}/?team=support", **auth).status_code == 404
    assert theirs not in str(client.get("/api/v1/traces/?range=7d", **auth).json())
    assert theirs not in str(client.get(f"/api/v1/spans/?trace_id={theirs}", **auth).json())
    rollup_teams = {r["team"] for r in client.get("/api/v1/rollups/", **auth).json()["results"]}
    assert rollup_teams == {"payments"}
    # A token is bound to its team even when its maker sees more: the admin's token for payments.
    admin = bearer(world, "admin")
    assert client.get(f"/api/v1/traces/{theirs}/", **admin).status_code == 404
    client.force_login(world["auditor"])  # signed in, the auditor reads every team
    assert client.get(f"/api/v1/traces/{theirs}/").json()["team"] == "support"


def test_a_token_without_the_read_scope_is_refused(client, world, fleet):
    response = client.get("/api/v1/traces/", **bearer(world, "builder", scopes=("ingest",)))
    assert response.status_code == 403 and "'read' scope" in response.json()["detail"]
    assert client.get("/api/v1/spans/").status_code in (401, 403)


def test_span_list_filters_and_pages(client, world, fleet):
    auth = bearer(world)
    run = fleet["good"]
    by_trace = client.get(f"/api/v1/spans/?trace_id={run.trace_id}", **auth).json()
    assert {s["span_id"] for s in by_trace["results"]} == set(
        Span.objects.filter(trace_id=run.trace_id).values_list("span_id", flat=True)
    )
    assert by_trace["results"][0]["team"] == "payments"
    by_run = client.get(f"/api/v1/spans/?run={run.pk}&operation=chat", **auth).json()["results"]
    assert len(by_run) == run.steps.filter(kind="model_call").count() and all(s["model"] == "sim-small" for s in by_run)
    tools = client.get("/api/v1/spans/?tool=kb.search", **auth).json()["results"]
    assert [s["tool"] for s in tools] == ["kb.search"]
    errors = client.get("/api/v1/spans/?status=error", **auth).json()["results"]
    assert errors and all(s["status"] == "error" for s in errors)
    assert {s["trace_id"] for s in errors} == {fleet["bad"].trace_id}
    external = client.get("/api/v1/spans/?source=otlp&model=gpt-4o-mini", **auth).json()["results"]
    assert [s["span_id"] for s in external] == ["b2" * 8]
    agent = client.get(f"/api/v1/spans/?agent={fleet['grumpy'].pk}", **auth).json()["results"]
    assert agent and {s["run_id"] for s in agent} == {fleet["bad"].pk}
    old = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    older = (timezone.now() - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert client.get(f"/api/v1/spans/?since={older}&until={old}", **auth).json()["results"] == []
    # Newest first, a cursor to the next page, capped page size.
    page = client.get("/api/v1/spans/?limit=2", **auth).json()
    assert len(page["results"]) == 2 and page["next"]
    starts = [s["start_time"] for s in page["results"]]
    assert starts == sorted(starts, reverse=True)
    rest = client.get(page["next"], **auth).json()["results"]
    assert not {s["span_id"] for s in rest} & {s["span_id"] for s in page["results"]}
    assert len(client.get("/api/v1/spans/?limit=100000", **auth).json()["results"]) <= 1000


@pytest.mark.parametrize(
    ("path", "field", "message"),
    [
        ("/api/v1/traces/?agent=abc", "agent", "Give the agent's id, a number"),
        ("/api/v1/traces/?status=maybe", "status", "Choose status=ok or status=error."),
        ("/api/v1/traces/?range=1y", "range", "Choose range=1h, 24h, 7d or 30d"),
        ("/api/v1/traces/?since=2026-13-01", "since", "ISO 8601"),
        ("/api/v1/traces/?cursor=nope", "cursor", "This cursor is not one the trace list gave"),
        ("/api/v1/traces/?limit=100000", "limit", "less than or equal to 200"),
        ("/api/v1/spans/?trace_id=xyz", "trace_id", "32 lowercase hexadecimal characters"),
        ("/api/v1/spans/?run=first", "run", "Give a run id"),
        ("/api/v1/spans/?status=bad", "status", "Choose status=unset, ok, error."),
        ("/api/v1/spans/?since=2026-01-02T00:00Z&until=2026-01-01T00:00Z", "since", "since must be before until."),
        ("/api/v1/rollups/?group_by=week", "group_by", "Choose group_by=hour or group_by=day."),
        ("/api/v1/rollups/?agent=x", "agent", "Give the agent's id"),
        ("/api/v1/rollups/?since=2020-01-01T00:00Z", "since", "at most 400 days"),
    ],
)
def test_bad_input_answers_400_naming_the_filter(client, world, path, field, message):
    response = client.get(path, **bearer(world))
    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()[field])


@pytest.mark.parametrize("trace_id", ["nothex", "0" * 31])
def test_a_malformed_trace_id_is_a_404(client, world, trace_id):
    assert client.get(f"/api/v1/traces/{trace_id}/", **bearer(world)).status_code == 404


def test_rollups_sum_the_spans_by_hour_and_by_day(client, world, fleet):
    auth = bearer(world)
    rows = client.get("/api/v1/rollups/", **auth).json()["results"]
    assert rows and all(r["team"] == "payments" for r in rows)
    assert sum(r["span_count"] for r in rows) == Span.objects.filter(team=world.team).count()
    assert sum(Decimal(r["cost_usd"]) for r in rows) == sum(s.cost_usd for s in Span.objects.filter(team=world.team))
    runs = [r for r in rows if r["is_run"] and r["source"] == "runtime"]
    assert sum(r["span_count"] for r in runs) == 2 and sum(r["error_count"] for r in runs) == 1
    chat = client.get("/api/v1/rollups/?operation=chat&model=sim-small", **auth).json()["results"]
    model_steps = (
        fleet["good"].steps.filter(kind="model_call").count() + fleet["bad"].steps.filter(kind="model_call").count()
    )
    assert sum(r["span_count"] for r in chat) == model_steps
    assert all(r["duration_avg_ms"] == round(r["duration_sum_ms"] / r["span_count"], 3) for r in chat)
    tool = client.get("/api/v1/rollups/?tool=kb.search", **auth).json()["results"]
    assert [Decimal(r["cost_usd"]) for r in tool] == [Decimal("0.002")]
    agent = client.get(f"/api/v1/rollups/?agent={fleet['grumpy'].pk}", **auth).json()["results"]
    assert {r["agent_id"] for r in agent} == {fleet["grumpy"].pk}
    external = client.get("/api/v1/rollups/?source=otlp", **auth).json()["results"]
    assert sum(r["input_tokens"] for r in external) == 1000
    days = client.get("/api/v1/rollups/?group_by=day&range=7d", **auth).json()["results"]
    assert {r["period"][11:] for r in days} <= {"00:00:00Z"}
    assert sum(r["span_count"] for r in days) == sum(r["span_count"] for r in rows)
    assert len(days) <= len(rows)
    hours = {r["period"] for r in rows}
    assert all(p.endswith(":00:00Z") for p in hours)
    assert SpanRollup.objects.filter(team=world.other_team).count() == 0


def test_the_schema_documents_the_endpoints(client, world):
    client.force_login(world["viewer"])
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("/api/v1/traces/", "/api/v1/traces/{trace_id}/", "/api/v1/spans/", "/api/v1/rollups/"):
        assert path in schema["paths"], path
    names = [p["name"] for p in schema["paths"]["/api/v1/traces/"]["get"]["parameters"]]
    assert {"agent", "status", "model", "tool", "source", "q", "range", "since", "until", "cursor"} <= set(names)
    assert "group_by" in [p["name"] for p in schema["paths"]["/api/v1/rollups/"]["get"]["parameters"]]


@pytest.mark.server
def test_a_thousand_span_trace_view_on_postgresql(client, world):
    """Measure the waterfall page and the API answer for a 1,000-span trace on PostgreSQL."""
    thousand_span_trace(world.team)
    client.force_login(world["viewer"])
    page = view_timings(client, f"/observability/traces/{'9' * 32}/", times=40)
    p95 = page[int(len(page) * 0.95) - 1]
    began = time.perf_counter()
    assert len(client.get(f"/api/v1/traces/{'9' * 32}/").json()["spans"]) == 1000
    api_ms = (time.perf_counter() - began) * 1000
    print(
        f"\n1,000-span trace page on PostgreSQL: p50 {page[len(page) // 2]:.1f} ms, p95 {p95:.1f} ms; API {api_ms:.0f} ms"
    )
    assert p95 < 200  # target 100 ms; room for a loaded CI machine
