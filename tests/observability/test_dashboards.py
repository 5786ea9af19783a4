"""The dashboards show what really happened: numbers from real runs of the engine, as a user sees them.

Runs go through the real engine on the simulated model with HTTP tools answered by a loopback
server; their spans land in the span store and its rollups, which the dashboards read.
"""

from __future__ import annotations

import csv
import html as htmllib
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.observability import selectors, store
from apps.runtime.models import RunStatus, Step, StepKind
from tests.runtime.loopback import loopback_server

FLEET = "/observability/"
COSTS = "/observability/costs/"

HELPER_SCRIPT = [
    {"call": [{"tool": "kb.search", "arguments": {"q": "a"}}, {"tool": "kb.search", "arguments": {"q": "b"}}]},
    {"call": [{"tool": "crm.lookup", "arguments": {"q": "c"}}]},
    {"answer": "done"},
]


def kpi(response, name: str) -> str:
    """Return the number a KPI tile shows (its kpi-value text)."""
    html = response.content.decode()
    match = re.search(rf'data-kpi="{name}"[^>]*>.*?<span class="kpi-value">(.*?)</span>', html, re.S)
    assert match, f"no KPI tile {name}"
    return match.group(1).strip()


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.fixture
def fleet(rt):
    """Three successful runs of a tool-using agent and two failed runs of a broken one, in payments."""

    def handler(request):
        request.reply(200, {"ok": True})

    with loopback_server(handler) as server:
        rt.http_tool("kb.search", f"{server.url}/kb", cost_per_call=0.01)
        rt.http_tool("crm.lookup", f"{server.url}/crm", cost_per_call=0.002)
        helper = rt.agent("helper", tools=["kb.search", "crm.lookup"], script=HELPER_SCRIPT)
        broken = rt.agent("broken", script=[{"error": {"status": 400, "message": "context too long"}}])
        runs = [rt.run(helper, {"q": str(i)}) for i in range(3)] + [rt.run(broken) for _ in range(2)]
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED] * 3 + [RunStatus.FAILED] * 2
    rt.helper, rt.broken, rt.runs = helper, broken, runs
    rt.step_cost = sum(Step.objects.filter(run__in=runs).values_list("cost_usd", flat=True), Decimal(0))
    return rt


def test_fleet_dashboard_shows_runs_failures_and_costs_of_real_runs(client, fleet):
    queued = fleet.start(fleet.helper, {"q": "later"})  # not driven: queued, so "running now"
    client.force_login(fleet.world["viewer"])
    response = client.get(FLEET)
    assert response.status_code == 200
    assert kpi(response, "agents") == "2"
    assert kpi(response, "running") == "1"
    assert kpi(response, "succeeded-today") == "3"
    assert kpi(response, "failed-today") == "2"
    assert kpi(response, "failure-rate") == "40.0%"
    data = response.context["data"]
    assert data["runs"] == 5 and data["failed"] == 2
    # Cost is the sum of the steps' costs (model calls at catalog prices and tools per call), not double counted.
    assert fleet.step_cost > Decimal("0.066")
    assert data["cost"] == fleet.step_cost
    assert kpi(response, "avg-cost") == f"${fleet.step_cost / 5:.4f}"
    # Top tools by share of calls: kb.search is called twice per run, crm.lookup once.
    tools = {t["tool"]: t for t in data["tools"]}
    assert tools["kb.search"]["calls"] == 6 and tools["kb.search"]["share"] == 66.67
    assert tools["crm.lookup"]["calls"] == 3 and tools["crm.lookup"]["share"] == 33.33
    assert [c.name for c in response.context["charts"]] == ["runs", "tools", "cost_trend", "agents"]
    html = response.content.decode()
    assert 'id="dash-figures"' in html and "vendor/plotly/plotly.min.js" in html
    assert "kb.search" in html and "internal" in html
    # Each agent in the agents table opens its own dashboard.
    assert f'<a href="/observability/agents/{fleet.helper.pk}/">helper</a>' in html
    assert queued.status == RunStatus.QUEUED


