"""Measure the runtime's overhead per agent step against calling the model server directly.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \
     .venv/bin/python benchmarks/runtime.py [--runs 300] [--tools 2]

It creates a `bench_fleetdeck_runtime` database next to DATABASE_URL's and drops it at the end.
A model server speaking the OpenAI chat-completions wire format answers instantly from another
process (so it does not share this process's interpreter lock); it records its own handling time
per request. Each run of the agent asks for `--tools` calls of a read-only HTTP tool (answered by a
second instant server in that process) and then answers: 2 x tools + 1 steps per run.

One worker: the runs are executed one after another in this process by the engine exactly as a
Celery worker's task body does (`apps.runtime.engine.run_execute`), without the broker's hop.
  overhead per step = (run wall time - time the servers spent handling its requests) / steps
  steps per second  = all steps / all wall time
The baseline, in the same run: the same server called directly with the `openai` SDK
(chat.completions.create), per call. Targets: overhead p50 <= 3 ms, p99 <= 15 ms, >= 300 steps/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "bench_fleetdeck_runtime"


def _database(db_url: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(db_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        if not drop_only:
            conn.execute(f"CREATE DATABASE {BENCH_DB}")


def _servers(tools: int, runs: int, conn) -> None:
    """Serve the model (scripted: tools x tool call, then an answer, per run) and the tool, until told to stop."""
    from tests.runtime.loopback import loopback_server
    from tests.runtime.model_servers import OpenAIWireServer, reply_text, reply_tool_calls

    script = []
    for _ in range(runs + 10):
        script += [reply_tool_calls(("lookup", {"q": f"item-{i}"})) for i in range(tools)] + [reply_text("done")]
    tool_times: list[float] = []

    def tool(request):
        started = time.perf_counter()
        request.reply(200, {"ok": True})
        tool_times.append(time.perf_counter() - started)

    model = OpenAIWireServer(script=script, record=False).start()
    baseline = OpenAIWireServer(instant="hello", record=False).start()
    with loopback_server(tool) as tool_server:
        conn.send((model.base_url, baseline.base_url, tool_server.url))
        while True:
            message = conn.recv()
            if message == "times":
                conn.send((list(model.handling_seconds), list(baseline.handling_seconds), list(tool_times)))
                model.handling_seconds.clear()
                baseline.handling_seconds.clear()
                tool_times.clear()
            elif message == "stop":
                break
    model.stop()
    baseline.stop()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--tools", type=int, default=2, help="Tool calls per run (each adds a model step too).")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    db_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not db_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/postgres.")
    if not os.environ.get("REDIS_URL"):
        sys.exit("Set REDIS_URL, e.g. redis://127.0.0.1:6379/0: production runs use Redis.")
    _database(db_url)
    os.environ["DATABASE_URL"] = db_url.rsplit("/", 1)[0] + "/" + BENCH_DB
    os.environ.setdefault("FLEETDECK_VAR_DIR", tempfile.mkdtemp(prefix="fleetdeck-bench-"))
    os.environ["DEBUG"] = "false"
    os.environ["FLEETDECK_ALLOWED_INTERNAL_HOSTS"] = "127.0.0.1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "platform_site.settings"

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(target=_servers, args=(args.tools, args.runs + 20, child))
    server.start()
    model_url, baseline_url, tool_url = parent.recv()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    try:
        call_command("migrate", verbosity=0)
        result = measure(args, model_url=model_url, baseline_url=baseline_url, tool_url=tool_url, pipe=parent)
        report(args, **result)
    finally:
        parent.send("stop")
        server.join(timeout=10)
        connections.close_all()
        if not args.keep:
            _database(db_url, drop_only=True)


def measure(args, *, model_url: str, baseline_url: str, tool_url: str, pipe) -> dict:
    import openai

    import apps.runtime.engine as _engine
    from apps.accounts.models import Membership, Team, TeamRole, User
    from apps.agents.models import ChannelName
    from apps.agents.services import agent_create, agent_promote, agent_publish
    from apps.catalog.models import Model, Provider
    from apps.catalog.services import catalog_seed_defaults
    from apps.runtime.models import Run, RunStatus
    from apps.runtime.services import run_start
    from apps.tools.services import tool_create, tool_publish

    catalog_seed_defaults()
    team = Team.objects.create(slug="bench", name="Bench")
    owner = User.objects.create(username="owner")
    Membership.objects.create(user=owner, team=team, role=TeamRole.OWNER)
    provider = Provider.objects.create(
        name="loopback", display_name="Loopback", kind="openai_compatible", base_url=model_url, max_retries=0
    )
    Model.objects.create(provider=provider, name="instant", input_price_per_mtok=1, output_price_per_mtok=2)
    tool = tool_create(
        actor=owner,
        team=team,
        name="lookup",
        spec={
            "description": "Look an item up.",
            "kind": "http",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            "config": {"method": "GET", "url": f"{tool_url}/items/{{q}}"},
        },
    )
    tool_publish(actor=owner, tool=tool, version="1.0.0")
    agent = agent_create(
        actor=owner,
        team=team,
        name="bench",
        draft_spec={
            "model": "loopback/instant",
            "prompt": {"inline": "Look things up."},
            "tools": ["lookup"],
            "limits": {"max_steps": 50, "max_tokens": 1_000_000, "max_cost_usd": 100},
        },
    )
    version = agent_publish(actor=owner, agent=agent, version="1.0.0")
    agent_promote(actor=owner, agent=agent, version=version, channel=ChannelName.PRODUCTION, reason="bench")

    # Warm up (imports, SDK client, connections), then measure.
    for _ in range(5):
        _engine.run_execute(run_id=run_start(actor=owner, agent=agent, input={}).pk, worker="bench:1")
    pipe.send("times")
    pipe.recv()
    runs = [run_start(actor=owner, agent=agent, input={"n": i}) for i in range(args.runs)]
    per_step, walls = [], []
    cpu_before = time.process_time()
    started_all = time.perf_counter()
    for run in runs:
        started = time.perf_counter()
        status = _engine.run_execute(run_id=run.pk, worker="bench:1")
        walls.append(time.perf_counter() - started)
        assert status == RunStatus.SUCCEEDED, Run.objects.get(pk=run.pk).error
    elapsed = time.perf_counter() - started_all
    cpu = time.process_time() - cpu_before
    pipe.send("times")
    model_times, _, tool_times = pipe.recv()
    steps_per_run = 2 * args.tools + 1
    # The servers answered the runs in order: model_calls_per_run model requests and tools tool requests each.
    calls = args.tools + 1
    for i, wall in enumerate(walls):
        server_time = sum(model_times[i * calls : (i + 1) * calls]) + sum(
            tool_times[i * args.tools : (i + 1) * args.tools]
        )
        per_step.append((wall - server_time) / steps_per_run)
    steps = Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("step_count", flat=True)
    assert all(s == steps_per_run for s in steps), set(steps)

    client = openai.OpenAI(base_url=baseline_url, api_key="unused", max_retries=0)
    messages = [{"role": "system", "content": "Look things up."}, {"role": "user", "content": "{}"}]
    for _ in range(20):
        client.chat.completions.create(model="instant", messages=messages)
    pipe.send("times")
    pipe.recv()
    direct = []
    n = args.runs * steps_per_run
    started_all = time.perf_counter()
    for _ in range(n):
        started = time.perf_counter()
        client.chat.completions.create(model="instant", messages=messages)
        direct.append(time.perf_counter() - started)
    direct_elapsed = time.perf_counter() - started_all
    pipe.send("times")
    _, baseline_times, _ = pipe.recv()
    return {
        "per_step": per_step,
        "walls": walls,
        "elapsed": elapsed,
        "steps": args.runs * steps_per_run,
        "direct": direct,
        "direct_elapsed": direct_elapsed,
        "direct_server": baseline_times,
        "steps_per_run": steps_per_run,
        "cpu": cpu,
    }


def report(args, *, per_step, walls, elapsed, steps, direct, direct_elapsed, direct_server, steps_per_run, cpu) -> None:
    ms = 1000
    direct_overhead = [d - s for d, s in zip(direct, direct_server, strict=False)]
    print(
        f"PostgreSQL + Redis, {os.cpu_count()} CPUs, one worker; {args.runs} runs x {steps_per_run} steps "
        f"({args.tools + 1} model calls, {args.tools} HTTP tool calls each)"
    )
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print(
        f"platform overhead per step: p50 {statistics.median(per_step) * ms:.2f} ms, "
        f"p99 {_pct(per_step, 0.99) * ms:.2f} ms, mean {statistics.fmean(per_step) * ms:.2f} ms "
        f"(target p50 <= 3 ms, p99 <= 15 ms)"
    )
    print(
        f"CPU time of the worker process per step: {cpu / steps * ms:.2f} ms (the rest is waiting, mostly for PostgreSQL)"
    )
    print(f"run wall time: p50 {statistics.median(walls) * ms:.1f} ms, p99 {_pct(walls, 0.99) * ms:.1f} ms")
    print(f"steps per second (one worker): {steps / elapsed:.0f} (target >= 300)")
    print(
        f"direct openai SDK call: p50 {statistics.median(direct) * ms:.2f} ms "
        f"(client side {statistics.median(direct_overhead) * ms:.2f} ms), {len(direct) / direct_elapsed:.0f} calls/s"
    )
    print(f"ratio, runtime time per step / direct call: {(elapsed / steps) / (direct_elapsed / len(direct)):.2f}x")


if __name__ == "__main__":
    main()
