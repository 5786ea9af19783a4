"""Limits enforced before spending (DESIGN.md invariant 5).

Per run: max_steps (model calls), max_tokens, max_cost_usd, max_wall_seconds. Per agent: a daily
budget; per team: a monthly budget, both hard stops read from one SpendCounter row each. A loop
breaker stops a run calling the same tool with the same arguments too often, and per-tool rate
limits count calls in fixed windows (in Redis when REDIS_URL is set, else in the database).
Each check returns a LimitStop naming the limit and its value, or None.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.observability.pricing import Prices, call_cost

from .models import RateWindow, Run, RunStatus, SpendCounter, SpendPeriod


@dataclass
class LimitStop:
    code: str
    message: str
    status: str = RunStatus.LIMIT_EXCEEDED


def cost_of(model, tokens_in: int, tokens_out: int) -> Decimal:
    """Return the USD cost of a model call from the catalog's prices, as the span store prices it."""
    prices = Prices(model.input_price_per_mtok, model.output_price_per_mtok, model.cached_input_price_per_mtok)
    return call_cost(prices, input_tokens=tokens_in, output_tokens=tokens_out)


def estimate_tokens(messages: list[dict]) -> int:
    """Return a rough count of the tokens the messages will take (4 characters per token)."""
    chars = 0
    for message in messages:
        chars += len(message.get("content") or "")
        for call in message.get("tool_calls") or []:
            chars += len(call.name) + len(json.dumps(call.arguments))
    return chars // 4 + 4 * len(messages)


def spend_periods(now) -> tuple:
    """Return the first days of the budget periods containing now: (the day, the month)."""
    day = now.date()
    return day, day.replace(day=1)


def spend_rows(run: Run):
    """Return the run's two counters: its agent's today and its team's this month."""
    day, month = spend_periods(timezone.now())
    rows = Q(agent_id=run.agent_id, period=SpendPeriod.DAY, period_start=day) | Q(
        agent__isnull=True, period=SpendPeriod.MONTH, period_start=month
    )
    return SpendCounter.objects.filter(rows, team_id=run.team_id)


def spend_add(*, run: Run, cost: Decimal) -> None:
    """Add cost to the agent's day and the team's month (inside the caller's transaction)."""
    if not cost:
        return
    # Both counters in one statement (every step with a cost comes here); create them on the first spend.
    if spend_rows(run).update(cost_usd=F("cost_usd") + cost) < 2:
        spend_create_missing(run=run, cost=cost)


def spend_create_missing(*, run: Run, cost: Decimal) -> None:
    """Create whichever of the run's two counters does not exist yet, holding cost."""
    day, month = spend_periods(timezone.now())
    for agent_id, period, start in ((run.agent_id, SpendPeriod.DAY, day), (None, SpendPeriod.MONTH, month)):
        lookup = dict(team_id=run.team_id, agent_id=agent_id, period=period, period_start=start)
        if SpendCounter.objects.filter(**lookup).exists():
            continue
        try:
            with transaction.atomic():
                SpendCounter.objects.create(**lookup, cost_usd=cost)
        except IntegrityError:  # another worker created it first
            SpendCounter.objects.filter(**lookup).update(cost_usd=F("cost_usd") + cost)


def spent(*, team_id: int, agent_id: int | None) -> Decimal:
    """Return what the agent spent today (agent_id) or the team this month (agent_id None)."""
    day, month = spend_periods(timezone.now())
    period, start = (SpendPeriod.DAY, day) if agent_id else (SpendPeriod.MONTH, month)
    value = (
        SpendCounter.objects.filter(team_id=team_id, agent_id=agent_id, period=period, period_start=start)
        .values_list("cost_usd", flat=True)
        .first()
    )
    return value or Decimal(0)


def run_limits(run: Run) -> dict:
    return run.spec.get("limits") or {}