def test_fleet_csv_of_each_chart_has_its_numbers(client, fleet):
    client.force_login(fleet.world["viewer"])
    rows = csv_rows(client.get(FLEET, {"format": "csv", "chart": "tools"}))
    assert rows[0] == ["tool", "calls", "share_percent", "errors", "cost_usd", "avg_ms"]
    assert rows[1][:4] == ["kb.search", "6", "66.67", "0"]
    assert rows[1][4] == "0.060000"
    assert rows[2][:2] == ["crm.lookup", "3"]
    runs = csv_rows(client.get(FLEET, {"format": "csv", "chart": "runs", "range": "24h"}))
    assert runs[0][:5] == ["period", "runs", "internal", "external", "failed"]
    assert len(runs) == 1 + 24  # one row per hour, empty hours as zero
    assert sum(int(r[1]) for r in runs[1:]) == 5 and sum(int(r[4]) for r in runs[1:]) == 2
    agents = csv_rows(client.get(FLEET, {"format": "csv", "chart": "agents"}))
    by_name = {r[0]: r for r in agents[1:]}
    assert by_name["broken"][2:6] == ["internal", "2", "2", "100.0"]
    assert by_name["helper"][3:5] == ["3", "0"]
    response = client.get(FLEET, {"format": "csv", "chart": "runs"})
    assert 'filename="fleet-runs-7d.csv"' in response["Content-Disposition"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"range": "2w"}, "Unknown range '2w': pick one of 24h, 7d, 30d, 90d, month"),
        ({"since": "2025-13-01"}, "'2025-13-01' is not a date: give since as YYYY-MM-DD"),
        ({"since": "2025-03-10", "until": "2025-03-01"}, "ends (2025-03-01) before it starts (2025-03-10)"),
        ({"range": "custom"}, "A custom range needs a start date"),
        ({"since": "2020-01-01", "until": "2025-01-01"}, "at most 400 days"),
    ],
)
def test_bad_time_range_answers_400_saying_what_to_give(client, world, params, message):
    client.force_login(world["viewer"])
    for url in (FLEET, COSTS):
        response = client.get(url, params)
        assert response.status_code == 400
        assert message in htmllib.unescape(response.content.decode())


def test_bad_format_or_chart_answers_400(client, fleet):
    client.force_login(fleet.world["viewer"])
    response = client.get(FLEET, {"format": "csv", "chart": "nope"})
    assert response.status_code == 400
    assert "give chart= one of runs, tools, cost_trend, agents" in response.content.decode()
    response = client.get(FLEET, {"format": "xml"})
    assert response.status_code == 400 and "Unknown format" in response.content.decode()


def test_custom_range_before_the_runs_shows_none(client, fleet):
    client.force_login(fleet.world["viewer"])
    today = timezone.localdate()
    response = client.get(FLEET, {"since": str(today - timedelta(days=20)), "until": str(today - timedelta(days=10))})
    assert response.status_code == 200
    assert response.context["data"]["runs"] == 0
    assert len(response.context["charts"][0].rows) == 11  # one row per day, both ends included
    assert response.context["time_range"].key == "custom"
    response = client.get(FLEET, {"range": "24h"})
    assert response.context["data"]["runs"] == 5 and response.context["time_range"].hourly


def test_fleet_of_a_member_excludes_other_teams_and_auditor_sees_all(client, fleet):
    client.force_login(fleet.world["outsider"])  # owner of support, not a member of payments
    response = client.get(FLEET)
    assert response.status_code == 200
    assert [t.slug for t in response.context["teams_shown"]] == ["support"]
    assert response.context["data"]["runs"] == 0 and kpi(response, "agents") == "0"
    assert client.get(FLEET, {"team": "payments"}).status_code == 404
    assert client.get(FLEET, {"team": "all"}).context["data"]["runs"] == 0
    client.force_login(fleet.world["auditor"])
    response = client.get(FLEET, {"team": "all"})
    assert {t.slug for t in response.context["teams_shown"]} == {"payments", "support"}
    assert response.context["data"]["runs"] == 5
    agents = csv_rows(client.get(FLEET, {"team": "all", "format": "csv", "chart": "agents"}))
    assert {r[1] for r in agents[1:]} == {"payments"}


def test_external_agents_are_counted_beside_internal_ones(client, fleet):
    """Spans ingested from elsewhere (source otlp) count as runs of an external agent."""
    now_ns = int(timezone.now().timestamp() * 1e9)
    records = [
        store.span_record(
            team_id=fleet.team.pk,
            source="otlp",
            trace_id=f"{i:032x}",
            span_id=f"{i:016x}",
            name="invoke_agent outside",
            start_ns=now_ns - 2_000_000_000,
            end_ns=now_ns - 1_000_000_000,
            status="error" if i == 1 else "ok",
            attributes={"gen_ai.operation.name": "invoke_agent"},
            agent_name="outside",
        )
        for i in (1, 2)
    ]
    store.spans_write(records)
    client.force_login(fleet.world["viewer"])
    response = client.get(FLEET, {"range": "24h"})
    data = response.context["data"]
    assert data["runs"] == 7 and data["failed"] == 3
    assert sum(r["external"] for r in data["runs_series"]) == 2
    assert sum(r["internal"] for r in data["runs_series"]) == 5
    external = [r for r in data["by_agent"] if r["source"] == "external"]
    assert external[0]["runs"] == 2


