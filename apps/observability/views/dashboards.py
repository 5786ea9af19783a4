"""Dashboard pages: the fleet, a team's costs against its budget, and one agent.

Each page reads the hourly rollups through `apps.observability.selectors` (only the teams and
agents the user may see; another team's agent is a 404) and draws its charts from Plotly JSON
with the local plotly.js. Every chart follows the page's time range (?range=24h|7d|30d|90d|month,
or ?since=YYYY-MM-DD&until=YYYY-MM-DD) and has a table of its numbers; the same URL with
?format=csv&chart=<name> downloads that table as CSV. Bad input answers 400 saying what to give.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from apps.accounts.teams import current_team
from apps.agents.selectors import agent_get
from apps.core.exceptions import ServiceError
from apps.core.views import login_required_view

from .. import charts, selectors

RANGE_CHOICES = [("24h", "24 hours"), ("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days")]
MONTH_CHOICE = ("month", "This month")


def _query_without(request, *names: str) -> dict:
    return {k: v for k, v in request.GET.items() if k not in names}


def _answer(request, *, template: str, context: dict, build, default_range: str, page: str, ranges):
    """Validate the range and format, build the charts, then render the page or one chart's CSV."""
    context = {**context, "range_choices": ranges, "query": request.GET}
    wanted = request.GET.get("format", "html")
    if wanted not in ("html", "csv"):
        return HttpResponse(
            f"Unknown format '{wanted[:20]}': leave it out for the page, or give format=csv&chart=<name>.",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    try:
        time_range = selectors.time_range_parse(request.GET, default=default_range)
    except ServiceError as exc:
        context.update(error=exc.message, time_range=None, charts=[], figures={})
        return render(request, template, context, status=400)
    data, chart_list = build(time_range)
    if wanted == "csv":
        name = request.GET.get("chart", "")
        chart = next((c for c in chart_list if c.name == name), None)
        if chart is None:
            names = ", ".join(c.name for c in chart_list)
            return HttpResponse(
                f"Unknown chart '{name[:40]}': give chart= one of {names}.",
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        response = HttpResponse(chart.csv(), content_type="text/csv; charset=utf-8")
        label = re.sub(r"[^a-z0-9_-]+", "-", f"{page}-{chart.name}-{time_range.key}".lower())
        response["Content-Disposition"] = f'attachment; filename="{label}.csv"'
        return response
    base = _query_without(request, "format", "chart")
    for chart in chart_list:
        chart.csv_url = "?" + urlencode({**base, "format": "csv", "chart": chart.name})
    context.update(
        data=data,
        time_range=time_range,
        charts=chart_list,
        figures={c.name: c.figure for c in chart_list if c.figure},
    )
    return render(request, template, context)


@require_GET
@login_required_view
def fleet_dashboard_view(request):
    team, teams = current_team(request)
    slug = (request.GET.get("team") or "").strip() or None
    shown = selectors.dashboard_teams(user=request.user, slug=slug, current=team)

    def build(time_range):
        data = selectors.fleet_overview(teams=shown, time_range=time_range)
        return data, charts.fleet_charts(data, time_range)

    context = {"teams_shown": shown, "team_choices": teams, "team_param": slug or "", "all_teams": selectors.ALL_TEAMS}
    return _answer(
        request,
        template="observability/fleet_dashboard.html",
        context=context,
        build=build,
        default_range="7d",
        page="fleet",
        ranges=RANGE_CHOICES,
    )


@require_GET
@login_required_view
def team_costs_view(request):
    team, teams = current_team(request)
    slug = (request.GET.get("team") or "").strip() or None
    if slug == selectors.ALL_TEAMS:
        slug = None  # a budget belongs to one team
    shown = selectors.dashboard_teams(user=request.user, slug=slug, current=team)
    team = shown[0] if shown else None

    def build(time_range):
        if team is None:
            return None, []
        data = selectors.team_costs(team=team, time_range=time_range)
        return data, charts.team_cost_charts(data, time_range)

    return _answer(
        request,
        template="observability/team_costs.html",
        context={"team": team, "team_choices": teams, "team_param": slug or ""},
        build=build,
        default_range="month",
        page=f"costs-{team.slug}" if team else "costs",
        ranges=[MONTH_CHOICE, *RANGE_CHOICES],
    )


@require_GET
@login_required_view
def agent_dashboard_view(request, agent_id: int):
    agent = agent_get(user=request.user, pk=agent_id)

    def build(time_range):
        data = selectors.agent_overview(agent=agent, time_range=time_range)
        return data, charts.agent_charts(data, time_range)

    return _answer(
        request,
        template="observability/agent_dashboard.html",
        context={"agent": agent},
        build=build,
        default_range="30d",
        page=f"agent-{agent.name}",
        ranges=RANGE_CHOICES,
    )


urlpatterns = [
    path("", fleet_dashboard_view, name="fleet_dashboard"),
    path("costs/", team_costs_view, name="team_costs"),
    path("agents/<int:agent_id>/", agent_dashboard_view, name="agent_dashboard"),
]