def check_before_model_call(*, run: Run, agent, team, estimated_cost: Decimal) -> LimitStop | None:
    """Return why the run must stop before its next model call, or None."""
    limits = run_limits(run)
    if run.model_calls >= limits.get("max_steps", 10):
        return LimitStop("max_steps", f"Stopped: the run reached its limit of {limits['max_steps']} steps (max_steps).")
    if run.tokens_in + run.tokens_out >= limits.get("max_tokens", 50_000):
        return LimitStop(
            "max_tokens", f"Stopped: the run used its limit of {limits['max_tokens']} tokens (max_tokens)."
        )
    return check_cost(run=run, agent=agent, team=team, extra=estimated_cost) or check_wall(run)


def check_wall(run: Run) -> LimitStop | None:
    limit = run_limits(run).get("max_wall_seconds", 300)
    if run.started_at and (timezone.now() - run.started_at).total_seconds() > limit:
        return LimitStop(
            "max_wall_seconds",
            f"Stopped: the run took longer than its limit of {limit} s (max_wall_seconds).",
            RunStatus.TIMED_OUT,
        )
    return None


def check_cost(*, run: Run, agent, team, extra: Decimal) -> LimitStop | None:
    """Return a stop when spending extra would pass the run's, the agent's or the team's limit."""
    max_cost = Decimal(str(run_limits(run).get("max_cost_usd", 1.0)))
    if run.cost_usd + extra > max_cost:
        return LimitStop(
            "max_cost_usd",
            f"Stopped: the next call would take the run past its cost limit of {max_cost} USD (max_cost_usd); "
            f"it has spent {run.cost_usd:.6f} USD.",
        )
    if agent.daily_budget_usd:
        used = spent(team_id=run.team_id, agent_id=run.agent_id)
        if used + extra > agent.daily_budget_usd:
            return LimitStop(
                "agent_daily_budget",
                f"Stopped: agent {agent.name} has used {used:.4f} of its daily budget of "
                f"{agent.daily_budget_usd} USD. A team owner can raise it on the agent's page.",
            )
    if team.monthly_budget:
        used = spent(team_id=run.team_id, agent_id=None)
        if used + extra > team.monthly_budget:
            return LimitStop(
                "team_monthly_budget",
                f"Stopped: team {team.slug} has used {used:.4f} of its monthly budget of "
                f"{team.monthly_budget} USD. A team owner can raise it in the team's settings.",
            )
    return None


def loop_breaker(*, previous_calls: list[tuple[str, str]], name: str, arguments: dict) -> LimitStop | None:
    """Return a stop when this call repeats the same tool and arguments too many times."""
    repeats = settings.FLEETDECK_LOOP_BREAKER_REPEATS
    key = (name, json.dumps(arguments, sort_keys=True, default=str))
    if previous_calls.count(key) >= repeats:
        return LimitStop(
            "loop_breaker",
            f"Stopped by the loop breaker: the run called {name} with the same arguments {repeats + 1} times "
            f"(FLEETDECK_LOOP_BREAKER_REPEATS is {repeats}).",
        )
    return None


def _redis():
    from django.core.cache import cache

    client = getattr(cache, "_cache", None)
    return client.get_client(write=True) if client is not None and hasattr(client, "get_client") else None


def rate_limit_hit(*, key: str, calls: int, per_seconds: int) -> bool:
    """Count one call in the current window; return True when it is over the limit."""
    window = int(time.time()) // per_seconds
    if settings.REDIS_URL:
        client = _redis()
        if client is not None:
            # Named after the database too: installs (and test databases) sharing a Redis never share counters.
            redis_key = f"fleetdeck:{settings.DATABASES['default']['NAME']}:rate:{key}:{window}"
            pipe = client.pipeline()
            pipe.incr(redis_key)
            pipe.expire(redis_key, per_seconds + 1)
            count, _ = pipe.execute()
            return int(count) > calls
    with transaction.atomic():
        row, _ = RateWindow.objects.select_for_update().get_or_create(key=key, defaults={"window_start": window})
        if row.window_start != window:
            row.window_start, row.count = window, 0
        row.count += 1
        row.save(update_fields=["window_start", "count"])
        return row.count > calls
