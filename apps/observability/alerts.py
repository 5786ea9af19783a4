"""Alert rules: how each kind's value is measured, and the reads of rules and events.

Every measure reads the span store's rollups or its indexed columns, never attributes:

- budget_percent: the team's spend this month (UTC), from the hourly rollups (of the rule's agent
  when it names one), as a percentage of the team's monthly budget. No budget set: not measured.
- failure_rate: the share of runs (is_run spans: internal runs and external trace roots) started
  in the last window_minutes whose span has status error. Fewer than MIN_RUNS runs: not measured,
  so two runs of which one failed do not page anyone.
- cost_rise: the cost of the last 7 days against the 7 days before, as a percentage rise, from the
  rollups (whole hours). No cost in the earlier week: not measured (no baseline to rise from).
- latency_p95: the p95 duration of runs in the window from the latency histograms (whole hours,
  so a 60-minute window covers the current and the previous hour), with at least MIN_RUNS runs.
- run_cost: each run over the threshold in USD: internal runs finished in the window (Run.cost_usd),
  and external traces (spans not written by the runtime) whose spans in the window cost more in sum.
  Each run or trace fires once: the event keeps the run id (internal) or the trace id (external).

A measure returns None when there is not enough data to judge: the rule then keeps its state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from .models import AlertEvent, AlertKind, AlertRule, Span, SpanLatency, SpanRollup, SpanSource
from .rollups import hour_of, percentile
from .selectors import month_start

MIN_RUNS = 5
COST_RISE_DAYS = 7
UNITS = {
    AlertKind.BUDGET_PERCENT: "%",
    AlertKind.FAILURE_RATE: "%",
    AlertKind.COST_RISE: "%",
    AlertKind.LATENCY_P95: " ms",
    AlertKind.RUN_COST: " USD",
}


@dataclass(frozen=True)
class Measure:
    """A rule's value now and the sentence an event would carry if it crossed the threshold."""

    value: float
    message: str


@dataclass(frozen=True)
class Offender:
    """One run (internal: run_id; external: trace_id) whose cost crossed a run_cost rule."""

    cost: float
    message: str
    run_id: int | None = None
    trace_id: str = ""


def _number(value: float) -> str:
    """Return value as a short human number: 40.0, 1234, 0.0042."""
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.4g}"


def threshold_text(rule: AlertRule) -> str:
    """Return the threshold with its unit, e.g. "25%" or "1.50 USD"."""
    if rule.kind == AlertKind.RUN_COST:
        return f"{rule.threshold:.2f} USD"
    return f"{Decimal(rule.threshold).normalize():f}{UNITS[rule.kind]}"


def _scope(rule: AlertRule) -> str:
    return f"agent {rule.agent.name}" if rule.agent_id else f"team {rule.team.name}"


def _window(rule: AlertRule) -> str:
    minutes = rule.window_minutes
    if minutes % 1440 == 0:
        return f"{minutes // 1440} d"
    if minutes % 60 == 0 and minutes >= 120:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def _rollups(rule: AlertRule, model=SpanRollup) -> QuerySet:
    qs = model.objects.filter(team_id=rule.team_id)
    if rule.agent_id:
        qs = qs.filter(agent_id=rule.agent_id)
    return qs


def _cost(rule: AlertRule, start: datetime, end: datetime) -> Decimal:
    total = _rollups(rule).filter(hour__gte=start, hour__lt=end).aggregate(total=Sum("cost_usd"))["total"]
    return total or Decimal(0)


def measure_budget_percent(rule: AlertRule, now: datetime) -> Measure | None:
    budget = rule.team.monthly_budget
    if not budget:
        return None
    spend = _cost(rule, month_start(now), now + timedelta(hours=1))
    value = float(spend / budget * 100)
    return Measure(
        value,
        f"Spend of {_scope(rule)} this month ({spend:.2f} USD) is {_number(value)}% of the team's monthly budget "
        f"of {budget:.2f} USD, above {threshold_text(rule)}",
    )


def _runs(rule: AlertRule, now: datetime) -> QuerySet[Span]:
    runs = Span.objects.filter(
        team_id=rule.team_id, is_run=True, start_time__gte=now - timedelta(minutes=rule.window_minutes)
    ).filter(start_time__lte=now)
    if rule.agent_id:
        runs = runs.filter(agent_id=rule.agent_id)
    return runs


