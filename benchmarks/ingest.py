"""Measure OTLP/HTTP ingest: spans per second sustained and accept latency per batch, into PostgreSQL.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/ingest.py
     [--seconds 20] [--connections 4] [--workers 4] [--batch 100] [--rate 5000] [--keep]

It creates a `fleetdeck_bench_ingest` database next to DATABASE_URL's, migrates it, seeds the
catalog, a team, a builder and an API token with the ingest scope, and drops it at the end.

The app runs under gunicorn on loopback as in production (DEBUG off, the whole middleware stack,
sync workers). Default: 4 workers on 2 cores, two per core. A batch costs a worker about 6 ms of
CPU (decode, map, price, redact, encode) but 12-15 ms of wall time: the rest is waiting for
PostgreSQL (insert, rollup upserts, commit), which runs on the same 2 cores. With one worker per
core a core idles during every wait; beyond two per core the workers only contend with
PostgreSQL for the same cores. Measured on this machine (shared, load average 4-5), 4
connections as fast as answered: 2 workers 11.6k spans/s, 3 workers 12.5k, 4 workers 14.4k,
6 workers 13.1k with a worse p99. `--workers` checks that choice on other hardware.

A SECOND process (the load generator) pre-encodes OTLP protobuf ExportTraceServiceRequests of
`--batch` GenAI-shaped spans (per agent run: invoke_agent, a chat call with token usage priced
from the catalog, an execute_tool call, a second chat call; every span id unique, so nothing is
skipped as a repeat) and POSTs them over `--connections` client connections, in two phases of
`--seconds` after a warm-up each:
  1. as fast as the server answers: the sustained spans/s (and the latency at saturation, which
     is mostly queueing: with every connection always waiting, latency = connections / rate);
  2. paced at `--rate` spans/s (the target, 5,000): the accept latency an exporter sees at that
     load, measured from when each batch was due, so a late send counts against the server too.
Accept latency = from sending a batch to receiving its 200, which comes after the durable write.
Afterwards the stored spans and their rollups are checked against what was acknowledged.
Targets: >= 5,000 spans/s sustained on 2 cores, p99 < 50 ms per batch.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "fleetdeck_bench_ingest"
SPANS_PER_RUN = 4
SERVICES = ["support-triage-ext", "invoice-extractor", "sales-researcher", "kyc-checker"]


def _admin_url(db_url: str) -> str:
    return db_url.rsplit("/", 1)[0] + "/postgres"


def _database(db_url: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(_admin_url(db_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        if not drop_only:
            conn.execute(f"CREATE DATABASE {BENCH_DB}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed() -> str:
    """Create the catalog, a team, its builder and an ingest token; return the token."""
    from apps.accounts.models import Membership, Team, TeamRole, User
    from apps.accounts.services import token_create
    from apps.catalog.services import catalog_seed_defaults

    catalog_seed_defaults()
    team = Team.objects.create(slug="bench", name="Bench")
    builder = User.objects.create(username="builder")
    Membership.objects.create(user=builder, team=team, role=TeamRole.BUILDER)
    _, secret = token_create(actor=builder, team=team, name="bench-exporter", scopes=["ingest"])
    return secret


# --- The load generator (second process) -------------------------------------------------------


def _batches(count: int, size: int, seed: int) -> list[bytes]:
    """Return `count` encoded exports of `size` spans each: agent runs, every id unique."""
    import random

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    rng = random.Random(seed)
    now = time.time_ns()

    def kv(key, value):
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=value))

    bodies = []
    for b in range(count):
        export = ExportTraceServiceRequest()
        rs = export.resource_spans.add()
        rs.resource.attributes.extend(
            [
                kv("service.name", SERVICES[b % len(SERVICES)]),
                kv("service.version", "1.4.2"),
                kv("telemetry.sdk.name", "opentelemetry"),
                kv("telemetry.sdk.language", "python"),
                kv("telemetry.sdk.version", "1.45.2"),
            ]
        )
        ss = rs.scope_spans.add()
        ss.scope.name = "opentelemetry.instrumentation.openai_v2"
        ss.scope.version = "2.1b0"
        for _ in range(size // SPANS_PER_RUN):
            trace_id = rng.randbytes(16)
            root, chat, tool, answer = (rng.randbytes(8) for _ in range(4))
            start = now - rng.randrange(0, 3_000_000_000_000)  # within the last 50 minutes
            tokens_in, tokens_out = rng.randrange(300, 4000), rng.randrange(20, 600)
            spec = [
                (root, b"", "invoke_agent triage", 2, 0, 2400, [kv("gen_ai.operation.name", "invoke_agent"),
                 kv("gen_ai.agent.name", "triage"), kv("gen_ai.conversation.id", f"conv-{b}")]),
                (chat, root, "chat gpt-4o-mini", 3, 30, 900, [kv("gen_ai.operation.name", "chat"),
                 kv("gen_ai.provider.name", "openai"), kv("gen_ai.request.model", "gpt-4o-mini"),
                 kv("gen_ai.response.model", "gpt-4o-mini-2024-07-18"), kv("gen_ai.usage.input_tokens", tokens_in),
                 kv("gen_ai.usage.output_tokens", tokens_out), kv("gen_ai.response.finish_reasons", "tool_calls"),
                 kv("server.address", "api.openai.com")]),
                (tool, root, "execute_tool lookup_ticket", 1, 920, 1300, [kv("gen_ai.operation.name", "execute_tool"),
                 kv("gen_ai.tool.name", "lookup_ticket"), kv("gen_ai.tool.call.id", f"call_{b}")]),
                (answer, root, "chat gpt-4o-mini", 3, 1310, 2380, [kv("gen_ai.operation.name", "chat"),
                 kv("gen_ai.provider.name", "openai"), kv("gen_ai.request.model", "gpt-4o-mini"),
                 kv("gen_ai.usage.input_tokens", tokens_in + 400), kv("gen_ai.usage.output_tokens", tokens_out),
                 kv("server.address", "api.openai.com")]),
            ]  # fmt: skip
            for span_id, parent, name, kind, begin_ms, end_ms, attributes in spec:
                span = ss.spans.add(
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=parent,
                    name=name,
                    kind=kind,
                    start_time_unix_nano=start + begin_ms * 1_000_000,
                    end_time_unix_nano=start + end_ms * 1_000_000,
                )
                span.attributes.extend(attributes)
                span.status.code = 1
        bodies.append(export.SerializeToString())
    return bodies


def _load(port: int, secret: str, args, conn) -> None:
    """Send pre-encoded batches over client connections, one phase at a time; report latencies."""
    need = int((args.seconds + args.warmup) * (250 + args.rate / args.batch))  # up to 25,000 spans/s, then paced
    bodies = _batches(min(need, args.max_batches), args.batch, seed=7)
    conn.send(("ready", len(bodies), sum(len(b) for b in bodies) / len(bodies)))
    headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {secret}"}
    cursor = [0]
    while True:
        phase = conn.recv()
        if phase == "stop":
            return
        connections, rate = phase
        conn.send(_phase(port, headers, bodies, cursor, args, connections, rate))


def _phase(port, headers, bodies, cursor, args, connections: int, rate: float):
    """Run one phase: as fast as the server answers (rate 0), or one batch every batch/rate seconds."""
    lock = threading.Lock()
    samples: list[tuple[float, float, int]] = []  # (due at, latency, status)
    errors: list[str] = []
    started = time.monotonic()
    deadline = started + args.warmup + args.seconds
    interval = args.batch / rate if rate else 0.0
    sent = [0]

    def worker():
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                i = cursor[0]
                cursor[0] += 1
                n = sent[0]
                sent[0] += 1
            due = started + n * interval if interval else time.monotonic()
            if due >= deadline or time.monotonic() >= deadline:
                break
            if i >= len(bodies):
                errors.append("ran out of pre-encoded batches: raise --max-batches")
                break
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            try:
                client.request("POST", "/v1/traces", body=bodies[i], headers=headers)
                response = client.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                client.close()
                client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            # Latency from when the batch was due, so a late send counts against the server too.
            samples.append((due, time.monotonic() - due, response.status))
            if response.status != 200 or payload:
                errors.append(f"HTTP {response.status}: {payload[:200]!r}")
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return started, samples, errors[:20], len(errors)


# --- Driver ------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _postgres_cpu() -> dict[int, float]:
    """Return CPU seconds per PostgreSQL backend serving the benchmark's database."""
    cpu = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if BENCH_DB in (entry / "cmdline").read_text():
                    cpu[int(entry.name)] = _cpu_seconds([int(entry.name)])
            except OSError:
                pass
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100, help="Spans per request (a multiple of 4).")
    parser.add_argument(
        "--rate", type=float, default=5000.0, help="Spans/s of the second, paced phase (0: no paced phase)."
    )
    parser.add_argument("--max-batches", type=int, default=10000, help="How many distinct batches to pre-encode.")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    args = parser.parse_args()

    db_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not db_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/postgres.")
    _database(db_url)
    bench_url = db_url.rsplit("/", 1)[0] + "/" + BENCH_DB
    env = {
        **os.environ,
        "DATABASE_URL": bench_url,
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "platform_site.settings",
        "FLEETDECK_VAR_DIR": os.environ.get("FLEETDECK_VAR_DIR") or tempfile.mkdtemp(prefix="fleetdeck-bench-"),
    }
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    gunicorn = None
    try:
        call_command("migrate", verbosity=0)
        secret = _seed()
        connections.close_all()

        port = _free_port()
        gunicorn = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "platform_site.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--worker-class",
                "sync",
                "--timeout",
                "60",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        _wait_for(port)
        parent, child = multiprocessing.Pipe()
        loader = multiprocessing.get_context("spawn").Process(target=_load, args=(port, secret, args, child))
        loader.start()
        _, batch_count, batch_bytes = parent.recv()
        workers = _children(gunicorn.pid)
        print(
            f"PostgreSQL, gunicorn {args.workers} sync workers, {os.cpu_count()} CPUs, load average before: "
            f"{os.getloadavg()[0]:.2f}; batches of {args.batch} GenAI spans (~{batch_bytes / 1024:.1f} KiB protobuf "
            f"each, {batch_count} distinct pre-encoded) from a second process"
        )
        all_samples = []
        phases = [(args.connections, 0.0, "as fast as it answers")]
        if args.rate:
            phases.append((args.connections, args.rate, f"paced at {args.rate:,.0f} spans/s"))
        for connections_, rate, title in phases:
            before = (_cpu_seconds(workers), _postgres_cpu(), time.monotonic())
            parent.send((connections_, rate))
            started, samples, errors, error_count = parent.recv()
            after = (_cpu_seconds(workers), _postgres_cpu(), time.monotonic())
            report(args, title, connections_, started, samples, errors, error_count, before, after)
            all_samples += samples
        parent.send("stop")
        loader.join()
        check(all_samples, args)
    finally:
        if gunicorn is not None:
            gunicorn.send_signal(signal.SIGTERM)
            gunicorn.wait(timeout=30)
        connections.close_all()
        if not args.keep:
            _database(db_url, drop_only=True)


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            client.request("GET", "/healthz")
            client.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit("gunicorn did not start within 30 s.")


