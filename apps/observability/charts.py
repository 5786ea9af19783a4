"""Plotly figures for the dashboards, each with the table of its numbers (shown and sold as CSV).

A `Chart` is built on the server with `plotly.graph_objects` and handed to the page as plain
JSON (Plotly's figure format), which static/observability/dashboards.js draws with the local
plotly.js; the same rows fill the chart's table and its CSV download.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import plotly.graph_objects as go

INTERNAL_COLOUR = "#2f5bd3"
EXTERNAL_COLOUR = "#9b59b6"
FAILED_COLOUR = "#c0392b"
OK_COLOUR = "#2e8b57"
MUTED_COLOUR = "#9aa3b2"
MARKER_COLOURS = {"published": "#8a5a00", "promotion": "#2e8b57", "rollback": "#c0392b"}


@dataclass
class Chart:
    """One chart: its figure, and the table of its numbers (columns and rows) for the page and CSV."""

    name: str
    title: str
    figure: dict | None
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    note: str = ""
    csv_url: str = ""
    # A page to open per row (its first cell links there), e.g. each agent's dashboard.
    links: list[str | None] = field(default_factory=list)

    def table(self) -> list[tuple[str | None, list]]:
        """Return the rows each with its link (or None), for the page's table."""
        links = self.links or [None] * len(self.rows)
        return list(zip(links, self.rows, strict=False))

    def csv(self) -> str:
        """Return the chart's table as CSV (header first)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(["" if v is None else _cell(v) for v in row])
        return out.getvalue()


def _cell(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.6f}"
    return value


def _money(value) -> float:
    return float(value or 0)


def _figure(fig: go.Figure, *, y_title: str = "", x_title: str = "", height: int = 320) -> dict:
    """Return the figure as Plotly JSON with the dashboards' common layout (no template: plotly.js defaults)."""
    fig.update_layout(
        height=height,
        margin={"l": 50, "r": 20, "t": 20, "b": 40},
        legend={"orientation": "h", "y": -0.2},
        yaxis_title=y_title,
        xaxis_title=x_title,
        barmode=fig.layout.barmode or "stack",
    )
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    data = json.loads(fig.to_json())
    data["layout"].pop("template", None)
    return data


def _markers(fig: go.Figure, markers: list[dict]) -> None:
    """Mark versions and promotions on the time axis as vertical lines with a label."""
    for m in markers:
        colour = MARKER_COLOURS.get(m["kind"], MUTED_COLOUR)
        fig.add_shape(
            type="line",
            x0=m["at"],
            x1=m["at"],
            xref="x",
            y0=0,
            y1=1,
            yref="paper",
            line={"color": colour, "width": 1, "dash": "dot"},
        )
        fig.add_annotation(
            x=m["at"],
            y=1,
            yref="paper",
            text=m["label"],
            showarrow=False,
            textangle=-90,
            xanchor="right",
            yanchor="top",
            font={"size": 10, "color": colour},
        )


def _when(bucket: datetime, hourly: bool) -> str:
    return bucket.strftime("%Y-%m-%d %H:00" if hourly else "%Y-%m-%d")


# --- Fleet ------------------------------------------------------------------------------------


def runs_per_day(series: list[dict], *, hourly: bool, name: str = "runs") -> Chart:
    """Return runs per day (or hour), internal and external stacked, with failed runs as a line."""
    x = [r["bucket"] for r in series]
    fig = go.Figure()
    fig.add_bar(x=x, y=[r["internal"] for r in series], name="internal runs", marker_color=INTERNAL_COLOUR)
    fig.add_bar(x=x, y=[r["external"] for r in series], name="external runs", marker_color=EXTERNAL_COLOUR)
    fig.add_scatter(x=x, y=[r["failed"] for r in series], name="failed", mode="lines+markers", line_color=FAILED_COLOUR)
    return Chart(
        name=name,
        title="Runs per hour" if hourly else "Runs per day",
        figure=_figure(fig, y_title="runs"),
        columns=["period", "runs", "internal", "external", "failed", "failure_rate_percent"],
        rows=[
            [_when(r["bucket"], hourly), r["runs"], r["internal"], r["external"], r["failed"], r["failure_rate"]]
            for r in series
        ],
    )


