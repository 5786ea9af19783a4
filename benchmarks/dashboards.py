"""Measure the dashboards on 10 million spans: fleet and team costs p95, and a 1,000-span trace view.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/dashboards.py
     [--spans 10000000] [--days 30] [--workers 2] [--requests 30] [--fresh] [--drop]
It uses a `bench_fleetdeck_dashboards` database next to DATABASE_URL's and keeps it, so a rerun
finds the spans already there and only measures (--fresh starts over, --drop removes it at the end).
PostgreSQL only: the figures are for production.

Seeding: `apps.observability.seed.seed_spans` (span_record + spans_write: the one write path,
pricing, redaction and rollup increments included) in batches of 5,000 spans, from --workers
processes each filling its own slice of the period (so their rollup rows never collide). The
team, its members and its 12 agents (4 external) are written directly, bypassing the services:
they are the fixture, not what is measured. One trace of 1,000 spans is added for the trace view.

Requests go through django.test.Client (the whole middleware and template stack, no network),
signed in as a viewer of the team, after 3 warm-up requests each. Targets: fleet and team-costs
dashboards p95 < 300 ms; the 1,000-span trace view p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "bench_fleetdeck_dashboards"
TEAM = "bench-dash"
AGENTS = 12
EXTERNAL = 4
TRACE_SPANS = 1000
DASHBOARD_TARGET_MS = 300
TRACE_TARGET_MS = 100


def _database(db_url: str, *, fresh: bool) -> None:
    import psycopg

    with psycopg.connect(db_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone()
        if exists and fresh:
            conn.execute(f"DROP DATABASE {BENCH_DB} WITH (FORCE)")
            exists = None
        if not exists:
            conn.execute(f"CREATE DATABASE {BENCH_DB}")


def _drop(db_url: str) -> None:
    import psycopg

    with psycopg.connect(db_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def _fixture():
    """Return the team, its viewer and its agents (created once)."""
    from apps.accounts.models import Membership, Team, User
    from apps.agents.models import Agent
    from apps.catalog.services import catalog_seed_defaults

    catalog_seed_defaults()
    team, _ = Team.objects.get_or_create(slug=TEAM, defaults={"name": "Bench dashboards", "monthly_budget": 50000})
    viewer, created = User.objects.get_or_create(username="bench-dash-viewer")
    if created:
        viewer.set_password("bench-dash-viewer-password")
        viewer.save()
    Membership.objects.get_or_create(user=viewer, team=team, defaults={"role": "viewer"})
    for k in range(AGENTS):
        Agent.objects.get_or_create(
            team=team, name=f"agent-{k:02d}", defaults={"external": k >= AGENTS - EXTERNAL, "owner": None}
        )
    return team, viewer, list(Agent.objects.filter(team=team).order_by("pk"))


def _seed_worker(k: int, workers: int, count: int, days: float, seed: int, queue) -> None:
    from django.db import connections
    from django.utils import timezone

    from apps.accounts.models import Team
    from apps.observability.seed import seed_spans

    connections.close_all()
    team = Team.objects.get(slug=TEAM)
    slice_days = days / workers
    now = timezone.now() - timedelta(days=k * slice_days)

    def progress(stored: int, seconds: float) -> None:
        queue.put((k, stored, seconds))

    seed_spans(team=team, count=count, days=slice_days, now=now, seed=seed, progress=progress)
    queue.put((k, None, None))


def seed(args, team) -> dict | None:
    """Seed the missing spans with worker processes; return the seed rate, or None when none were missing."""
    from django.db import connections

    from apps.observability.models import Span

    have = Span.objects.filter(team=team).count()
    missing = args.spans - have
    print(f"Spans already stored for {TEAM}: {have:,}; target {args.spans:,}.")
    if missing <= args.spans * 0.001:
        return None
    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    per = missing // args.workers + 1
    started = time.perf_counter()
    procs = [
        ctx.Process(target=_seed_worker, args=(k, args.workers, per, args.days, 1000 + have + k, queue))
        for k in range(args.workers)
    ]
    for p in procs:
        p.start()
    done, stored, last_print = 0, dict.fromkeys(range(args.workers), 0), 0.0
    while done < args.workers:
        k, count, _ = queue.get()
        if count is None:
            done += 1
            continue
        stored[k] = count
        now = time.perf_counter()
        if now - last_print > 30:
            last_print = now
            total = sum(stored.values())
            print(f"  seeded {total:,} spans in {now - started:,.0f} s ({total / (now - started):,.0f} spans/s)")
    for p in procs:
        p.join()
        if p.exitcode:
            sys.exit(f"A seeding worker failed (exit code {p.exitcode}).")
    seconds = time.perf_counter() - started
    total = sum(stored.values())
    return {"spans": total, "seconds": seconds, "rate": total / seconds}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(client, url: str, requests: int) -> dict | None:
    """Time requests to url; return p50/p95/max in ms, or None when the page is not there (404)."""
    for _ in range(3):
        response = client.get(url)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            sys.exit(f"{url} answered {response.status_code}: {response.content[:300]!r}")
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return {"p50": statistics.median(times), "p95": _pct(times, 0.95), "max": max(times)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--days", type=float, default=30, help="The period the spans are spread over.")
    parser.add_argument("--workers", type=int, default=2, help="Seeding processes.")
    parser.add_argument("--requests", type=int, default=30, help="Measured requests per page.")
    parser.add_argument("--fresh", action="store_true", help="Drop the benchmark database and seed again.")
    parser.add_argument("--drop", action="store_true", help="Drop the benchmark database at the end.")
    args = parser.parse_args()

    db_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not db_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/postgres.")
    _database(db_url, fresh=args.fresh)
    os.environ["DATABASE_URL"] = db_url.rsplit("/", 1)[0] + "/" + BENCH_DB
    os.environ.setdefault("FLEETDECK_VAR_DIR", tempfile.mkdtemp(prefix="fleetdeck-bench-"))
    os.environ["DEBUG"] = "false"  # as in production: no query log kept per request
    os.environ["DJANGO_SETTINGS_MODULE"] = "platform_site.settings"

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from apps.observability.models import SpanLatency, SpanRollup
    from apps.observability.seed import seed_trace

    try:
        call_command("migrate", verbosity=0)
        team, viewer, agents = _fixture()
        rate = seed(args, team)
        trace_id = seed_trace(team=team, agent=agents[0], spans=TRACE_SPANS)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE observability_span, observability_spanrollup, observability_spanlatency")
            cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('observability_span'))")
            size = cursor.fetchone()[0]
        from apps.observability.models import Span

        spans = Span.objects.filter(team=team).count()
        print(
            f"Store: {spans:,} spans ({size}), {SpanRollup.objects.filter(team=team).count():,} rollup rows, "
            f"{SpanLatency.objects.filter(team=team).count():,} latency rows."
        )
        if rate:
            print(
                f"Seeding: {rate['spans']:,} spans in {rate['seconds']:,.0f} s = {rate['rate']:,.0f} spans/s "
                f"({args.workers} processes, through store.spans_write)."
            )
        client = Client()
        client.force_login(viewer)
        pages = [
            ("fleet dashboard (7d)", "/observability/", DASHBOARD_TARGET_MS),
            ("fleet dashboard (30d)", "/observability/?range=30d", DASHBOARD_TARGET_MS),
            ("team costs (this month)", "/observability/costs/", DASHBOARD_TARGET_MS),
            ("team costs (30d)", "/observability/costs/?range=30d", DASHBOARD_TARGET_MS),
            ("agent dashboard (30d)", f"/observability/agents/{agents[0].pk}/", None),
            (f"trace view ({TRACE_SPANS} spans)", f"/observability/traces/{trace_id}/", TRACE_TARGET_MS),
        ]
        print(f"\n{args.requests} requests each through django.test.Client, signed in as a team viewer:")
        print(f"{'page':34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target")
        for label, url, target in pages:
            result = measure(client, url, args.requests)
            if result is None:
                print(f"{label:34} {'pending: the page is not built yet (404)':>40}")
                continue
            verdict = (
                "" if target is None else ("met" if result["p95"] < target else "MISSED") + f" (p95 < {target} ms)"
            )
            print(f"{label:34} {result['p50']:8.1f} {result['p95']:8.1f} {result['max']:8.1f}  {verdict}")
    finally:
        from django.db import connections

        connections.close_all()
        if args.drop:
            _drop(db_url)


if __name__ == "__main__":
    main()