def _tool_spans(team, *, at: datetime, cost: str, n: int = 1, tag: str = "t"):
    """Write n tool spans costing `cost` each at a moment, through the one write path."""
    ns = int(at.timestamp() * 1e9)
    store.spans_write(
        [
            store.span_record(
                team_id=team.pk,
                source="runtime",
                trace_id=f"{abs(hash((tag, i))) % 16**32:032x}",
                span_id=f"{i + 1:016x}",
                parent_span_id="ab" * 8,
                name="execute_tool pay",
                start_ns=ns,
                end_ns=ns + 5_000_000,
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "pay"},
                tool_cost_usd=Decimal(cost),
            )
            for i in range(n)
        ]
    )


def test_cost_rise_week_over_week_is_flagged(client, world, settings):
    settings.FLEETDECK_COST_RISE_PERCENT = 20
    now = timezone.now()
    _tool_spans(world.team, at=now - timedelta(days=9), cost="1.00", tag="old")
    _tool_spans(world.team, at=now - timedelta(hours=3), cost="1.50", tag="new")
    client.force_login(world["viewer"])
    response = client.get(FLEET)
    assert kpi(response, "cost-trend") == "+50.0%"
    assert 'id="cost-rise-flag"' in response.content.decode()
    assert "more than the 20%" in response.content.decode()
    settings.FLEETDECK_COST_RISE_PERCENT = 60
    response = client.get(FLEET)
    assert 'id="cost-rise-flag"' not in response.content.decode()
    rows = csv_rows(client.get(FLEET, {"format": "csv", "chart": "cost_trend"}))
    assert len(rows) == 15
    assert sum(Decimal(r[2]) for r in rows[1:] if r[1] == "this week") == Decimal("1.5")
    assert sum(Decimal(r[2]) for r in rows[1:] if r[1] == "previous week") == Decimal("1")


def test_team_costs_shows_spend_against_budget(client, fleet):
    fleet.team.monthly_budget = Decimal("0.20")
    fleet.team.save()
    client.force_login(fleet.world["viewer"])
    response = client.get(COSTS)
    assert response.status_code == 200
    budget = response.context["data"]["budget"]
    assert budget.spent == fleet.step_cost
    assert kpi(response, "spent") == f"${fleet.step_cost:.2f}"
    assert kpi(response, "budget-used") == f"{float(fleet.step_cost / Decimal('0.20') * 100):.1f}%"
    assert "linear projection" in response.content.decode()
    by_agent = {r[0]: r for r in csv_rows(client.get(COSTS, {"format": "csv", "chart": "by_agent"}))[1:]}
    helper_cost = sum(Step.objects.filter(run__agent=fleet.helper).values_list("cost_usd", flat=True), Decimal(0))
    assert Decimal(by_agent["helper"][2]) == helper_cost
    models = csv_rows(client.get(COSTS, {"format": "csv", "chart": "by_model"}))
    assert models[1][0] == "sim-small" and int(models[1][1]) == 3 * 3 + 2
    days = csv_rows(client.get(COSTS, {"format": "csv", "chart": "by_day"}))
    assert sum(Decimal(r[1]) for r in days[1:]) == fleet.step_cost
    tools = {r[0]: r for r in csv_rows(client.get(COSTS, {"format": "csv", "chart": "by_tool"}))[1:]}
    assert Decimal(tools["kb.search"][2]) == Decimal("0.06")


def test_month_end_forecast_is_a_linear_projection(world):
    world.team.monthly_budget = Decimal("10")
    world.team.save()
    _tool_spans(world.team, at=datetime(2025, 3, 2, 12, tzinfo=UTC), cost="1.00", n=2, tag="a")
    _tool_spans(world.team, at=datetime(2025, 3, 5, 9, tzinfo=UTC), cost="0.50", n=2, tag="b")
    _tool_spans(world.team, at=datetime(2025, 2, 27, 9, tzinfo=UTC), cost="5", tag="february")
    budget = selectors.budget_status(team=world.team, now=datetime(2025, 3, 11, 0, tzinfo=UTC))
    assert budget.spent == Decimal("3.00")
    assert budget.days_elapsed == 10 and budget.days_in_month == 31
    assert budget.forecast == Decimal("9.30")  # 3.00 / 10 days x 31 days
    assert budget.percent == 30.0 and budget.forecast_percent == 93.0
    assert not budget.forecast_over