def top_tools(tools: list[dict], *, name: str = "tools", limit: int = 10) -> Chart:
    """Return the tools' share of calls as a pie (the rest grouped as "other")."""
    shown = tools[:limit]
    rest = sum(t["calls"] for t in tools[limit:])
    labels = [t["tool"] for t in shown] + (["other"] if rest else [])
    values = [t["calls"] for t in shown] + ([rest] if rest else [])
    fig = go.Figure(go.Pie(labels=labels, values=values, hole=0.4, sort=False, textinfo="label+percent"))
    return Chart(
        name=name,
        title="Top tools by share of calls",
        figure=_figure(fig) if tools else None,
        columns=["tool", "calls", "share_percent", "errors", "cost_usd", "avg_ms"],
        rows=[[t["tool"], t["calls"], t["share"], t["errors"], t["cost"], t["avg_ms"]] for t in tools],
    )


def cost_trend(trend, *, name: str = "cost_trend") -> Chart:
    """Return the cost of each of the last 14 days (24-hour windows), this week against the week before."""
    x = [d["start"] for d in trend.days]
    colours = [INTERNAL_COLOUR if d["days_ago"] < 7 else MUTED_COLOUR for d in trend.days]
    fig = go.Figure(go.Bar(x=x, y=[_money(d["cost"]) for d in trend.days], marker_color=colours, name="cost (USD)"))
    rise = "n/a (no spend the week before)" if trend.rise_percent is None else f"{trend.rise_percent:+.1f}%"
    return Chart(
        name=name,
        title="Cost, week over week",
        figure=_figure(fig, y_title="USD"),
        columns=["window_start", "week", "cost_usd"],
        rows=[[d["start"], d["week"], d["cost"]] for d in trend.days],
        note=(
            f"This week {trend.this_week:.2f} USD against {trend.previous_week:.2f} USD the week before: {rise}. "
            f"Weeks are the last 7 x 24 hours and the 7 x 24 hours before; flagged above +{trend.threshold}%."
        ),
    )


def agents_table(by_agent: list[dict], *, name: str = "agents") -> Chart:
    """Return the agents' runs, failures and cost (a table; the chart is cost by agent, coloured by source)."""
    top = by_agent[:15]
    several_teams = len({r["team"] for r in top}) > 1

    def label(r):
        return r["agent"] + (f" ({r['team']})" if several_teams and r["team"] else "")

    fig = go.Figure()
    for source, colour in (("internal", INTERNAL_COLOUR), ("external", EXTERNAL_COLOUR)):
        rows = [r for r in top if r["source"] == source]
        if rows:
            fig.add_bar(
                x=[_money(r["cost"]) for r in rows],
                y=[label(r) for r in rows],
                orientation="h",
                name=f"{source} agents",
                marker_color=colour,
            )
    fig.update_yaxes(categoryorder="array", categoryarray=[label(r) for r in top])
    fig.update_yaxes(autorange="reversed")
    return Chart(
        name=name,
        title="Agents: cost, runs and failures (internal and external)",
        figure=_figure(fig, x_title="USD", height=max(220, 30 * len(top) + 80)) if by_agent else None,
        columns=[
            "agent",
            "team",
            "source",
            "runs",
            "failed",
            "failure_rate_percent",
            "cost_usd",
            "input_tokens",
            "output_tokens",
        ],
        links=[f"/observability/agents/{r['agent_id']}/" if r["agent_id"] else None for r in by_agent],
        rows=[
            [
                r["agent"],
                r["team"],
                r["source"],
                r["runs"],
                r["failed"],
                r["failure_rate"],
                r["cost"],
                r["input_tokens"],
                r["output_tokens"],
            ]
            for r in by_agent
        ],
    )


