"""Measure the fleet inventory and the agents API on a large fleet: latency and SQL queries per request.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/inventory.py
     [--agents 10000] [--teams 20] [--requests 100] [--keep]
It creates a `bench_fleetdeck_inventory` database next to DATABASE_URL's, fills it and drops it at
the end (--keep leaves it for EXPLAIN). PostgreSQL only: the figures are for production.

The fleet is written with bulk_create, bypassing the services (no permission checks, no audit
events, no spec validation): services write one audited row at a time, and 10,000 agents with
30,000 versions would take a long while. The rows have the shape the services leave (pinned tool
versions, content hashes, channels, promotion history), which is all the reads look at.

Requests go through django.test.Client (the whole middleware stack, no network), signed in as a
security auditor (sees every team) and as a member of one team. Target: p95 < 300 ms.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "bench_fleetdeck_inventory"
TOOLS_PER_TEAM = 8
TOOLS_PER_VERSION = 3
VERSIONS_PER_AGENT = 3
PERMISSIONS = ["crm.write", "payments.refund", "code_execution", "kb.read", "tickets.write", "web.read", "ledger.read"]
KINDS = ["http", "python", "agent_handoff", "mcp", "context"]


def _admin_url(db_url: str) -> str:
    return db_url.rsplit("/", 1)[0] + "/postgres"


def _database(db_url: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(_admin_url(db_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        if not drop_only:
            conn.execute(f"CREATE DATABASE {BENCH_DB}")


def _version_fields(version: str, spec: dict) -> dict:
    from apps.core.versioning import spec_hash

    major, minor, patch = (int(p) for p in version.split("."))
    return {
        "version": version,
        "major": major,
        "minor": minor,
        "patch": patch,
        "spec": spec,
        "content_hash": spec_hash(spec),
    }


def seed(*, agents: int, teams: int) -> dict:
    """Write the fleet with bulk_create (benchmark data only: no services, no audit)."""
    from apps.accounts.models import Membership, OrgRole, Team, TeamRole, User
    from apps.agents.models import Agent, AgentVersion, Channel, Promotion
    from apps.catalog.models import Model
    from apps.catalog.services import catalog_seed_defaults
    from apps.tools.models import Tool, ToolVersion

    catalog_seed_defaults()
    models = list(Model.objects.filter(provider__name="simulated").order_by("name"))
    team_rows = Team.objects.bulk_create(
        [Team(slug=f"team-{i:02d}", name=f"Team {i:02d}") for i in range(teams)], batch_size=1000
    )
    users = User.objects.bulk_create(
        [User(username=f"builder-{t.slug}") for t in team_rows]
        + [User(username="auditor", org_role=OrgRole.SECURITY_AUDITOR), User(username="member")]
    )
    builders, auditor, member = users[:teams], users[-2], users[-1]
    Membership.objects.bulk_create(
        [Membership(user=b, team=t, role=TeamRole.BUILDER) for b, t in zip(builders, team_rows, strict=True)]
        + [Membership(user=member, team=team_rows[0], role=TeamRole.VIEWER)]
    )

    tools = Tool.objects.bulk_create(
        [
            Tool(team=t, name=f"tool-{j}", description=f"Tool {j}", owner=builders[i])
            for i, t in enumerate(team_rows)
            for j in range(TOOLS_PER_TEAM)
        ]
    )
    tool_versions = []
    for n, tool in enumerate(tools):
        kind = KINDS[n % len(KINDS)]
        permissions = sorted({PERMISSIONS[n % len(PERMISSIONS)], PERMISSIONS[(n * 3 + 1) % len(PERMISSIONS)]})
        spec = {"description": tool.description, "kind": kind, "permissions_required": permissions, "secrets": []}
        tool_versions.append(
            ToolVersion(
                tool=tool,
                kind=kind,
                side_effect="write" if n % 3 == 0 else "read",
                permissions_required=permissions,
                **_version_fields("1.0.0", spec),
            )
        )
    tool_versions = ToolVersion.objects.bulk_create(tool_versions, batch_size=2000)
    team_tools = {t.pk: tool_versions[i * TOOLS_PER_TEAM : (i + 1) * TOOLS_PER_TEAM] for i, t in enumerate(team_rows)}

    per_team = agents // teams
    agent_rows = Agent.objects.bulk_create(
        [
            Agent(
                team=t,
                name=f"agent-{k:05d}",
                owner=builders[i],
                description=f"Benchmark agent {k} of {t.slug}",
                tags=["bench", f"group-{k % 10}"],
                risk_tier=["low", "medium", "high", "critical"][k % 4],
                status="retired" if k % 50 == 49 else "active",
            )
            for i, t in enumerate(team_rows)
            for k in range(per_team)
        ],
        batch_size=2000,
    )
    versions, links = [], []
    for a, agent in enumerate(agent_rows):
        available = team_tools[agent.team_id]
        for v in range(VERSIONS_PER_AGENT):
            chosen = [available[(a + v + j) % len(available)] for j in range(TOOLS_PER_VERSION)]
            spec = {
                "model": models[v % len(models)].ref,
                "prompt": {"inline": f"You are {agent.name}, version {v}.", "variables": {}},
                "tools": [f"{tv.tool.name}@{tv.version}" for tv in chosen],
                "handoffs": [],
                "limits": {"max_steps": 10 + v},
            }
            versions.append(
                AgentVersion(
                    agent=agent, model=models[v % len(models)], author=agent.owner, **_version_fields(f"1.{v}.0", spec)
                )
            )
            links.append(chosen)
    versions = AgentVersion.objects.bulk_create(versions, batch_size=2000)
    through = AgentVersion.tool_versions.through
    through.objects.bulk_create(
        [
            through(agentversion_id=row.pk, toolversion_id=tv.pk)
            for row, chosen in zip(versions, links, strict=True)
            for tv in chosen
        ],
        batch_size=5000,
    )

    # Channels as promotions leave them: production on 1.1.0 (via 1.0.0), staging on 1.2.0.
    channels, promotions = [], []
    for a, agent in enumerate(agent_rows):
        v0, v1, v2 = versions[a * VERSIONS_PER_AGENT : (a + 1) * VERSIONS_PER_AGENT]
        channels += [
            Channel(agent=agent, name="production", version=v1, updated_by=agent.owner),
            Channel(agent=agent, name="staging", version=v2, updated_by=agent.owner),
        ]
        promotions += [
            Promotion(
                agent=agent, channel="production", from_version=None, to_version=v0, actor=agent.owner, reason="first"
            ),
            Promotion(
                agent=agent, channel="production", from_version=v0, to_version=v1, actor=agent.owner, reason="better"
            ),
            Promotion(
                agent=agent, channel="staging", from_version=None, to_version=v2, actor=agent.owner, reason="try"
            ),
        ]
    Channel.objects.bulk_create(channels, batch_size=5000)
    Promotion.objects.bulk_create(promotions, batch_size=5000)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"auditor": auditor, "member": member, "agents": len(agent_rows), "versions": len(versions)}


def measure(client, url: str, requests: int) -> dict:
    """Return p50/p95 in ms over `requests` GETs of url, and the SQL queries one request makes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):  # warm caches and the connection
        assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    # Read the log now: the next request's request_started signal clears it.
    captured = list(queries.captured_queries)
    slowest = max(captured, key=lambda q: float(q["time"]))
    latencies, cpu = [], []
    for _ in range(requests):
        t0, c0 = time.perf_counter(), time.process_time()
        response = client.get(url)
        latencies.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        assert response.status_code == 200
    latencies.sort()
    return {
        "p50": statistics.median(latencies),
        "p95": latencies[max(0, round(len(latencies) * 0.95) - 1)],
        "cpu_p50": statistics.median(cpu),
        "queries": len(captured),
        "slowest_ms": float(slowest["time"]) * 1000,
        "slowest_sql": slowest["sql"][:300],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="Keep the bench database afterwards.")
    parser.add_argument("--verbose", action="store_true", help="Print the slowest SQL of each request.")
    args = parser.parse_args()

    db_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not db_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/postgres.")
    _database(db_url)
    os.environ["DATABASE_URL"] = db_url.rsplit("/", 1)[0] + "/" + BENCH_DB
    os.environ.setdefault("FLEETDECK_VAR_DIR", tempfile.mkdtemp(prefix="fleetdeck-bench-"))
    os.environ["DEBUG"] = "false"  # as in production: no query log kept per request
    os.environ["DJANGO_SETTINGS_MODULE"] = "platform_site.settings"
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    try:
        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        fleet = seed(agents=args.agents, teams=args.teams)
        print(
            f"PostgreSQL, {os.cpu_count()} CPUs: seeded {fleet['agents']} agents, {fleet['versions']} versions, "
            f"{args.teams} teams in {time.perf_counter() - t0:.1f} s (bulk_create, no services)"
        )
        gc.collect()  # a web worker does not carry the seed's garbage
        # Other work on a shared machine inflates the wall-clock percentiles most: compare the CPU column too.
        print(f"load average before measuring: {os.getloadavg()[0]:.2f}")
        cases = [
            ("/agents/inventory/", "inventory page"),
            ("/api/v1/agents/", "agents list API"),
            ("/api/v1/inventory/", "inventory API"),
            ("/agents/inventory/?tool=tool-3", "inventory page, ?tool="),
            ("/agents/inventory/?permission=crm.write", "inventory page, ?permission="),
        ]
        worst = 0.0
        for who in ("auditor", "member"):
            client = Client()
            client.force_login(fleet[who])
            expected = fleet["agents"] if who == "auditor" else fleet["agents"] // args.teams
            seen = client.get("/api/v1/agents/").json()["count"]
            assert seen == expected, f"{who} sees {seen} agents, expected {expected}"
            for url, label in cases:
                result = measure(client, url, args.requests)
                worst = max(worst, result["p95"]) if "?" not in url else worst
                print(
                    f"  {who:<8} {label:<30} p50 {result['p50']:7.1f} ms  p95 {result['p95']:7.1f} ms  "
                    f"(Python CPU p50 {result['cpu_p50']:5.1f} ms)  {result['queries']:>2} queries "
                    f"(slowest {result['slowest_ms']:.1f} ms)"
                )
                if args.verbose:
                    print(f"           slowest: {result['slowest_sql']}")
        verdict = "met" if worst < 300 else "MISSED"
        print(f"Target p95 < 300 ms on the unfiltered pages: {verdict} (worst p95 {worst:.1f} ms)")
    finally:
        connections.close_all()
        if not args.keep:
            _database(db_url, drop_only=True)


if __name__ == "__main__":
    main()
