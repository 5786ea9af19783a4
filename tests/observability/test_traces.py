"""The trace pages: search over the teams one may see, and the waterfall of one trace.

Traces come from real runs of the runtime (its telemetry writes the spans) and from OTLP-source
spans written through the same store path, so external traces are shown alike.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.utils import timezone

from apps.observability.models import Span
from apps.observability.store import span_record, spans_write
from apps.runtime.models import RunStatus, StepKind
from tests.factories import MembershipFactory
from tests.runtime.loopback import loopback_server

pytestmark = pytest.mark.django_db

TRACE_LIST = "/observability/traces/"


def ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1000


def otlp_trace(
    team,
    *,
    trace_id: str,
    at: datetime | None = None,
    name: str = "POST /checkout",
    model: str = "gpt-4o-mini",
    tool: str = "stock.lookup",
    failed: bool = False,
    service: str = "checkout-bot",
) -> list:
    """Store an external agent's trace (a server span, a model call and a tool call) through the one write path."""
    at = at or timezone.now() - timedelta(minutes=5)
    resource = {"service.name": service, "deployment.environment": "prod"}
    common = dict(team_id=team.pk, source="otlp", trace_id=trace_id, resource=resource)
    records = [
        span_record(
            **common,
            span_id="a1" * 8,
            name=name,
            kind="server",
            start_ns=ns(at),
            end_ns=ns(at + timedelta(milliseconds=900)),
            status="error" if failed else "ok",
            status_message="checkout failed: card declined" if failed else "",
            attributes={"http.route": "/checkout"},
        ),
        span_record(
            **common,
            span_id="b2" * 8,
            parent_span_id="a1" * 8,
            name=f"chat {model}",
            kind="client",
            start_ns=ns(at + timedelta(milliseconds=50)),
            end_ns=ns(at + timedelta(milliseconds=650)),
            status="ok",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 200,
            },
            events=[
                {"name": "gen_ai.choice", "time": ns(at + timedelta(milliseconds=640)), "attributes": {"index": 0}}
            ],
        ),
        span_record(
            **common,
            span_id="c3" * 8,
            parent_span_id="a1" * 8,
            name=f"execute_tool {tool}",
            start_ns=ns(at + timedelta(milliseconds=700)),
            end_ns=ns(at + timedelta(milliseconds=850)),
            status="error" if failed else "ok",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool},
        ),
    ]
    return spans_write(records)


