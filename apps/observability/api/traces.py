"""The traces, spans and rollups API: read-only, over the teams the caller may see.

Reads go through apps/observability/traces.py (another team's trace is a 404); a token needs the
`read` scope. Bad filters answer 400 naming the filter and how to fix it. Traces and spans are
paged by a cursor (keyset, newest first): counting 10M spans for page numbers would be the slow part.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from apps.core.registry_api import filters_from

from .. import traces
from ..models import Span, SpanRollup
from .serializers_traces import RollupSerializer, SpanSerializer, TraceDetailSerializer, TracePageSerializer

WINDOW_PARAMETERS = [
    OpenApiParameter("range", str, enum=list(traces.RANGES), description="The time window (default 24h)."),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Start of the window (ISO 8601); overrides range."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="End of the window (default now)."),
]
TEAM = OpenApiParameter("team", str, description="Only this team (its slug).")
TRACE_PARAMETERS = [
    *WINDOW_PARAMETERS,
    OpenApiParameter("agent", int, description="Traces in which this agent (id) has a span."),
    OpenApiParameter("status", str, enum=["ok", "error"], description="error: a span of the trace failed."),
    OpenApiParameter("model", str, description="Traces with a call to this model (e.g. gpt-4o-mini)."),
    OpenApiParameter("tool", str, description="Traces with a call of this tool."),
    OpenApiParameter("source", str, enum=["runtime", "otlp", "gateway"], description="Where the trace came from."),
    OpenApiParameter("q", str, description="Text in a span's name or status message."),
    TEAM,
    OpenApiParameter("cursor", str, description="The `next` of the previous page continues after it."),
    OpenApiParameter("limit", int, description=f"Traces per page (default 50, at most {traces.MAX_TRACE_PAGE_SIZE})."),
]
SPAN_PARAMETERS = [
    *WINDOW_PARAMETERS,
    OpenApiParameter("trace_id", str, description="The spans of one trace (no time window unless given)."),
    OpenApiParameter("run", int, description="The spans of one run of the runtime (no time window unless given)."),
    OpenApiParameter("agent", int, description="The agent's id."),
    OpenApiParameter("model", str),
    OpenApiParameter("tool", str),
    OpenApiParameter("operation", str, description="gen_ai.operation.name, e.g. chat, execute_tool, invoke_agent."),
    OpenApiParameter("status", str, enum=["unset", "ok", "error"]),
    OpenApiParameter("source", str, enum=["runtime", "otlp", "gateway"]),
    TEAM,
]
ROLLUP_PARAMETERS = [
    OpenApiParameter("range", str, enum=list(traces.RANGES), description="The time window (default 24h)."),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description=f"At most {traces.ROLLUP_MAX_DAYS} days back."),
    OpenApiParameter("until", OpenApiTypes.DATETIME),
    TEAM,
    OpenApiParameter("agent", int, description="The agent's id (0: spans that name no agent)."),
    OpenApiParameter("model", str),
    OpenApiParameter("tool", str),
    OpenApiParameter("operation", str),
    OpenApiParameter("source", str, enum=["runtime", "otlp", "gateway"]),
    OpenApiParameter("group_by", str, enum=["hour", "day"], description="One row per hour (default) or per day."),
]


class TraceListView(generics.GenericAPIView):
    """Search traces, newest first: one row per trace with its root span and totals."""

    serializer_class = TracePageSerializer
    queryset = Span.objects.none()  # for the schema; requests read through the traces module
    pagination_class = None

    @extend_schema(operation_id="traces_list", parameters=TRACE_PARAMETERS, responses=TracePageSerializer)
    def get(self, request):
        data = filters_from(request, traces.TraceFilterForm)
        page = traces.trace_search(
            user=request.user, filters=data, cursor=data.get("cursor") or "", limit=data.get("limit")
        )
        next_url = None
        if page.next_cursor:
            query = request.query_params.copy()
            query["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(request.path + "?" + query.urlencode())
        body = {"next": next_url, "since": page.since, "until": page.until, "results": page.traces}
        return Response(TracePageSerializer(body, context={"request": request}).data)


class TraceDetailView(generics.GenericAPIView):
    """One trace with all its spans (depth first) and totals; ?team=<slug> picks a team sharing the id."""

    serializer_class = TraceDetailSerializer
    queryset = Span.objects.none()
    pagination_class = None

    @extend_schema(parameters=[TEAM], responses=TraceDetailSerializer)
    def get(self, request, trace_id: str):
        trace = traces.trace_get(user=request.user, trace_id=trace_id, team=request.query_params.get("team") or None)
        return Response(TraceDetailSerializer(trace, context={"request": request}).data)


class SpanPagination(CursorPagination):
    ordering = ("-start_time", "-id")
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000


class SpanListView(generics.ListAPIView):
    """Spans, newest first (a cursor pages through them); bounded by the time window unless a trace or run is given."""

    serializer_class = SpanSerializer
    queryset = Span.objects.none()
    pagination_class = SpanPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Span.objects.none()
        return traces.span_list(user=self.request.user, filters=filters_from(self.request, traces.SpanFilterForm))

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["teams"] = traces.team_slugs(user=self.request.user)
        return context

    @extend_schema(parameters=SPAN_PARAMETERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RollupListView(generics.ListAPIView):
    """Hourly rollups (or per day): spans, errors, tokens, cost and durations per agent, operation, model, tool."""

    serializer_class = RollupSerializer
    queryset = SpanRollup.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return SpanRollup.objects.none()
        rows, self.teams = traces.rollup_list(
            user=self.request.user, filters=filters_from(self.request, traces.RollupFilterForm)
        )
        return rows

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "teams": getattr(self, "teams", {})}

    @extend_schema(parameters=ROLLUP_PARAMETERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


urlpatterns = [
    path("traces/", TraceListView.as_view(), name="trace-list"),
    path("traces/<str:trace_id>/", TraceDetailView.as_view(), name="trace-detail"),
    path("spans/", SpanListView.as_view(), name="span-list"),
    path("rollups/", RollupListView.as_view(), name="rollup-list"),
]
