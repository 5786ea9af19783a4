"""Reads of traces, spans and hourly rollups: only the teams the user may see (another team's is a 404).

A user sees the spans of the teams they may see (`apps.accounts.selectors.team_list`: their teams,
teams granted to them, every team for platform admins and auditors; an API token only its team).

Built for volume (10M spans): every read is bounded by a time window, and a trace search lists
traces by their root span (no parent; `is_run`), reading the (team, is_run, start_time) index
newest first and stopping after one page. Conditions on what any span of the trace did (agent,
model, tool, text, status) are EXISTS checks on the (team, trace_id, span_id) key, so a page
costs one query for the roots and one for their totals. A trace is listed once its root span is
stored (a runtime run's root is written when the run ends); its spans are readable by id before.

The filter forms live here, beside the reads they feed, because the pages and the API share them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from django import forms
from django.conf import settings
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDay
from django.http import Http404
from django.utils import timezone

from apps.accounts.selectors import team_list
from apps.core.exceptions import ServiceError

from .models import Span, SpanRollup, SpanSource, SpanStatus
from .store import JSON_COLUMNS, SPAN_COLUMNS

RANGES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
RANGE_CHOICES = [("1h", "last hour"), ("24h", "last 24 hours"), ("7d", "last 7 days"), ("30d", "last 30 days")]
DEFAULT_RANGE = "24h"
ROLLUP_MAX_DAYS = 400
TRACE_PAGE_SIZE = 50
MAX_TRACE_PAGE_SIZE = 200
# A trace view reads at most this many spans; larger traces say they were cut.
MAX_TRACE_SPANS = 5000
# Child spans may start a little before their root when services' clocks disagree.
CLOCK_SKEW = timedelta(hours=1)
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
CURSOR = re.compile(r"^(\d{1,20})\.(\d{1,20})$")


def _retention_days() -> int:
    return max(int(getattr(settings, "FLEETDECK_SPAN_RETENTION_DAYS", 30)), 30) + 1


# --- Filters ---------------------------------------------------------------------------------


def _blank(choices, label: str = "any"):
    return [("", label), *choices]


class WindowForm(forms.Form):
    """A time window: `range` (1h, 24h, 7d, 30d; default 24h), or `since` and `until` (ISO 8601)."""

    max_days = 31  # replaced per form by the data's retention
    range = forms.ChoiceField(
        required=False,
        choices=_blank(RANGE_CHOICES, "last 24 hours"),
        error_messages={"invalid_choice": "Choose range=1h, 24h, 7d or 30d (or give since and until)."},
    )
    since = forms.DateTimeField(
        required=False,
        error_messages={"invalid": "Give since as an ISO 8601 time, e.g. 2026-11-20T10:00:00Z."},
    )
    until = forms.DateTimeField(
        required=False,
        error_messages={"invalid": "Give until as an ISO 8601 time, e.g. 2026-11-20T12:00:00Z."},
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        now = timezone.now()
        length = RANGES[data.get("range") or DEFAULT_RANGE]
        since, until = data.get("since"), data.get("until")
        if since and not until:
            until = max(now, since + timedelta(seconds=1))
        elif until and not since:
            since = until - length
        elif not since:
            since, until = now - length, now
        if since >= until:
            raise forms.ValidationError({"since": "since must be before until."})
        if until - since > timedelta(days=self.max_days):
            raise forms.ValidationError(
                {"since": f"The time window is at most {self.max_days} days: narrow since and until."}
            )
        data["window"] = (since, until)
        return data


_AGENT_ERRORS = {"invalid": "Give the agent's id, a number, e.g. agent=12.", "min_value": "Agent ids start at 1."}


class TraceFilterForm(WindowForm):
    agent = forms.IntegerField(required=False, min_value=1, label="Agent id", error_messages=_AGENT_ERRORS)
    status = forms.ChoiceField(
        required=False,
        choices=_blank([("ok", "ok"), ("error", "error")]),
        error_messages={"invalid_choice": "Choose status=ok or status=error."},
    )
    model = forms.CharField(required=False, max_length=100)
    tool = forms.CharField(required=False, max_length=100)
    source = forms.ChoiceField(
        required=False,
        choices=_blank(SpanSource.choices),
        error_messages={"invalid_choice": "Choose source=" + ", ".join(SpanSource.values) + "."},
    )
    q = forms.CharField(required=False, max_length=200, label="Text", help_text="In span names and status messages.")
    team = forms.SlugField(required=False, max_length=50)
    cursor = forms.CharField(required=False, max_length=64)
    limit = forms.IntegerField(required=False, min_value=1, max_value=MAX_TRACE_PAGE_SIZE)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_days = _retention_days()

    def clean_cursor(self):
        value = self.cleaned_data.get("cursor") or ""
        if value and not CURSOR.match(value):
            raise forms.ValidationError("This cursor is not one the trace list gave; start again from the first page.")
        return value


class SpanFilterForm(WindowForm):
    trace_id = forms.RegexField(
        required=False,
        regex=TRACE_ID,
        error_messages={"invalid": "A trace id is 32 lowercase hexadecimal characters."},
    )
    agent = forms.IntegerField(required=False, min_value=1, error_messages=_AGENT_ERRORS)
    run = forms.IntegerField(required=False, min_value=1, error_messages={"invalid": "Give a run id, e.g. run=42."})
    model = forms.CharField(required=False, max_length=100)
    tool = forms.CharField(required=False, max_length=100)
    operation = forms.CharField(required=False, max_length=40)
    status = forms.ChoiceField(
        required=False,
        choices=_blank(SpanStatus.choices),
        error_messages={"invalid_choice": "Choose status=" + ", ".join(SpanStatus.values) + "."},
    )
    source = forms.ChoiceField(
        required=False,
        choices=_blank(SpanSource.choices),
        error_messages={"invalid_choice": "Choose source=" + ", ".join(SpanSource.values) + "."},
    )
    team = forms.SlugField(required=False, max_length=50)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_days = _retention_days()

    def clean_trace_id(self):
        return (self.cleaned_data.get("trace_id") or "").lower()


class RollupFilterForm(WindowForm):
    max_days = ROLLUP_MAX_DAYS
    team = forms.SlugField(required=False, max_length=50)
    agent = forms.IntegerField(
        required=False,
        min_value=0,
        error_messages={"invalid": "Give the agent's id, a number (0: spans that name no agent)."},
    )
    model = forms.CharField(required=False, max_length=100)
    tool = forms.CharField(required=False, max_length=100)
    operation = forms.CharField(required=False, max_length=40)
    source = forms.ChoiceField(
        required=False,
        choices=_blank(SpanSource.choices),
        error_messages={"invalid_choice": "Choose source=" + ", ".join(SpanSource.values) + "."},
    )
    group_by = forms.ChoiceField(
        required=False,
        choices=_blank([("hour", "hour"), ("day", "day")], "hour"),
        error_messages={"invalid_choice": "Choose group_by=hour or group_by=day."},
    )


def _set(filters: dict) -> dict:
    return {k: v for k, v in filters.items() if v not in (None, "", [])}


def team_slugs(*, user, slug: str | None = None) -> dict[int, str]:
    """Return {team id: slug} of the teams the user may see (only `slug`'s when given)."""
    teams = team_list(user=user)
    if slug:
        teams = teams.filter(slug=slug)
    return dict(teams.values_list("pk", "slug"))


def _window(filters: dict) -> tuple[datetime, datetime]:
    window = filters.get("window")
    if window:
        return window
    now = timezone.now()
    return now - RANGES[DEFAULT_RANGE], now


# --- Trace search ----------------------------------------------------------------------------


@dataclass
class TraceSummary:
    """One row of a trace search: the root span and the trace's totals."""

    team_id: int
    team: str
    trace_id: str
    root: Span
    start_time: datetime
    end_time: datetime
    span_count: int = 0
    error_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    @property
    def duration_ms(self) -> float:
        return round((self.end_time - self.start_time).total_seconds() * 1000, 3)

    @property
    def status(self) -> str:
        return SpanStatus.ERROR if self.error_count else SpanStatus.OK

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class TracePage:
    traces: list[TraceSummary]
    next_cursor: str | None
    since: datetime
    until: datetime


def _cursor_of(span: Span) -> str:
    return f"{int(span.start_time.timestamp() * 1_000_000)}.{span.pk}"


def _after_cursor(qs: QuerySet, cursor: str) -> QuerySet:
    match = CURSOR.match(cursor or "")
    if not match:
        raise ServiceError(
            "This cursor is not one the trace list gave; start again from the first page.", field="cursor"
        )
    try:
        at = datetime.fromtimestamp(int(match[1]) / 1_000_000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ServiceError("This cursor is out of range; start again from the first page.", field="cursor") from None
    pk = int(match[2])
    return qs.filter(Q(start_time__lt=at) | Q(start_time=at, id__lt=pk))


def _in_trace(since: datetime, **conditions) -> Exists:
    """Return an EXISTS over the spans of the outer row's trace matching the conditions."""
    spans = Span.objects.filter(
        team_id=OuterRef("team_id"), trace_id=OuterRef("trace_id"), start_time__gte=since - CLOCK_SKEW
    )
    if "q" in conditions:
        text = conditions.pop("q")
        spans = spans.filter(Q(name__icontains=text) | Q(status_message__icontains=text))
    return Exists(spans.filter(**conditions).order_by())


def trace_search(*, user, filters: dict | None = None, cursor: str = "", limit: int = TRACE_PAGE_SIZE) -> TracePage:
    """Return a page of the traces the user may see, newest first, matching the filters.

    Filters (from TraceFilterForm): window (since, until), agent (id of any agent in the trace),
    status (ok: no span failed; error: one did), model, tool, q (text in a span's name or status
    message), source (the root's), team (slug). `cursor` continues after the previous page.
    """
    f = _set(filters or {})
    since, until = _window(f)
    teams = team_slugs(user=user, slug=f.get("team"))
    roots = Span.objects.filter(
        team_id__in=list(teams), is_run=True, parent_span_id="", start_time__gte=since, start_time__lt=until
    )
    if "source" in f:
        roots = roots.filter(source=f["source"])
    if "agent" in f:
        roots = roots.filter(_in_trace(since, agent_id=f["agent"]))
    for name in ("model", "tool", "q"):
        if name in f:
            roots = roots.filter(_in_trace(since, **{name: f[name]}))
    if f.get("status") == SpanStatus.ERROR:
        roots = roots.filter(_in_trace(since, status=SpanStatus.ERROR))
    elif f.get("status") == SpanStatus.OK:
        roots = roots.exclude(_in_trace(since, status=SpanStatus.ERROR))
    if cursor:
        roots = _after_cursor(roots, cursor)
    limit = max(1, min(int(limit or TRACE_PAGE_SIZE), MAX_TRACE_PAGE_SIZE))
    page = list(roots.only("id", *TRACE_FIELDS).order_by("-start_time", "-id")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    summaries = [
        TraceSummary(
            team_id=root.team_id,
            team=teams[root.team_id],
            trace_id=root.trace_id,
            root=root,
            start_time=root.start_time,
            end_time=root.end_time,
        )
        for root in page
    ]
    _add_totals(summaries)
    return TracePage(traces=summaries, next_cursor=_cursor_of(page[-1]) if more else None, since=since, until=until)


def _add_totals(summaries: list[TraceSummary]) -> None:
    """Fill in each trace's span count, errors, tokens, cost and end (one query for the page)."""
    if not summaries:
        return
    by_team: dict[int, list[str]] = {}
    for s in summaries:
        by_team.setdefault(s.team_id, []).append(s.trace_id)
    wanted = Q()
    for team_id, trace_ids in by_team.items():
        wanted |= Q(team_id=team_id, trace_id__in=trace_ids)
    rows = (
        Span.objects.filter(wanted)
        .order_by()
        .values("team_id", "trace_id")
        .annotate(
            span_count=Count("id"),
            error_count=Count("id", filter=Q(status=SpanStatus.ERROR)),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cached_tokens=Sum("cached_tokens"),
            cost_usd=Sum("cost_usd"),
            first=Min("start_time"),
            last=Max("end_time"),
        )
    )
    totals = {(r["team_id"], r["trace_id"]): r for r in rows}
    for s in summaries:
        row = totals.get((s.team_id, s.trace_id))
        if row is None:
            continue
        s.span_count = row["span_count"]
        s.error_count = row["error_count"]
        s.input_tokens = row["input_tokens"] or 0
        s.output_tokens = row["output_tokens"] or 0
        s.cached_tokens = row["cached_tokens"] or 0
        s.cost_usd = Decimal(row["cost_usd"] or 0)
        s.start_time = min(s.start_time, row["first"])
        s.end_time = max(s.end_time, row["last"])


# --- One trace -------------------------------------------------------------------------------


@dataclass
class Trace:
    """One trace: its spans in waterfall order (each with `depth`), totals, and where else the id exists."""

    team_id: int
    team: str
    trace_id: str
    spans: list[TraceSpan]
    truncated: bool = False
    other_teams: list[str] = field(default_factory=list)
    start_time: datetime | None = None
    end_time: datetime | None = None
    span_count: int = 0
    error_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    @property
    def duration_ms(self) -> float:
        if self.start_time is None or self.end_time is None:
            return 0.0
        return round((self.end_time - self.start_time).total_seconds() * 1000, 3)

    @property
    def status(self) -> str:
        return SpanStatus.ERROR if self.error_count else SpanStatus.OK

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


DETAIL_FIELDS = tuple(sorted(JSON_COLUMNS))  # attributes, events, resource
# What the waterfall reads of each span. Rows are read as values, not model instances: building
# 1,000 Span objects cost more than the query itself.
TRACE_FIELDS = tuple(c for c in SPAN_COLUMNS if c not in JSON_COLUMNS and c != "ingested_at")


class TraceSpan(SimpleNamespace):
    """A span of a trace as the waterfall and the API read it (the columns of Span, plus depth)."""


def trace_get(
    *, user, trace_id: str, team: str | None = None, preferred_team_id: int | None = None, details: bool = True
) -> Trace:
    """Return one trace the user may see with its spans nested by parent, or raise Http404.

    Trace ids are unique per team only: with `team` (a slug) that team's trace; otherwise the
    preferred team's (the one the user works in) when it has the id, else the first by team name.
    Spans whose parent is not stored are shown as roots. Without `details` the spans' attributes,
    events and resource are not read (the waterfall page reads them one span at a time).
    """
    trace_id = (trace_id or "").lower()
    if not TRACE_ID.match(trace_id):
        raise Http404("No such trace: a trace id is 32 hexadecimal characters.")
    teams = team_slugs(user=user)
    holders = list(
        Span.objects.filter(team_id__in=list(teams), trace_id=trace_id)
        .order_by()
        .values_list("team_id", flat=True)
        .distinct()
    )
    holders.sort(key=lambda pk: teams[pk])
    if team:
        holders_by_slug = {teams[pk]: pk for pk in holders}
        if team not in holders_by_slug:
            raise Http404("No such trace in that team.")
        chosen = holders_by_slug[team]
    elif not holders:
        raise Http404("No such trace.")
    else:
        chosen = preferred_team_id if preferred_team_id in holders else holders[0]
    fields = TRACE_FIELDS + DETAIL_FIELDS if details else TRACE_FIELDS
    rows = Span.objects.filter(team_id=chosen, trace_id=trace_id).order_by("start_time", "id").values(*fields)
    spans = [TraceSpan(**row) for row in rows[: MAX_TRACE_SPANS + 1]]
    truncated = len(spans) > MAX_TRACE_SPANS
    spans = spans[:MAX_TRACE_SPANS]
    trace = Trace(
        team_id=chosen,
        team=teams[chosen],
        trace_id=trace_id,
        spans=waterfall_order(spans),
        truncated=truncated,
        other_teams=[teams[pk] for pk in holders if pk != chosen],
    )
    for span in spans:
        trace.span_count += 1
        trace.error_count += span.status == SpanStatus.ERROR
        trace.input_tokens += span.input_tokens
        trace.output_tokens += span.output_tokens
        trace.cached_tokens += span.cached_tokens
        trace.cost_usd += span.cost_usd
    if spans:
        trace.start_time = min(s.start_time for s in spans)
        trace.end_time = max(s.end_time for s in spans)
    return trace


def span_get(*, user, trace_id: str, span_id: str, team: str | None = None) -> Span:
    """Return one span of a trace the user may see (of `team`'s trace when given), or raise Http404."""
    trace_id, span_id = (trace_id or "").lower(), (span_id or "").lower()
    if not TRACE_ID.match(trace_id) or not SPAN_ID.match(span_id):
        raise Http404("No such span.")
    teams = team_slugs(user=user, slug=team)
    span = (
        Span.objects.filter(team_id__in=list(teams), trace_id=trace_id, span_id=span_id).order_by("team__name").first()
    )
    if span is None:
        raise Http404("No such span.")
    return span


def waterfall_order(spans: list) -> list:
    """Return the spans depth first (children by start time), each with `depth` and `child_count` set.

    A span whose parent is not among them is a root; spans caught in a parent cycle (possible in
    ingested data) are shown as roots too, so no stored span is ever hidden.
    """
    ids = {s.span_id for s in spans}
    children: dict[str, list] = {}
    roots = []
    for span in spans:
        span.child_count = 0
        if span.parent_span_id and span.parent_span_id in ids and span.parent_span_id != span.span_id:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    ordered: list = []
    seen: set[int] = set()

    def walk(start) -> None:
        stack = [(start, 0)]
        while stack:
            span, depth = stack.pop()
            if id(span) in seen:
                continue
            seen.add(id(span))
            span.depth = depth
            kids = children.get(span.span_id, [])
            span.child_count = len(kids)
            ordered.append(span)
            stack.extend((kid, depth + 1) for kid in reversed(kids))

    for root in roots:
        walk(root)
    for span in spans:  # a parent cycle: nothing above it is a root
        if id(span) not in seen:
            walk(span)
    return ordered


# --- Spans and rollups -----------------------------------------------------------------------


def span_list(*, user, filters: dict | None = None) -> QuerySet[Span]:
    """Return the spans the user may see, newest first, filtered (SpanFilterForm).

    Without a trace or run the list is bounded by the time window (default: the last 24 hours).
    """
    f = _set(filters or {})
    qs = Span.objects.filter(team_id__in=list(team_slugs(user=user, slug=f.get("team"))))
    if "trace_id" in f:
        qs = qs.filter(trace_id=f["trace_id"])
    if "run" in f:
        qs = qs.filter(run_id=f["run"])
    explicit = any(name in f for name in ("since", "until", "range"))
    if explicit or not ("trace_id" in f or "run" in f):
        since, until = _window(f)
        qs = qs.filter(start_time__gte=since, start_time__lt=until)
    for name, column in (
        ("agent", "agent_id"),
        ("model", "model"),
        ("tool", "tool"),
        ("operation", "operation"),
        ("status", "status"),
        ("source", "source"),
    ):
        if name in f:
            qs = qs.filter(**{column: f[name]})
    return qs.order_by("-start_time", "-id")


ROLLUP_SUMS = ("span_count", "error_count", "input_tokens", "output_tokens", "cached_tokens", "cost_usd")
ROLLUP_KEYS = ("team_id", "agent_id", "source", "operation", "model", "tool", "is_run")


def rollup_list(*, user, filters: dict | None = None) -> tuple[QuerySet, dict[int, str]]:
    """Return hourly (or daily: group_by=day) rollup rows the user may see, oldest first, and {team id: slug}.

    Each row: period, team_id, agent_id (0: no agent), source, operation, model, tool, is_run,
    the sums (spans, errors, tokens, cost, duration) and the longest span.
    """
    f = _set(filters or {})
    since, until = _window(f)
    teams = team_slugs(user=user, slug=f.get("team"))
    qs = SpanRollup.objects.filter(team_id__in=list(teams), hour__gte=since, hour__lt=until)
    for name, column in (
        ("agent", "agent_id"),
        ("model", "model"),
        ("tool", "tool"),
        ("operation", "operation"),
        ("source", "source"),
    ):
        if name in f:
            qs = qs.filter(**{column: f[name]})
    period = TruncDay("hour", tzinfo=UTC) if f.get("group_by") == "day" else F("hour")
    rows = (
        qs.order_by()
        .values(*ROLLUP_KEYS, period=period)
        .annotate(
            **{name: Sum(name) for name in ROLLUP_SUMS},
            duration_sum_ms=Sum("duration_sum_ms"),
            duration_max_ms=Max("duration_max_ms"),
        )
    )
    return rows.order_by("period", *ROLLUP_KEYS), teams
