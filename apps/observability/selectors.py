"""Reads for the dashboards: the hourly rollups of the teams the user may see, never the raw spans.

Every figure here comes from `SpanRollup` and `SpanLatency` (one row per hour and key), so a
dashboard costs the same at ten thousand or ten million spans. The one exception is the agent
dashboard's error breakdown, which reads the failed run spans of one agent through the
(agent_id, start_time) index. "Running now" comes from the runtime's runs (internal agents only:
spans of external agents arrive when their work has ended).

Days are calendar days in settings.TIME_ZONE; a range of two days or less is shown per hour.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, Count, Q, QuerySet, Sum, TextField, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, NullIf, Substr
from django.http import Http404
from django.utils import timezone

from apps.accounts.permissions import has_perm
from apps.accounts.selectors import team_list
from apps.core.exceptions import ServiceError

from .models import AlertEvent, AlertRule, Span, SpanLatency, SpanRollup, SpanStatus
from .rollups import hour_of, percentile

RANGES = {"24h": 1, "7d": 7, "30d": 30, "90d": 90}
MONTH = "month"
CUSTOM = "custom"
MAX_DAYS = 400  # the rollups' retention (FLEETDECK_ROLLUP_RETENTION_DAYS) bounds what can be shown
TOOL_OPERATION = "execute_tool"
INTERNAL_SOURCES = {"runtime"}
ZERO = Decimal(0)


def source_label(source: str) -> str:
    """Return how a span source is shown: internal (run here) or external (observed)."""
    return "internal" if source in INTERNAL_SOURCES else "external"


# --- Time ranges ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeRange:
    """A period [start, end) of whole hours or whole local days, and how it was asked for."""

    key: str
    start: datetime
    end: datetime
    since: date | None = None
    until: date | None = None

    @property
    def hourly(self) -> bool:
        return self.end - self.start <= timedelta(days=2)

    @property
    def label(self) -> str:
        if self.key == CUSTOM:
            return f"{self.since:%Y-%m-%d} to {self.until:%Y-%m-%d}"
        if self.key == MONTH:
            return f"this month ({self.start:%B %Y})"
        return f"last {self.key}"

    def bucket_of(self, hour: datetime) -> datetime:
        """Return the chart bucket (the hour, or the local day's midnight) a rollup hour falls in."""
        if self.hourly:
            return hour
        local = timezone.localtime(hour)
        return local.replace(hour=0, minute=0, second=0, microsecond=0)

    def buckets(self) -> list[datetime]:
        """Return every bucket of the range in order, so empty hours or days show as zero."""
        out, step = [], timedelta(hours=1) if self.hourly else timedelta(days=1)
        moment = self.start
        while moment < self.end:
            out.append(moment)
            moment = _local_midnight(moment + step) if not self.hourly else moment + step
        return out


def month_start(now: datetime) -> datetime:
    """Return the first moment of now's month in UTC: where team budgets start, as the runtime counts them."""
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _local_midnight(moment: datetime) -> datetime:
    local = timezone.localtime(moment)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _parse_day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ServiceError(
            f"'{value}' is not a date: give {name} as YYYY-MM-DD, e.g. 2025-03-01.", field=name
        ) from None


def time_range_parse(params, *, default: str = "7d", now: datetime | None = None) -> TimeRange:
    """Return the period a dashboard's ?range= (24h, 7d, 30d, 90d, month) or ?since=&until= asks for.

    Raise ServiceError saying what to give instead when the input is not one of those.
    """
    now = now or timezone.now()
    since_text, until_text = (params.get("since") or "").strip(), (params.get("until") or "").strip()
    key = (params.get("range") or "").strip() or (CUSTOM if since_text or until_text else default)
    if key == CUSTOM:
        if not since_text:
            raise ServiceError("A custom range needs a start date: give ?since=YYYY-MM-DD.", field="since")
        since = _parse_day(since_text, "since")
        until = _parse_day(until_text, "until") if until_text else timezone.localdate(now)
        if until < since:
            raise ServiceError(f"The range ends ({until}) before it starts ({since}): swap the dates.", field="until")
        if (until - since).days + 1 > MAX_DAYS:
            raise ServiceError(f"A range covers at most {MAX_DAYS} days: pick a later start date.", field="since")
        tz = timezone.get_current_timezone()
        start = datetime.combine(since, datetime.min.time(), tzinfo=tz)
        end = datetime.combine(until + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        return TimeRange(CUSTOM, start, end, since, until)
    if key == MONTH:
        today = _local_midnight(now)
        return TimeRange(MONTH, today.replace(day=1), today + timedelta(days=1))
    if key not in RANGES:
        choices = ", ".join([*RANGES, MONTH])
        raise ServiceError(
            f"Unknown range '{key[:40]}': pick one of {choices}, or give ?since=YYYY-MM-DD&until=YYYY-MM-DD.",
            field="range",
        )
    days = RANGES[key]
    if days <= 2:
        end = hour_of(now) + timedelta(hours=1)
        return TimeRange(key, end - timedelta(days=days), end)
    end = _local_midnight(now) + timedelta(days=1)
    return TimeRange(key, _local_midnight(end - timedelta(days=days)), end)


# --- Which teams ------------------------------------------------------------------------------

ALL_TEAMS = "all"


def dashboard_teams(*, user, slug: str | None, current=None) -> list:
    """Return the teams a dashboard covers: one visible team by slug, every visible team ("all"), or the current one.

    A team the user may not see is a 404, like any other team's object.
    """
    visible = team_list(user=user)
    if slug == ALL_TEAMS:
        return list(visible)
    if slug:
        team = visible.filter(slug=slug).first()
        if team is None:
            raise Http404("No such team.")
        return [team]
    return [current] if current is not None else []


# --- Reads over the rollups -------------------------------------------------------------------


def _rollups(team_ids, start: datetime, end: datetime) -> QuerySet[SpanRollup]:
    return SpanRollup.objects.filter(team_id__in=list(team_ids), hour__gte=start, hour__lt=end).order_by()


def _sums(**extra):
    return {
        "spans": Sum("span_count"),
        "errors": Sum("error_count"),
        "cost": Sum("cost_usd"),
        **extra,
    }


RUNS = Sum("span_count", filter=Q(is_run=True))
RUN_ERRORS = Sum("error_count", filter=Q(is_run=True))


def _rate(part, whole) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def agent_names(agent_ids) -> dict[int, dict]:
    """Return {agent id: {name, external, team}} for the ids the rollups name (0: spans naming no agent)."""
    from apps.agents.models import Agent

    rows = Agent.objects.filter(pk__in=[a for a in set(agent_ids) if a]).values("pk", "name", "external", "team__slug")
    names = {r["pk"]: {"name": r["name"], "external": r["external"], "team": r["team__slug"]} for r in rows}
    names[0] = {"name": "(no agent)", "external": True, "team": ""}
    return names


def _by_agent(qs: QuerySet[SpanRollup]) -> list[dict]:
    """Return per (agent, source): runs, failed runs, cost and tokens, most expensive first."""
    rows = list(
        qs.values("agent_id", "source").annotate(
            runs=RUNS,
            failed=RUN_ERRORS,
            cost=Sum("cost_usd"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
        )
    )
    names = agent_names(r["agent_id"] for r in rows)
    out = []
    for r in rows:
        info = names.get(r["agent_id"]) or {"name": f"agent #{r['agent_id']}", "external": False, "team": ""}
        runs, failed = r["runs"] or 0, r["failed"] or 0
        out.append(
            {
                "agent_id": r["agent_id"],
                "agent": info["name"],
                "team": info["team"],
                "source": source_label(r["source"]),
                "runs": runs,
                "failed": failed,
                "failure_rate": _rate(failed, runs),
                "cost": r["cost"] or ZERO,
                "input_tokens": r["input_tokens"] or 0,
                "output_tokens": r["output_tokens"] or 0,
            }
        )
    out.sort(key=lambda r: (-r["cost"], -r["runs"], r["agent"]))
    return out


def _tools(qs: QuerySet[SpanRollup]) -> list[dict]:
    rows = list(
        qs.filter(operation=TOOL_OPERATION)
        .exclude(tool="")
        .values("tool")
        .annotate(calls=Sum("span_count"), errors=Sum("error_count"), cost=Sum("cost_usd"), ms=Sum("duration_sum_ms"))
    )
    total = sum(r["calls"] for r in rows)
    out = [
        {
            "tool": r["tool"],
            "calls": r["calls"],
            "share": _rate(r["calls"], total),
            "errors": r["errors"],
            "cost": r["cost"] or ZERO,
            "avg_ms": round(r["ms"] / r["calls"], 1) if r["calls"] else None,
        }
        for r in rows
    ]
    out.sort(key=lambda r: (-r["calls"], r["tool"]))
    return out


def _runs_series(qs: QuerySet[SpanRollup], time_range: TimeRange) -> list[dict]:
    """Return per bucket: internal and external runs and failed runs."""
    per: dict[datetime, dict] = {
        b: {"bucket": b, "internal": 0, "external": 0, "failed": 0} for b in time_range.buckets()
    }
    for r in (
        qs.filter(is_run=True).values("hour", "source").annotate(runs=Sum("span_count"), failed=Sum("error_count"))
    ):
        row = per.setdefault(
            time_range.bucket_of(r["hour"]),
            {"bucket": time_range.bucket_of(r["hour"]), "internal": 0, "external": 0, "failed": 0},
        )
        row[source_label(r["source"])] += r["runs"]
        row["failed"] += r["failed"]
    out = sorted(per.values(), key=lambda r: r["bucket"])
    for row in out:
        row["runs"] = row["internal"] + row["external"]
        row["failure_rate"] = _rate(row["failed"], row["runs"])
    return out


@dataclass
class CostTrend:
    """Cost of the last 7 x 24 hours against the 7 x 24 hours before, and the 14 days behind it."""

    this_week: Decimal
    previous_week: Decimal
    rise_percent: float | None
    threshold: int
    days: list[dict] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return self.rise_percent is not None and self.rise_percent > self.threshold


def cost_trend(*, team_ids, now: datetime | None = None) -> CostTrend:
    """Return week-over-week cost: rolling 168-hour windows ending with the current hour."""
    now = now or timezone.now()
    end = hour_of(now) + timedelta(hours=1)
    start = end - timedelta(days=14)
    days = [{"days_ago": k, "start": end - timedelta(days=k + 1), "cost": ZERO} for k in range(14)]
    rows = _rollups(team_ids, start, end).values("hour").annotate(cost=Sum("cost_usd"))
    for r in rows:
        k = int((end - r["hour"]) / timedelta(days=1) - 1e-9)
        if 0 <= k < 14:
            days[k]["cost"] += r["cost"] or ZERO
    this_week = sum((d["cost"] for d in days[:7]), ZERO)
    previous = sum((d["cost"] for d in days[7:]), ZERO)
    rise = round(float((this_week - previous) / previous * 100), 1) if previous > 0 else None
    for d in days:
        d["week"] = "this week" if d["days_ago"] < 7 else "previous week"
    return CostTrend(this_week, previous, rise, settings.FLEETDECK_COST_RISE_PERCENT, list(reversed(days)))


def fleet_overview(*, teams, time_range: TimeRange, now: datetime | None = None) -> dict:
    """Return the fleet dashboard's numbers for the teams: agents, running now, today, the range, trends."""
    from apps.agents.models import Agent, AgentStatus
    from apps.runtime.models import Run, RunStatus

    now = now or timezone.now()
    team_ids = [t.pk for t in teams]
    agents = dict(
        Agent.objects.filter(team_id__in=team_ids)
        .exclude(status=AgentStatus.RETIRED)
        .order_by()
        .values_list("external")
        .annotate(n=Count("pk"))
    )
    running = Run.objects.filter(team_id__in=team_ids, status__in=[RunStatus.RUNNING, RunStatus.QUEUED]).count()
    midnight = _local_midnight(now)
    today = _rollups(team_ids, midnight, now + timedelta(hours=1)).filter(is_run=True).aggregate(**_sums())
    runs_today, failed_today = today["spans"] or 0, today["errors"] or 0
    qs = _rollups(team_ids, time_range.start, time_range.end)
    by_agent = _by_agent(qs)
    runs = sum(r["runs"] for r in by_agent)
    failed = sum(r["failed"] for r in by_agent)
    cost = sum((r["cost"] for r in by_agent), ZERO)
    return {
        "agents_total": sum(agents.values()),
        "agents_internal": agents.get(False, 0),
        "agents_external": agents.get(True, 0),
        "running_now": running,
        "succeeded_today": runs_today - failed_today,
        "failed_today": failed_today,
        "failure_rate_today": _rate(failed_today, runs_today),
        "runs": runs,
        "failed": failed,
        "failure_rate": _rate(failed, runs),
        "cost": cost,
        "avg_cost_per_run": (cost / runs).quantize(Decimal("0.000001")) if runs else None,
        "by_agent": by_agent,
        "tools": _tools(qs),
        "runs_series": _runs_series(qs, time_range),
        "cost_trend": cost_trend(team_ids=team_ids, now=now),
    }


# --- Team costs -------------------------------------------------------------------------------


def _cost_series(qs: QuerySet[SpanRollup], time_range: TimeRange) -> list[dict]:
    per = {b: ZERO for b in time_range.buckets()}
    for r in qs.values("hour").annotate(cost=Sum("cost_usd")):
        bucket = time_range.bucket_of(r["hour"])
        per[bucket] = per.get(bucket, ZERO) + (r["cost"] or ZERO)
    out, running = [], ZERO
    for bucket in sorted(per):
        running += per[bucket]
        out.append({"bucket": bucket, "cost": per[bucket], "cumulative": running})
    return out


def _models(qs: QuerySet[SpanRollup]) -> list[dict]:
    rows = (
        qs.exclude(model="")
        .values("model")
        .annotate(
            calls=Sum("span_count"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cached_tokens=Sum("cached_tokens"),
            cost=Sum("cost_usd"),
        )
    )
    out = [{**r, "cost": r["cost"] or ZERO} for r in rows]
    out.sort(key=lambda r: (-r["cost"], r["model"]))
    return out


@dataclass
class Budget:
    """Spend this month against the team's monthly budget, and where the month is heading.

    Forecast: a linear projection of the month-to-date average spend per day (spend so far /
    days elapsed, counting today's hours so far) times the days of the month.
    """

    month_start: datetime
    spent: Decimal
    budget: Decimal
    days_elapsed: float
    days_in_month: int
    forecast: Decimal

    @property
    def percent(self) -> float | None:
        return round(float(self.spent / self.budget * 100), 1) if self.budget > 0 else None

    @property
    def forecast_percent(self) -> float | None:
        return round(float(self.forecast / self.budget * 100), 1) if self.budget > 0 else None

    @property
    def over(self) -> bool:
        return self.budget > 0 and self.spent > self.budget

    @property
    def forecast_over(self) -> bool:
        return self.budget > 0 and self.forecast > self.budget


def budget_status(*, team, now: datetime | None = None) -> Budget:
    """Return the team's spend this calendar month (from the rollups) against its monthly budget."""
    now = now or timezone.now()
    start = month_start(now)
    spent = _rollups([team.pk], start, now + timedelta(hours=1)).aggregate(c=Sum("cost_usd"))["c"] or ZERO
    days_in_month = calendar.monthrange(start.year, start.month)[1]
    # At least one hour elapsed, so a month's first minutes do not project to infinity.
    elapsed = max((now - start) / timedelta(days=1), 1 / 24)
    forecast = (spent / Decimal(str(elapsed)) * days_in_month).quantize(Decimal("0.01"))
    return Budget(start, spent, team.monthly_budget or ZERO, round(elapsed, 2), days_in_month, max(forecast, spent))


def team_costs(*, team, time_range: TimeRange, now: datetime | None = None) -> dict:
    """Return the team-costs dashboard: budget this month, and cost by day, agent, model and tool in the range."""
    qs = _rollups([team.pk], time_range.start, time_range.end)
    by_agent = _by_agent(qs)
    return {
        "budget": budget_status(team=team, now=now),
        "cost": sum((r["cost"] for r in by_agent), ZERO),
        "by_day": _cost_series(qs, time_range),
        "by_agent": by_agent,
        "by_model": _models(qs),
        "by_tool": _tools(qs),
    }


# --- One agent --------------------------------------------------------------------------------


def _error_breakdown(*, agent, time_range: TimeRange) -> list[dict]:
    """Return failed runs by error code (fleetdeck.run.error_code, else the status message's start)."""
    text = TextField()
    code = Coalesce(
        NullIf(KT("attributes__fleetdeck.run.error_code"), Value(""), output_field=text),
        NullIf(Substr("status_message", 1, 80, output_field=text), Value(""), output_field=text),
        Value("(no message)", output_field=text),
        output_field=text,
    )
    rows = (
        Span.objects.filter(
            agent_id=agent.pk,
            team_id=agent.team_id,
            is_run=True,
            status=SpanStatus.ERROR,
            start_time__gte=time_range.start,
            start_time__lt=time_range.end,
        )
        .order_by()
        .values(code=code)
        .annotate(runs=Count("pk"))
    )
    out = list(rows)
    total = sum(r["runs"] for r in out)
    for r in out:
        r["share"] = _rate(r["runs"], total)
    out.sort(key=lambda r: (-r["runs"], r["code"]))
    return out


def _latency_series(*, agent, time_range: TimeRange) -> tuple[list[dict], dict]:
    rows = (
        SpanLatency.objects.filter(
            agent_id=agent.pk,
            team_id=agent.team_id,
            is_run=True,
            hour__gte=time_range.start,
            hour__lt=time_range.end,
        )
        .order_by()
        .values("hour", "bucket")
        .annotate(n=Sum("count"))
    )
    per: dict[datetime, dict[int, int]] = {b: {} for b in time_range.buckets()}
    overall: dict[int, int] = defaultdict(int)
    for r in rows:
        hist = per.setdefault(time_range.bucket_of(r["hour"]), {})
        hist[r["bucket"]] = hist.get(r["bucket"], 0) + r["n"]
        overall[r["bucket"]] += r["n"]
    series = [
        {"bucket": b, "runs": sum(h.values()), "p50_ms": percentile(h, 50), "p95_ms": percentile(h, 95)}
        for b, h in sorted(per.items())
    ]
    return series, {"p50_ms": percentile(overall, 50), "p95_ms": percentile(overall, 95)}


def agent_markers(*, agent, time_range: TimeRange) -> list[dict]:
    """Return the agent's published versions and promotions in the range, for the time axis."""
    from apps.agents.models import Promotion

    out = [
        {"at": v.created_at, "kind": "published", "label": f"v{v.version} published"}
        for v in agent.versions.filter(created_at__gte=time_range.start, created_at__lt=time_range.end).order_by(
            "created_at"
        )
    ]
    promotions = Promotion.objects.filter(
        agent=agent, created_at__gte=time_range.start, created_at__lt=time_range.end
    ).select_related("to_version")
    for p in promotions.order_by("created_at"):
        verb = "rolled back to" if p.is_rollback else "promoted"
        label = (
            f"{p.channel}: {verb} v{p.to_version.version}"
            if p.is_rollback
            else f"v{p.to_version.version} {verb} to {p.channel}"
        )
        out.append({"at": p.created_at, "kind": "rollback" if p.is_rollback else "promotion", "label": label})
    out.sort(key=lambda m: m["at"])
    return out


def agent_overview(*, agent, time_range: TimeRange) -> dict:
    """Return the agent dashboard: runs, success rate, latency, tokens per run, tools, errors, versions."""
    qs = SpanRollup.objects.filter(
        agent_id=agent.pk, team_id=agent.team_id, hour__gte=time_range.start, hour__lt=time_range.end
    ).order_by()
    per = {
        b: {"bucket": b, "runs": 0, "failed": 0, "input_tokens": 0, "output_tokens": 0, "cost": ZERO}
        for b in time_range.buckets()
    }
    rows = qs.values("hour").annotate(
        runs=RUNS, failed=RUN_ERRORS, i=Sum("input_tokens"), o=Sum("output_tokens"), c=Sum("cost_usd")
    )
    for r in rows:
        b = time_range.bucket_of(r["hour"])
        row = per.setdefault(
            b, {"bucket": b, "runs": 0, "failed": 0, "input_tokens": 0, "output_tokens": 0, "cost": ZERO}
        )
        row["runs"] += r["runs"] or 0
        row["failed"] += r["failed"] or 0
        row["input_tokens"] += r["i"] or 0
        row["output_tokens"] += r["o"] or 0
        row["cost"] += r["c"] or ZERO
    series = sorted(per.values(), key=lambda r: r["bucket"])
    for row in series:
        row["succeeded"] = row["runs"] - row["failed"]
        row["success_rate"] = _rate(row["succeeded"], row["runs"])
        tokens = row["input_tokens"] + row["output_tokens"]
        row["tokens_per_run"] = round(tokens / row["runs"], 1) if row["runs"] else None
    runs = sum(r["runs"] for r in series)
    failed = sum(r["failed"] for r in series)
    tokens = sum(r["input_tokens"] + r["output_tokens"] for r in series)
    cost = sum((r["cost"] for r in series), ZERO)
    latency, latency_overall = _latency_series(agent=agent, time_range=time_range)
    sources = sorted({source_label(s) for s in qs.values_list("source", flat=True).distinct()})
    return {
        "runs": runs,
        "failed": failed,
        "succeeded": runs - failed,
        "success_rate": _rate(runs - failed, runs),
        "tokens_per_run": round(tokens / runs, 1) if runs else None,
        "cost": cost,
        "avg_cost_per_run": (cost / runs).quantize(Decimal("0.000001")) if runs else None,
        "series": series,
        "latency": latency,
        **latency_overall,
        "tools": _tools(qs),
        "errors": _error_breakdown(agent=agent, time_range=time_range),
        "markers": agent_markers(agent=agent, time_range=time_range),
        "sources": sources,
    }


# --- Alert rules and events ---------------------------------------------------------------------------------------


def alert_rule_list(*, user, team=None) -> QuerySet[AlertRule]:
    """Return the alert rules of the teams the user may see (of one team if given), by team and name."""
    qs = AlertRule.objects.filter(team__in=team_list(user=user)).select_related("team", "agent", "created_by")
    if team is not None:
        qs = qs.filter(team=team)
    return qs.order_by("team__name", "name")


def alert_rule_get(*, user, pk) -> AlertRule:
    """Return one alert rule the user may see, or raise Http404."""
    try:
        return alert_rule_list(user=user).get(pk=pk)
    except (AlertRule.DoesNotExist, ValueError, TypeError):
        raise Http404("No such alert rule.") from None


def alert_event_list(*, user, team=None, acknowledged: bool | None = None) -> QuerySet[AlertEvent]:
    """Return the alert events of the teams the user may see: unacknowledged first, then newest first."""
    qs = AlertEvent.objects.filter(team__in=team_list(user=user)).select_related(
        "team", "rule", "acknowledged_by", "rule__agent"
    )
    if team is not None:
        qs = qs.filter(team=team)
    if acknowledged is not None:
        qs = qs.filter(acknowledged_at__isnull=not acknowledged)
    acknowledged_last = Case(When(acknowledged_at__isnull=True, then=Value(0)), default=Value(1))
    return qs.order_by(acknowledged_last, "-fired_at", "-pk")


def alert_event_get(*, user, pk) -> AlertEvent:
    """Return one alert event the user may see, or raise Http404."""
    try:
        return alert_event_list(user=user).get(pk=pk)
    except (AlertEvent.DoesNotExist, ValueError, TypeError):
        raise Http404("No such alert event.") from None


def can_manage_alerts(user, team) -> bool:
    """Return whether the user may create, change and delete the team's alert rules."""
    return has_perm(user, "alert.manage", team)


def can_acknowledge(user, team) -> bool:
    """Return whether the user may acknowledge the team's alert events."""
    return has_perm(user, "alert.acknowledge", team)