def measure_failure_rate(rule: AlertRule, now: datetime) -> Measure | None:
    counts = _runs(rule, now).aggregate(total=Count("id"), failed=Count("id", filter=Q(status="error")))
    if counts["total"] < MIN_RUNS:
        return None
    value = counts["failed"] / counts["total"] * 100
    return Measure(
        value,
        f"Failure rate of runs of {_scope(rule)} {_number(value)}% ({counts['failed']} of {counts['total']}) "
        f"over the last {_window(rule)} is above {threshold_text(rule)}",
    )


def measure_cost_rise(rule: AlertRule, now: datetime) -> Measure | None:
    end = hour_of(now) + timedelta(hours=1)
    middle = end - timedelta(days=COST_RISE_DAYS)
    current, previous = _cost(rule, middle, end), _cost(rule, middle - timedelta(days=COST_RISE_DAYS), middle)
    if not previous:
        return None
    value = float((current - previous) / previous * 100)
    return Measure(
        value,
        f"Cost of {_scope(rule)} rose {_number(value)}% week over week ({previous:.2f} USD to {current:.2f} USD "
        f"in the last {COST_RISE_DAYS} days), above {threshold_text(rule)}",
    )


def measure_latency_p95(rule: AlertRule, now: datetime) -> Measure | None:
    start = hour_of(now - timedelta(minutes=rule.window_minutes))
    rows = (
        _rollups(rule, SpanLatency)
        .filter(is_run=True, hour__gte=start, hour__lte=now)
        .values("bucket")
        .annotate(n=Sum("count"))
    )
    counts = {row["bucket"]: row["n"] for row in rows}
    if sum(counts.values()) < MIN_RUNS:
        return None
    value = percentile(counts, 95)
    return Measure(
        value,
        f"Latency p95 of runs of {_scope(rule)} {value:.0f} ms over the last {_window(rule)} "
        f"(whole hours, {sum(counts.values())} runs) is above {threshold_text(rule)}",
    )


MEASURES = {
    AlertKind.BUDGET_PERCENT: measure_budget_percent,
    AlertKind.FAILURE_RATE: measure_failure_rate,
    AlertKind.COST_RISE: measure_cost_rise,
    AlertKind.LATENCY_P95: measure_latency_p95,
}


def measure(rule: AlertRule, now: datetime) -> Measure | None:
    """Return the rule's value now (a threshold kind, not run_cost), or None when there is too little data."""
    return MEASURES[rule.kind](rule, now)


def run_cost_offenders(rule: AlertRule, now: datetime) -> list[Offender]:
    """Return the runs and external traces of the window over the rule's cost that have no event yet."""
    from apps.runtime.models import Run

    start = now - timedelta(minutes=rule.window_minutes)
    threshold = rule.threshold
    runs = Run.objects.filter(
        team_id=rule.team_id, finished_at__gte=start, finished_at__lte=now, cost_usd__gt=threshold
    ).select_related("agent")
    if rule.agent_id:
        runs = runs.filter(agent_id=rule.agent_id)
    runs = list(runs.order_by("finished_at", "pk")[:200])
    seen_runs = set(
        AlertEvent.objects.filter(rule=rule, run_id__in=[r.pk for r in runs]).values_list("run_id", flat=True)
    )
    offenders = [
        Offender(
            cost=float(r.cost_usd),
            run_id=r.pk,
            message=f"Run {r.pk} of agent {r.agent.name} cost {r.cost_usd:.4f} USD, above {threshold_text(rule)}",
        )
        for r in runs
        if r.pk not in seen_runs
    ]
    traces = Span.objects.filter(team_id=rule.team_id, start_time__gte=start, start_time__lte=now).exclude(
        source=SpanSource.RUNTIME
    )
    if rule.agent_id:
        traces = traces.filter(agent_id=rule.agent_id)
    costly = (
        traces.values("trace_id").annotate(cost=Sum("cost_usd")).filter(cost__gt=threshold).order_by("trace_id")[:200]
    )
    for row in costly:
        trace_id = row["trace_id"]
        if AlertEvent.objects.filter(rule=rule, trace_id=trace_id).exists():
            continue
        offenders.append(
            Offender(
                cost=float(row["cost"]),
                trace_id=trace_id,
                message=f"Trace {trace_id} of {_scope(rule)} cost {row['cost']:.4f} USD, above {threshold_text(rule)}",
            )
        )
    return offenders
