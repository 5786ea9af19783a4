"""Hourly rollups of the span store: bucket bounds, percentiles, and a recount from raw spans.

The store increments rollups as it writes spans (`store.spans_write`); this module knows the
latency buckets and can recount any period from the raw spans to check or rebuild them.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

# Upper bounds in ms of the latency buckets: 0.1 ms x 1.2^i up to about 10 hours. A value is
# reported as its bucket's geometric middle, so a percentile is off by at most 10%.
BOUNDS_MS: tuple[float, ...] = tuple(round(0.1 * 1.2**i, 4) for i in range(102))


def bucket_of(duration_ms: float) -> int:
    """Return the latency bucket of a duration."""
    return min(bisect.bisect_left(BOUNDS_MS, max(duration_ms, 0.0)), len(BOUNDS_MS) - 1)


def bucket_value(bucket: int) -> float:
    """Return the duration a bucket stands for (the geometric middle of its range)."""
    upper = BOUNDS_MS[bucket]
    return upper if bucket == 0 else (upper * BOUNDS_MS[bucket - 1]) ** 0.5


def percentile(counts: dict[int, int], q: float) -> float | None:
    """Return the q-th percentile (0-100) in ms of a histogram {bucket: count}, or None when empty."""
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = q / 100 * total
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen >= rank:
            return round(bucket_value(bucket), 3)
    return round(bucket_value(max(counts)), 3)


def hour_of(moment: datetime) -> datetime:
    """Return the start of the hour containing moment."""
    return moment.replace(minute=0, second=0, microsecond=0)


ROLLUP_KEY = ("team_id", "hour", "source", "agent_id", "operation", "model", "tool", "is_run")
LATENCY_KEY = ("team_id", "hour", "agent_id", "operation", "model", "tool", "is_run", "bucket")


def rollup_deltas(records) -> tuple[dict, dict]:
    """Return what a set of new spans adds: rollup key -> sums, latency key -> count."""
    sums: dict[tuple, dict] = {}
    latency: dict[tuple, int] = defaultdict(int)
    for r in records:
        hour = hour_of(r.start_time)
        agent = r.agent_id or 0
        key = (r.team_id, hour, r.source, agent, r.operation, r.model, r.tool, r.is_run)
        row = sums.get(key)
        if row is None:
            row = sums[key] = {
                "span_count": 0,
                "error_count": 0,
                "input_tokens": 0,
                "output_tokens": 0,
                "cached_tokens": 0,
                "cost_usd": Decimal(0),
                "duration_sum_ms": 0.0,
                "duration_max_ms": 0.0,
            }
        row["span_count"] += 1
        row["error_count"] += r.status == "error"
        row["input_tokens"] += r.input_tokens
        row["output_tokens"] += r.output_tokens
        row["cached_tokens"] += r.cached_tokens
        row["cost_usd"] += r.cost_usd
        row["duration_sum_ms"] += r.duration_ms
        row["duration_max_ms"] = max(row["duration_max_ms"], r.duration_ms)
        latency[(r.team_id, hour, agent, r.operation, r.model, r.tool, r.is_run, bucket_of(r.duration_ms))] += 1
    return sums, dict(latency)


def rollup_recount(*, team_id: int, start: datetime, end: datetime) -> tuple[dict, dict]:
    """Recount the rollups of [start, end) from the raw spans, in the shape `rollup_deltas` returns."""
    from .models import Span
    from .store import record_from_row

    rows = Span.objects.filter(team_id=team_id, start_time__gte=start, start_time__lt=end)
    return rollup_deltas(record_from_row(row) for row in rows.iterator(chunk_size=5000))


def rollup_rebuild(*, team_id: int, start: datetime, end: datetime) -> int:
    """Replace the rollups of whole hours [start, end) with a recount; return the rollup rows written."""
    from django.db import transaction

    from .models import SpanLatency, SpanRollup
    from .store import rollups_apply

    start, end = hour_of(start), hour_of(end)
    with transaction.atomic():
        SpanRollup.objects.filter(team_id=team_id, hour__gte=start, hour__lt=end).delete()
        SpanLatency.objects.filter(team_id=team_id, hour__gte=start, hour__lt=end).delete()
        sums, latency = rollup_recount(team_id=team_id, start=start, end=end)
        rollups_apply(sums, latency)
    return len(sums)
