"""Measure the audit chain and API-token authentication: appends/s, verification speed, API latency.

Run: .venv/bin/python benchmarks/audit_and_auth.py [--events 5000]
It uses a throwaway SQLite database under a temp folder unless DATABASE_URL is set (then it
creates and drops a `bench_` database next to it). Figures are printed; the README quotes them.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="fleetdeck-bench-")
    os.environ.setdefault("FLEETDECK_VAR_DIR", tmp)
    db_url = os.environ.get("DATABASE_URL")
    if db_url and db_url.startswith("postgres"):
        os.environ["DATABASE_URL"] = db_url.rsplit("/", 1)[0] + "/bench_fleetdeck"
        import psycopg

        with psycopg.connect(db_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS bench_fleetdeck")
            conn.execute("CREATE DATABASE bench_fleetdeck")
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "platform_site.settings"

    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    from apps.accounts.models import Membership, Team, User
    from apps.accounts.services import token_create
    from apps.audit.services import audit_record
    from apps.audit.verify import audit_chain_verify

    engine = "PostgreSQL" if "postgres" in os.environ["DATABASE_URL"] else "SQLite"
    user = User.objects.create(username="bench")
    team = Team.objects.create(slug="bench", name="Bench")
    Membership.objects.create(user=user, team=team, role="owner")

    start = time.perf_counter()
    for i in range(args.events):
        audit_record(actor=user, action="bench.event", team=team, after={"i": i, "note": "x" * 40})
    append_s = time.perf_counter() - start

    start = time.perf_counter()
    result = audit_chain_verify()
    verify_s = time.perf_counter() - start
    assert result.ok, result.message

    _token, secret = token_create(actor=user, team=team, name="bench", scopes=["read"])
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    client.get("/api/v1/teams/", **headers)
    latencies = []
    for _ in range(args.requests):
        t0 = time.perf_counter()
        response = client.get("/api/v1/teams/", **headers)
        latencies.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200
    latencies.sort()

    print(f"engine: {engine}")
    print(
        f"audit appends: {args.events} in {append_s:.2f} s = {args.events / append_s:.0f} events/s (one transaction each)"
    )
    print(f"audit_verify: {result.checked} events in {verify_s:.2f} s = {result.checked / verify_s:.0f} events/s")
    print(
        f"GET /api/v1/teams/ with a bearer token: p50 {statistics.median(latencies):.2f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95) - 1]:.2f} ms over {args.requests} requests (in-process, no network)"
    )


if __name__ == "__main__":
    main()