def test_team_costs_for_another_team_is_404_and_all_means_current(client, fleet):
    client.force_login(fleet.world["viewer"])
    assert client.get(COSTS, {"team": "support"}).status_code == 404
    assert client.get(COSTS, {"team": "all"}).context["team"] == fleet.team
    client.force_login(fleet.world["auditor"])
    response = client.get(COSTS, {"team": "support"})
    assert response.status_code == 200 and response.context["data"]["cost"] == 0


def test_agent_dashboard_shows_runs_latency_tools_errors_and_versions(client, fleet):
    client.force_login(fleet.world["viewer"])
    response = client.get(f"/observability/agents/{fleet.helper.pk}/")
    assert response.status_code == 200
    data = response.context["data"]
    assert kpi(response, "runs") == "3" and kpi(response, "success-rate") == "100.0%"
    assert data["p50_ms"] is not None and data["p95_ms"] >= data["p50_ms"]
    steps = Step.objects.filter(run__agent=fleet.helper, kind=StepKind.MODEL)
    tokens = sum(s.tokens_in + s.tokens_out for s in steps)
    assert data["tokens_per_run"] == round(tokens / 3, 1)
    assert {t["tool"]: t["calls"] for t in data["tools"]} == {"kb.search": 6, "crm.lookup": 3}
    labels = [m["label"] for m in data["markers"]]
    assert "v1.0.0 published" in labels and "v1.0.0 promoted to production" in labels
    html = response.content.decode()
    assert f'href="/observability/traces/?agent={fleet.helper.pk}"' in html
    # The versions are drawn as vertical lines on the time charts.
    runs_figure = response.context["figures"]["runs"]
    assert any(shape["type"] == "line" for shape in runs_figure["layout"]["shapes"])

    response = client.get(f"/observability/agents/{fleet.broken.pk}/")
    assert kpi(response, "success-rate") == "0.0%"
    errors = csv_rows(client.get(f"/observability/agents/{fleet.broken.pk}/", {"format": "csv", "chart": "errors"}))
    assert errors[1] == ["provider_error", "2", "100.0"]


def test_agent_dashboard_of_another_team_is_404(client, fleet):
    client.force_login(fleet.world["outsider"])
    assert client.get(f"/observability/agents/{fleet.helper.pk}/").status_code == 404
    assert client.get("/observability/agents/999999/").status_code == 404
    client.force_login(fleet.world["admin"])
    assert client.get(f"/observability/agents/{fleet.helper.pk}/").status_code == 200


def test_seed_spans_writes_whole_traces_through_the_store_and_the_dashboards_read_them(client, rt):
    from django.core.management import CommandError, call_command

    from apps.observability.models import Span
    from apps.observability.rollups import rollup_recount
    from apps.observability.seed import seed_spans

    rt.agent("inside")
    outside = rt.agent("outside")
    outside.external = True  # as OTLP ingest registers an agent it has not seen
    outside.save(update_fields=["external"])
    now = timezone.now()
    stored = seed_spans(team=rt.team, count=600, days=2, batch=200, now=now)
    assert stored >= 600 and Span.objects.filter(team=rt.team).count() == stored
    assert set(Span.objects.values_list("source", flat=True).distinct()) == {"runtime", "otlp"}
    roots = Span.objects.filter(parent_span_id="")
    assert roots.count() == Span.objects.values("trace_id").distinct().count()
    assert Span.objects.filter(operation="chat", cost_usd__gt=0).exists()
    # The rollups the dashboards read equal a recount of the raw spans.
    sums, _ = rollup_recount(team_id=rt.team.pk, start=now - timedelta(days=3), end=now + timedelta(hours=1))
    assert sum(v["span_count"] for v in sums.values()) == stored
    client.force_login(rt.world["viewer"])
    data = client.get(FLEET).context["data"]
    assert data["runs"] == roots.count()
    assert data["cost"] == sum(Span.objects.values_list("cost_usd", flat=True), Decimal(0))
    with pytest.raises(CommandError, match="No team 'nope'"):
        call_command("seed_spans", "--team", "nope", "--count", "10")