def fleet_charts(data: dict, time_range) -> list[Chart]:
    return [
        runs_per_day(data["runs_series"], hourly=time_range.hourly),
        top_tools(data["tools"]),
        cost_trend(data["cost_trend"]),
        agents_table(data["by_agent"]),
    ]


# --- Team costs -------------------------------------------------------------------------------


def cost_by_day(series: list[dict], *, hourly: bool, budget=None, name: str = "by_day") -> Chart:
    """Return cost per day (bars) and the running total (line), with the monthly budget as a line."""
    x = [r["bucket"] for r in series]
    fig = go.Figure()
    fig.add_bar(x=x, y=[_money(r["cost"]) for r in series], name="cost (USD)", marker_color=INTERNAL_COLOUR)
    fig.add_scatter(
        x=x, y=[_money(r["cumulative"]) for r in series], name="running total", mode="lines", line_color=OK_COLOUR
    )
    if budget is not None and budget.budget > 0:
        fig.add_hline(
            y=_money(budget.budget), line_dash="dash", line_color=FAILED_COLOUR, annotation_text="monthly budget"
        )
    return Chart(
        name=name,
        title="Cost per hour" if hourly else "Cost per day",
        figure=_figure(fig, y_title="USD"),
        columns=["period", "cost_usd", "cumulative_usd"],
        rows=[[_when(r["bucket"], hourly), r["cost"], r["cumulative"]] for r in series],
    )


def cost_by_agent(by_agent: list[dict], *, name: str = "by_agent") -> Chart:
    chart = agents_table(by_agent, name=name)
    chart.title = "Cost by agent"
    chart.columns = ["agent", "source", "cost_usd", "runs", "input_tokens", "output_tokens"]
    chart.rows = [
        [r["agent"], r["source"], r["cost"], r["runs"], r["input_tokens"], r["output_tokens"]] for r in by_agent
    ]
    return chart


def cost_by_model(models: list[dict], *, name: str = "by_model") -> Chart:
    fig = go.Figure(
        go.Bar(x=[m["model"] for m in models], y=[_money(m["cost"]) for m in models], marker_color=INTERNAL_COLOUR)
    )
    return Chart(
        name=name,
        title="Cost by model",
        figure=_figure(fig, y_title="USD") if models else None,
        columns=["model", "calls", "input_tokens", "output_tokens", "cached_tokens", "cost_usd"],
        rows=[
            [m["model"], m["calls"], m["input_tokens"], m["output_tokens"], m["cached_tokens"], m["cost"]]
            for m in models
        ],
    )


def cost_by_tool(tools: list[dict], *, name: str = "by_tool") -> Chart:
    paid = [t for t in tools if t["cost"] > 0] or tools
    fig = go.Figure(
        go.Bar(x=[t["tool"] for t in paid], y=[_money(t["cost"]) for t in paid], marker_color=EXTERNAL_COLOUR)
    )
    return Chart(
        name=name,
        title="Cost by tool",
        figure=_figure(fig, y_title="USD") if tools else None,
        columns=["tool", "calls", "cost_usd"],
        rows=[[t["tool"], t["calls"], t["cost"]] for t in tools],
    )


def team_cost_charts(data: dict, time_range) -> list[Chart]:
    return [
        cost_by_day(
            data["by_day"], hourly=time_range.hourly, budget=data["budget"] if time_range.key == "month" else None
        ),
        cost_by_agent(data["by_agent"]),
        cost_by_model(data["by_model"]),
        cost_by_tool(data["by_tool"]),
    ]


# --- One agent --------------------------------------------------------------------------------