class Waterfall(HTMLParser):
    """Read the waterfall table's rows: span id, parent, depth and the text of each cell."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "span-row" in (attrs.get("class") or ""):
            self.rows.append(
                {
                    "span": attrs["data-span"],
                    "parent": attrs["data-parent"],
                    "depth": int(attrs["data-depth"]),
                    "cells": [],
                }
            )
        elif tag == "td" and self.rows and self._cell is None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1]["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tbody":
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def waterfall(html: str) -> list[dict]:
    parser = Waterfall()
    parser.feed(html)
    return parser.rows


def span_details(client, trace_id: str, span_id: str, team: str = "payments") -> dict:
    """Return a span's panel data, as the waterfall's script asks for it when the span is opened."""
    response = client.get(f"/observability/traces/{trace_id}/spans/{span_id}/?team={team}")
    assert response.status_code == 200
    return response.json()


def listed(response) -> list[str]:
    return re.findall(r'<tr data-trace="([0-9a-f]{32})"', response.content.decode())


@pytest.fixture
def fleet(rt):
    return make_fleet(rt)


def make_fleet(rt) -> dict:
    """Make two real runs (one with a priced tool, one failed) and an external OTLP trace in payments."""
    with loopback_server(lambda request: request.reply(200, {"ok": True})) as server:
        rt.http_tool("kb.search", f"{server.url}/search/{{q}}", cost_per_call=0.002)
        researcher = rt.agent(
            "researcher",
            tools=["kb.search"],
            script=[
                {"call": [{"tool": "kb.search", "arguments": {"q": "{input.topic}"}}]},
                {"answer": "Found {result.body.ok}"},
            ],
        )
        good = rt.run(researcher, {"topic": "refunds"})
    grumpy = rt.agent("grumpy", script=[{"answer": "not json"}], output_schema={"type": "object"})
    bad = rt.run(grumpy)
    assert good.status == RunStatus.SUCCEEDED and bad.status == RunStatus.FAILED
    external = "e" * 32
    otlp_trace(rt.team, trace_id=external)
    return {"good": good, "bad": bad, "researcher": researcher, "grumpy": grumpy, "external": external}


def test_waterfall_shows_every_step_span_under_the_run_span_with_tokens_and_cost(client, world, fleet):
    run = fleet["good"]
    client.force_login(world["viewer"])
    response = client.get(f"/observability/traces/{run.trace_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    rows = waterfall(html)
    steps = list(run.steps.order_by("index"))
    stored = {span.span_id: span for span in Span.objects.filter(team=run.team, trace_id=run.trace_id)}
    assert len(rows) == len(steps) + 1 == len(stored)
    root, children = rows[0], rows[1:]
    assert root["depth"] == 0 and root["cells"][0].startswith("invoke_agent researcher")
    by_span = {row["span"]: row for row in children}
    for step in steps:
        row = by_span[step.span_id]
        assert row["parent"] == root["span"] and row["depth"] == 1
        if step.kind == StepKind.MODEL:
            assert row["cells"][0].startswith("chat sim-small")
            assert row["cells"][3] == f"{step.tokens_in} / {step.tokens_out}"
        else:
            assert row["cells"][0].startswith("execute_tool kb.search")
        # The span's cost: tokens at the catalog's price (the step's own figure may round differently).
        cost = stored[step.span_id].cost_usd
        assert row["cells"][4] == (f"{cost:.6f}" if cost else "")
        assert (cost > 0) == (step.kind == StepKind.MODEL or step.cost_usd > 0)
        assert row["cells"][5] == "ok"
    # Children are in start order, as the steps ran.
    assert [row["span"] for row in children] == [step.span_id for step in steps]
    # Totals of the trace: the run's tokens, and the sum of its spans' costs (within a micro-dollar
    # per call of the run's own total, which rounds differently).
    assert f"{run.tokens_in} / {run.tokens_out}" in html
    total = sum(span.cost_usd for span in stored.values())
    assert f'<dd data-total="cost">{total:.6f}</dd>' in html
    assert abs(total - run.cost_usd) <= Decimal("0.000001") * len(steps)
    # Links to the run's page and the agent's dashboard; the panel data names them for each span.
    assert f'href="/runs/{run.pk}/"' in html
    assert f'href="/observability/agents/{fleet["researcher"].pk}/"' in html
    tool_step = next(s for s in steps if s.kind == StepKind.TOOL)
    tool = span_details(client, run.trace_id, tool_step.span_id)
    assert tool["attributes"]["gen_ai.tool.name"] == "kb.search" and tool["cost_usd"] == "0.002000"
    assert tool["run_url"] == f"/runs/{run.pk}/" and tool["tool"] == "kb.search"


def test_an_external_otlp_trace_shows_alike_with_its_events_and_resource(client, world, fleet):
    client.force_login(world["viewer"])
    html = client.get(f"/observability/traces/{fleet['external']}/").content.decode()
    rows = waterfall(html)
    assert [r["depth"] for r in rows] == [0, 1, 1]
    assert rows[0]["cells"][0] == "POST /checkout"
    chat = rows[1]
    assert chat["cells"][0].startswith("chat gpt-4o-mini") and chat["cells"][3] == "1000 / 200"
    # Priced from the catalog: 1000 x 0.15 + 200 x 0.60 per million tokens.
    assert chat["cells"][4] == "0.000270"
    assert span_details(client, fleet["external"], "b2" * 8)["events"][0]["name"] == "gen_ai.choice"
    assert span_details(client, fleet["external"], "a1" * 8)["resource"]["service.name"] == "checkout-bot"
    assert "an external trace" in html


def test_spans_whose_parent_is_not_stored_are_shown_as_roots(client, world):
    at = timezone.now() - timedelta(minutes=1)
    spans_write(
        [
            span_record(
                team_id=world.team.pk,
                source="otlp",
                trace_id="f" * 32,
                span_id=f"{i:016x}",
                parent_span_id="9" * 16,  # never arrived
                name=f"orphan {i}",
                start_ns=ns(at + timedelta(milliseconds=i)),
                end_ns=ns(at + timedelta(milliseconds=10 + i)),
            )
            for i in (1, 2)
        ]
    )
    client.force_login(world["viewer"])
    rows = waterfall(client.get(f"/observability/traces/{'f' * 32}/").content.decode())
    assert [(r["cells"][0], r["depth"]) for r in rows] == [("orphan 1", 0), ("orphan 2", 0)]


def test_search_lists_one_row_per_trace_newest_first_with_totals(client, world, fleet):
    client.force_login(world["viewer"])
    response = client.get(TRACE_LIST)
    assert response.status_code == 200
    assert listed(response) == [fleet["bad"].trace_id, fleet["good"].trace_id, fleet["external"]]
    html = response.content.decode()
    good = fleet["good"]
    row = html.split(f'<tr data-trace="{good.trace_id}"')[1].split("</tr>")[0]
    assert "invoke_agent researcher" in row and f">{good.step_count + 1}<" in row
    spans_cost = sum(s.cost_usd for s in Span.objects.filter(trace_id=good.trace_id))
    assert f"{good.tokens_in} / {good.tokens_out}" in row and f"{spans_cost:.6f}" in row
    bad_row = html.split(f'<tr data-trace="{fleet["bad"].trace_id}"')[1].split("</tr>")[0]
    assert "span-status-error" in bad_row


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=error", ["bad"]),
        ("status=ok", ["good", "external"]),
        ("model=gpt-4o-mini", ["external"]),
        ("model=sim-small", ["bad", "good"]),
        ("tool=kb.search", ["good"]),
        ("source=otlp", ["external"]),
        ("source=runtime", ["bad", "good"]),
        ("q=checkout", ["external"]),
        ("q=KB.SEARCH", ["good"]),
    ],
)
def test_search_filters(client, world, fleet, query, expected):
    client.force_login(world["viewer"])
    response = client.get(f"{TRACE_LIST}?{query}")
    assert response.status_code == 200
    names = {fleet["bad"].trace_id: "bad", fleet["good"].trace_id: "good", fleet["external"]: "external"}
    assert [names[t] for t in listed(response)] == expected


def test_search_by_agent_and_by_a_failure_message(client, world, fleet):
    client.force_login(world["viewer"])
    assert listed(client.get(f"{TRACE_LIST}?agent={fleet['grumpy'].pk}")) == [fleet["bad"].trace_id]
    assert listed(client.get(f"{TRACE_LIST}?agent={fleet['researcher'].pk}&status=ok")) == [fleet["good"].trace_id]
    message = fleet["bad"].error.split()[0]
    assert fleet["bad"].trace_id in listed(client.get(f"{TRACE_LIST}?q={message}"))


def test_search_time_range(client, world, rt):
    now = timezone.now()
    otlp_trace(rt.team, trace_id="1" * 32, at=now - timedelta(minutes=30))
    otlp_trace(rt.team, trace_id="2" * 32, at=now - timedelta(hours=5))
    otlp_trace(rt.team, trace_id="3" * 32, at=now - timedelta(days=3))
    client.force_login(world["viewer"])
    assert listed(client.get(f"{TRACE_LIST}?range=1h")) == ["1" * 32]
    assert listed(client.get(TRACE_LIST)) == ["1" * 32, "2" * 32]  # the last 24 hours by default
    assert listed(client.get(f"{TRACE_LIST}?range=7d")) == ["1" * 32, "2" * 32, "3" * 32]
    since = (now - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert listed(client.get(f"{TRACE_LIST}?since={since}&until={until}")) == ["2" * 32, "3" * 32]


def next_query(response) -> str:
    return re.search(r'href="\?([^"]+)" id="next-page"', response.content.decode())[1].replace("&amp;", "&")


def test_search_pages_older_traces_with_a_cursor(client, world):
    now = timezone.now()
    for i in range(5):
        otlp_trace(world.team, trace_id=f"{i + 1:032x}", at=now - timedelta(minutes=10 + i))
    client.force_login(world["viewer"])
    first = client.get(f"{TRACE_LIST}?limit=2")
    assert listed(first) == [f"{1:032x}", f"{2:032x}"]
    second = client.get(f"{TRACE_LIST}?{next_query(first)}")
    assert listed(second) == [f"{3:032x}", f"{4:032x}"]
    third = client.get(f"{TRACE_LIST}?{next_query(second)}")
    assert listed(third) == [f"{5:032x}"] and 'id="next-page"' not in third.content.decode()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("agent=abc", "Give the agent&#x27;s id, a number"),
        ("status=broken", "Choose status=ok or status=error."),
        ("range=2y", "Choose range=1h, 24h, 7d or 30d"),
        ("since=yesterday", "Give since as an ISO 8601 time"),
        ("since=2026-01-02T00:00Z&until=2026-01-01T00:00Z", "since must be before until."),
        ("since=2025-01-01T00:00Z&until=2026-01-01T00:00Z", "The time window is at most 31 days"),
        ("source=elsewhere", "Choose source=runtime, otlp, gateway."),
        ("cursor=garbage", "This cursor is not one the trace list gave"),
    ],
)
def test_bad_filters_answer_400_with_a_clear_message(client, world, query, message):
    client.force_login(world["viewer"])
    response = client.get(f"{TRACE_LIST}?{query}")
    assert response.status_code == 400
    assert message in response.content.decode()


def test_another_teams_trace_is_not_listed_and_is_a_404(client, world, fleet):
    theirs = "d" * 32
    otlp_trace(world.other_team, trace_id=theirs, name="their secret checkout")
    client.force_login(world["viewer"])
    assert theirs not in listed(client.get(TRACE_LIST))
    assert client.get(f"/observability/traces/{theirs}/").status_code == 404
    assert client.get(f"/observability/traces/{theirs}/?team=support").status_code == 404
    assert "their secret checkout" not in client.get(f"{TRACE_LIST}?q=secret").content.decode()
    # The outsider sees their own trace, not payments' runs.
    client.force_login(world["outsider"])
    assert listed(client.get(TRACE_LIST)) == [theirs]
    assert client.get(f"/observability/traces/{fleet['good'].trace_id}/").status_code == 404


def test_a_trace_id_in_two_visible_teams_shows_one_and_links_the_other(client, world):
    shared = "5" * 32
    otlp_trace(world.team, trace_id=shared, name="payments checkout")
    otlp_trace(world.other_team, trace_id=shared, name="support checkout")
    MembershipFactory(user=world["viewer"], team=world.other_team, role="viewer")
    client.force_login(world["viewer"])
    html = client.get(f"/observability/traces/{shared}/").content.decode()
    assert "payments checkout" in html and "support checkout" not in html
    assert 'href="?team=support"' in html
    other = client.get(f"/observability/traces/{shared}/?team=support").content.decode()
    assert "support checkout" in other and 'href="?team=payments"' in other
    # Both are listed, each linking to its own team's.
    assert listed(client.get(TRACE_LIST)).count(shared) == 2


@pytest.mark.parametrize("trace_id", ["nothex", "A" * 31, "0" * 33])
def test_a_malformed_trace_id_is_a_404(client, world, trace_id):
    client.force_login(world["viewer"])
    assert client.get(f"/observability/traces/{trace_id}/").status_code == 404


def test_hostile_attribute_values_are_data_not_markup(client, world):
    at = timezone.now() - timedelta(minutes=1)
    spans_write(
        [
            span_record(
                team_id=world.team.pk,
                source="otlp",
                trace_id="7" * 32,
                span_id="1" * 16,
                name="<script>alert(1)</script>",
                start_ns=ns(at),
                end_ns=ns(at + timedelta(milliseconds=5)),
                attributes={"note": "</script><script>alert(2)</script>"},
            )
        ]
    )
    client.force_login(world["viewer"])
    html = client.get(f"/observability/traces/{'7' * 32}/").content.decode()
    assert "<script>alert(" not in html
    assert span_details(client, "7" * 32, "1" * 16)["attributes"]["note"] == "</script><script>alert(2)</script>"


def test_another_teams_span_details_are_a_404(client, world):
    otlp_trace(world.other_team, trace_id="d" * 32)
    client.force_login(world["viewer"])
    assert client.get(f"/observability/traces/{'d' * 32}/spans/{'a1' * 8}/").status_code == 404
    assert client.get(f"/observability/traces/{'d' * 32}/spans/{'a1' * 8}/?team=support").status_code == 404
    assert client.get(f"/observability/traces/{'d' * 32}/spans/nothex/").status_code == 404
    client.force_login(world["outsider"])
    assert span_details(client, "d" * 32, "a1" * 8, team="support")["name"] == "POST /checkout"


def thousand_span_trace(team, trace_id: str = "9" * 32) -> None:
    """Store a trace of 1,000 spans: a root, 111 agent steps under it, 8 model calls under each step."""
    at = datetime.now(UTC) - timedelta(minutes=10)
    records = [
        span_record(
            team_id=team.pk,
            source="otlp",
            trace_id=trace_id,
            span_id="0" * 15 + "1",
            name="invoke_agent big",
            start_ns=ns(at),
            end_ns=ns(at + timedelta(seconds=60)),
            status="ok",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "big"},
        )
    ]
    for step in range(111):
        step_id = f"{step + 2:016x}"
        start = at + timedelta(milliseconds=500 * step)
        records.append(
            span_record(
                team_id=team.pk,
                source="otlp",
                trace_id=trace_id,
                span_id=step_id,
                parent_span_id="0" * 15 + "1",
                name=f"step {step}",
                start_ns=ns(start),
                end_ns=ns(start + timedelta(milliseconds=450)),
                status="ok",
                attributes={"step": step, "note": "x" * 200},
            )
        )
        for call in range(8):
            records.append(
                span_record(
                    team_id=team.pk,
                    source="otlp",
                    trace_id=trace_id,
                    span_id=f"{(step + 2) * 100 + call:016x}",
                    parent_span_id=step_id,
                    name=f"chat gpt-4o-mini {step}.{call}",
                    kind="client",
                    start_ns=ns(start + timedelta(milliseconds=50 * call)),
                    end_ns=ns(start + timedelta(milliseconds=50 * call + 45)),
                    status="ok",
                    attributes={
                        "gen_ai.operation.name": "chat",
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.usage.input_tokens": 500,
                        "gen_ai.usage.output_tokens": 100,
                        "gen_ai.response.finish_reasons": ["stop"],
                    },
                    events=[{"name": "gen_ai.choice", "time": ns(start), "attributes": {"index": 0}}],
                )
            )
    assert len(spans_write(records)) == 1000


def view_timings(client, path: str, times: int = 20) -> list[float]:
    client.get(path)  # warm caches (templates, URL resolver)
    timings = []
    for _ in range(times):
        began = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200
    return sorted(timings)


def test_a_thousand_span_trace_renders_in_few_queries_and_fast(client, world, rt, django_assert_max_num_queries):
    thousand_span_trace(world.team)
    client.force_login(world["viewer"])
    path = f"/observability/traces/{'9' * 32}/"
    with django_assert_max_num_queries(12):  # session, user, teams, the trace: never one per span
        response = client.get(path)
    rows = waterfall(response.content.decode())
    assert len(rows) == 1000 and max(r["depth"] for r in rows) == 2
    timings = view_timings(client, path)
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(
        f"\n1,000-span trace view: p50 {timings[len(timings) // 2]:.1f} ms, p95 {p95:.1f} ms ({connection.vendor}, test client)"
    )
    # The target is 100 ms on PostgreSQL (see test_traces_api's server test); leave room for slow CI machines.
    assert p95 < 400
    assert Decimal(re.search(r'<dd data-total="cost">([0-9.]+)</dd>', response.content.decode())[1]) == sum(
        s.cost_usd for s in Span.objects.filter(trace_id="9" * 32)
    )