def report(args, title, connections_, started, samples, errors, error_count, before, after) -> None:
    ms = 1000
    measured = [s for s in samples if s[0] >= started + args.warmup and s[2] == 200]
    window = max(s[0] + s[1] for s in measured) - (started + args.warmup) if measured else 1
    latencies = [s[1] for s in measured]
    spans = len(measured) * args.batch
    wall = after[2] - before[2]
    cpu_workers = after[0] - before[0]
    cpu_pg = sum(cpu - before[1].get(pid, 0.0) for pid, cpu in after[1].items())
    print(
        f"\n{title}, {connections_} connections: {len(measured)} batches in {window:.1f} s after a {args.warmup:.0f} s warm-up"
    )
    print(f"  spans/s sustained: {spans / window:,.0f} (target >= 5,000)")
    if latencies:
        print(
            f"  accept latency per batch: p50 {statistics.median(latencies) * ms:.1f} ms, "
            f"p99 {_pct(latencies, 0.99) * ms:.1f} ms, max {max(latencies) * ms:.1f} ms (target p99 < 50 ms)"
        )
    print(
        f"  CPU: gunicorn workers {cpu_workers / wall * 100:.0f}% of a core, PostgreSQL {cpu_pg / wall * 100:.0f}%; "
        f"per batch of {args.batch}: workers {cpu_workers / max(len(samples), 1) * ms:.1f} ms, "
        f"PostgreSQL {cpu_pg / max(len(samples), 1) * ms:.1f} ms; load average {os.getloadavg()[0]:.2f}"
    )
    if error_count:
        print(f"  ERRORS: {error_count}, e.g. {errors[:3]}")


def check(samples, args) -> None:
    """Check every acknowledged span was stored once and the rollups count them."""
    from django.db.models import Sum

    from apps.observability.models import Span, SpanRollup

    accepted = sum(1 for s in samples if s[2] == 200) * args.batch
    stored = Span.objects.count()
    counted = SpanRollup.objects.aggregate(n=Sum("span_count"))["n"] or 0
    ok = stored == accepted == counted
    print(
        f"\ncheck: {accepted} spans acknowledged, {stored} stored, {counted} counted in rollups: {'OK' if ok else 'MISMATCH'}"
    )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
