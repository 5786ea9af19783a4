"""Trace pages: search the traces of the teams the user may see, and one trace's waterfall.

The waterfall is rendered here as a table with CSS bars (no script needed to read it). A span's
attributes, events and resource are read only when its panel is opened (waterfall.js asks
`trace_span_json`), so a 1,000-span trace is one query without its attribute blobs, not
1,000 rendered attribute tables.
"""

from __future__ import annotations

from html import escape

from django.http import JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from apps.accounts.teams import current_team
from apps.agents.selectors import agent_list
from apps.core.views import login_required_view

from ..traces import TraceFilterForm, span_get, trace_get, trace_search

# The agent dashboard's page (apps/observability/views/dashboards.py).
AGENT_DASHBOARD = "/observability/agents/{}/"


def agent_dashboard_url(agent_id: int | None) -> str | None:
    return AGENT_DASHBOARD.format(agent_id) if agent_id else None


def run_url(run_id: int | None) -> str | None:
    return reverse("runtime:run_detail", args=[run_id]) if run_id else None


def duration_label(ms: float) -> str:
    """Return a duration for people: 850 ms, 2.4 s, 3 min 05 s."""
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@require_GET
@login_required_view
def trace_list_view(request):
    form = TraceFilterForm(request.GET)
    agents = agent_list(user=request.user).order_by("name").values_list("pk", "name", "team__slug")
    context = {"form": form, "agents": agents, "page": None, "next_query": None}
    if not form.is_valid():
        return render(request, "observability/trace_list.html", context, status=400)
    data = form.cleaned_data
    page = trace_search(user=request.user, filters=data, cursor=data.get("cursor") or "", limit=data.get("limit"))
    if page.next_cursor:
        query = request.GET.copy()
        query["cursor"] = page.next_cursor
        context["next_query"] = query.urlencode()
    first = request.GET.copy()
    first.pop("cursor", None)
    context.update(page=page, first_query=first.urlencode(), paged=bool(data.get("cursor")))
    return render(request, "observability/trace_list.html", context)


def _waterfall(trace) -> list[dict]:
    """Return the rows of the waterfall: bars as percentages of the trace's time."""
    start = trace.start_time
    total_ms = max(trace.duration_ms, 0.001)
    rows = []
    for span in trace.spans:
        offset = (span.start_time - start).total_seconds() * 1000
        left = min(max(offset / total_ms * 100, 0.0), 100.0)
        width = min(max(span.duration_ms / total_ms * 100, 0.25), 100.0 - left if left < 99.75 else 0.25)
        tokens = span.input_tokens + span.output_tokens
        rows.append(
            {
                "span_id": span.span_id,
                "parent": span.parent_span_id,
                "depth": span.depth,
                "indent": f"{span.depth * 1.1:.1f}",
                "children": span.child_count,
                "name": span.name,
                "operation": span.operation,
                "status": span.status,
                "bar": f"left:{left:.3f}%;width:{width:.3f}%",
                "offset": duration_label(offset),
                "duration": duration_label(span.duration_ms),
                "tokens": f"{span.input_tokens} / {span.output_tokens}" if tokens else "",
                "cost": f"{span.cost_usd:.6f}" if span.cost_usd else "",
            }
        )
    return rows


# One waterfall row. Built with str.format and html.escape rather than the template language: a
# 1,000-span trace is 1,000 rows, and the template engine's per-variable cost made it the slow part.
ROW = (
    '<tr class="span-row" data-span="{span_id}" data-parent="{parent}" data-depth="{depth}">'
    '<td class="wf-name" style="padding-left:{indent}em">{toggle}'
    '<button type="button" class="wf-open" aria-expanded="false">{name}</button>{operation}</td>'
    '<td class="wf-axis"><div class="wf-bar wf-bar-{status}" style="{bar}" title="starts at +{offset}, lasts {duration}">'
    "</div></td>"
    '<td class="nowrap">{duration}</td><td class="nowrap">{tokens}</td><td>{cost}</td>'
    '<td><span class="span-status span-status-{status}">{status}</span></td></tr>\n'
)
TOGGLE = '<button type="button" class="wf-toggle" aria-expanded="true" aria-label="Hide or show its {} child spans"></button>'
LEAF = '<span class="wf-leaf"></span>'


def span_details(span) -> dict:
    """Return what a span's panel shows: its facts, links, attributes, events and resource."""
    return {
        "span_id": span.span_id,
        "name": span.name,
        "kind": span.kind,
        "source": span.source,
        "status": span.status,
        "status_message": span.status_message,
        "start": span.start_time.isoformat(),
        "duration": duration_label(span.duration_ms),
        "agent": span.agent_name,
        "agent_version": span.agent_version,
        "agent_url": agent_dashboard_url(span.agent_id),
        "run_id": span.run_id,
        "run_url": run_url(span.run_id),
        "model": span.model,
        "tool": span.tool,
        "input_tokens": span.input_tokens,
        "output_tokens": span.output_tokens,
        "cached_tokens": span.cached_tokens,
        "cost_usd": f"{span.cost_usd:.6f}",
        "parent": span.parent_span_id,
        "attributes": span.attributes,
        "events": span.events,
        "resource": span.resource,
    }


def waterfall_html(rows: list[dict]) -> str:
    """Return the waterfall's table rows; every value from a span is escaped."""
    parts = []
    for r in rows:
        parts.append(
            ROW.format(
                span_id=escape(r["span_id"]),
                parent=escape(r["parent"]),
                depth=r["depth"],
                indent=r["indent"],
                toggle=TOGGLE.format(r["children"]) if r["children"] else LEAF,
                name=escape(r["name"]),
                operation=f' <span class="muted wf-op">{escape(r["operation"])}</span>' if r["operation"] else "",
                status=escape(r["status"]),
                bar=r["bar"],
                offset=r["offset"],
                duration=r["duration"],
                tokens=r["tokens"],
                cost=r["cost"],
            )
        )
    return mark_safe("".join(parts))  # noqa: S308 - every span value above is escaped


@require_GET
@login_required_view
def trace_detail_view(request, trace_id: str):
    team, _ = current_team(request)
    trace = trace_get(
        user=request.user,
        trace_id=trace_id,
        team=request.GET.get("team") or None,
        preferred_team_id=team.pk if team else None,
        details=False,
    )
    rows = _waterfall(trace)
    runs = sorted({s.run_id for s in trace.spans if s.run_id})
    agents = sorted({(s.agent_name or f"agent {s.agent_id}", s.agent_id) for s in trace.spans if s.agent_id})
    context = {
        "trace": trace,
        "rows_html": waterfall_html(rows),
        "runs": [(run_id, run_url(run_id)) for run_id in runs],
        "agents": [(name, agent_dashboard_url(agent_id)) for name, agent_id in agents],
        "duration": duration_label(trace.duration_ms),
    }
    return render(request, "observability/trace_detail.html", context)


@require_GET
@login_required_view
def trace_span_json_view(request, trace_id: str, span_id: str):
    """Answer one span's details as JSON, for the waterfall's span panel (?team=<slug> as the page shows)."""
    span = span_get(user=request.user, trace_id=trace_id, span_id=span_id, team=request.GET.get("team") or None)
    return JsonResponse(span_details(span))


urlpatterns = [
    path("traces/", trace_list_view, name="trace_list"),
    path("traces/<str:trace_id>/", trace_detail_view, name="trace_detail"),
    path("traces/<str:trace_id>/spans/<str:span_id>/", trace_span_json_view, name="trace_span_json"),
]