def agent_runs(series: list[dict], markers: list[dict], *, hourly: bool) -> Chart:
    x = [r["bucket"] for r in series]
    fig = go.Figure()
    fig.add_bar(x=x, y=[r["succeeded"] for r in series], name="succeeded", marker_color=OK_COLOUR)
    fig.add_bar(x=x, y=[r["failed"] for r in series], name="failed", marker_color=FAILED_COLOUR)
    _markers(fig, markers)
    return Chart(
        name="runs",
        title="Runs per hour" if hourly else "Runs per day",
        figure=_figure(fig, y_title="runs"),
        columns=["period", "runs", "succeeded", "failed", "success_rate_percent"],
        rows=[[_when(r["bucket"], hourly), r["runs"], r["succeeded"], r["failed"], r["success_rate"]] for r in series],
    )


def agent_latency(series: list[dict], markers: list[dict], *, hourly: bool) -> Chart:
    x = [r["bucket"] for r in series]
    fig = go.Figure()
    fig.add_scatter(x=x, y=[r["p50_ms"] for r in series], name="p50", mode="lines+markers", line_color=INTERNAL_COLOUR)
    fig.add_scatter(x=x, y=[r["p95_ms"] for r in series], name="p95", mode="lines+markers", line_color=FAILED_COLOUR)
    _markers(fig, markers)
    return Chart(
        name="latency",
        title="Run latency p50 / p95",
        figure=_figure(fig, y_title="ms"),
        columns=["period", "runs", "p50_ms", "p95_ms"],
        rows=[[_when(r["bucket"], hourly), r["runs"], r["p50_ms"], r["p95_ms"]] for r in series],
        note="From hourly latency histograms: each figure is within 10% of the exact percentile.",
    )


def agent_tokens(series: list[dict], markers: list[dict], *, hourly: bool) -> Chart:
    x = [r["bucket"] for r in series]
    fig = go.Figure(
        go.Scatter(x=x, y=[r["tokens_per_run"] for r in series], mode="lines+markers", name="tokens per run")
    )
    _markers(fig, markers)
    return Chart(
        name="tokens",
        title="Tokens per run",
        figure=_figure(fig, y_title="tokens"),
        columns=["period", "runs", "input_tokens", "output_tokens", "tokens_per_run", "cost_usd"],
        rows=[
            [
                _when(r["bucket"], hourly),
                r["runs"],
                r["input_tokens"],
                r["output_tokens"],
                r["tokens_per_run"],
                r["cost"],
            ]
            for r in series
        ],
    )


def agent_tools(tools: list[dict]) -> Chart:
    fig = go.Figure()
    fig.add_bar(
        x=[t["tool"] for t in tools], y=[t["calls"] - t["errors"] for t in tools], name="ok", marker_color=OK_COLOUR
    )
    fig.add_bar(x=[t["tool"] for t in tools], y=[t["errors"] for t in tools], name="errors", marker_color=FAILED_COLOUR)
    chart = top_tools(tools, name="tools")
    chart.title = "Tool usage"
    chart.figure = _figure(fig, y_title="calls") if tools else None
    return chart


def agent_errors(errors: list[dict]) -> Chart:
    fig = go.Figure(
        go.Bar(
            x=[e["runs"] for e in errors], y=[e["code"] for e in errors], orientation="h", marker_color=FAILED_COLOUR
        )
    )
    fig.update_yaxes(autorange="reversed")
    return Chart(
        name="errors",
        title="Failed runs by error",
        figure=_figure(fig, x_title="runs", height=max(200, 30 * len(errors) + 80)) if errors else None,
        columns=["error", "runs", "share_percent"],
        rows=[[e["code"], e["runs"], e["share"]] for e in errors],
    )


def agent_charts(data: dict, time_range) -> list[Chart]:
    hourly = time_range.hourly
    return [
        agent_runs(data["series"], data["markers"], hourly=hourly),
        agent_latency(data["latency"], data["markers"], hourly=hourly),
        agent_tokens(data["series"], data["markers"], hourly=hourly),
        agent_tools(data["tools"]),
        agent_errors(data["errors"]),
    ]
