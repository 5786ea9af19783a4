"""Generate realistic traces in bulk, through the one span-writing path (for demos and the benchmark).

Each trace is a run: an `invoke_agent` root span, then model calls (`chat`) and tool calls
(`execute_tool`) under it, with some failures (a failed tool call, a failed run with an error
code). Agents keep to their own model and a few tools; external agents' traces are stored as
OTLP-ingested spans, internal agents' as the runtime's. Every span is built with
`store.span_record` (so it is priced and redacted like any other) and stored with
`store.spans_write` in big batches, which keeps the hourly rollups current as it goes.

Tools carry their price per call here (`tool_cost_usd`), so the seeder does not look each one up.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from apps.core.exceptions import ServiceError

from . import store

MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("anthropic", "claude-3-5-sonnet"),
    ("simulated", "sim-small"),
    ("simulated", "sim-large"),
]
TOOLS = {
    "kb.search": Decimal("0.0005"),
    "crm.lookup": Decimal("0.002"),
    "orders.get": Decimal("0"),
    "email.send": Decimal("0.001"),
    "web.fetch": Decimal("0.0002"),
    "tickets.update": Decimal("0"),
    "payments.refund": Decimal("0.01"),
    "calendar.read": Decimal("0"),
}
ERROR_CODES = ["provider_error", "max_steps", "tool_failed", "timed_out", "max_cost"]
RUN_FAILURE_RATE = 0.05
TOOL_FAILURE_RATE = 0.03


def _hex(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits) or 1:0{bits // 4}x}"


class _Agent:
    """What the seeder needs of an agent: id, name, source, its model and its tools."""

    def __init__(self, agent, index: int, rng: random.Random):
        self.id = agent.pk
        self.name = agent.name
        self.source = "otlp" if agent.external else "runtime"
        self.provider, self.model = MODELS[index % len(MODELS)]
        self.tools = rng.sample(sorted(TOOLS), k=2 + index % 3)
        self.version = f"1.{index % 4}.0"
        # Some agents are busier and slower than others.
        self.weight = 1 + index % 5
        self.latency_ms = 300 + 150 * (index % 7)


def _trace(team_id: int, agent: _Agent, start: datetime, rng: random.Random, *, spans: int | None = None) -> list:
    """Return the span records of one run of the agent starting at `start`."""
    trace_id = _hex(rng, 128)
    root = _hex(rng, 64)
    base = {
        "gen_ai.agent.name": agent.name,
        "gen_ai.agent.id": str(agent.id),
        "fleetdeck.agent.version": agent.version,
    }
    start_ns = int(start.timestamp() * 1e9)
    cursor = start_ns + 2_000_000
    children = []
    n = spans - 1 if spans else rng.choice((1, 2, 3, 3, 4, 5, 6, 7))
    failed = rng.random() < RUN_FAILURE_RATE
    for i in range(n):
        is_model = i % 2 == 0 or not agent.tools
        if is_model:
            duration = int(rng.lognormvariate(0, 0.5) * agent.latency_ms * 1e6)
            tokens_in = rng.randint(200, 3000)
            tokens_out = rng.randint(20, 600)
            attributes = {
                **base,
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": agent.provider,
                "gen_ai.request.model": agent.model,
                "gen_ai.usage.input_tokens": tokens_in,
                "gen_ai.usage.output_tokens": tokens_out,
            }
            error = failed and i == n - 1
            record = store.span_record(
                team_id=team_id,
                source=agent.source,
                trace_id=trace_id,
                span_id=_hex(rng, 64),
                parent_span_id=root,
                name=f"chat {agent.model}",
                kind="client",
                start_ns=cursor,
                end_ns=cursor + duration,
                status="error" if error else "ok",
                status_message="provider answered 500" if error else "",
                attributes=attributes,
                agent_id=agent.id,
                agent_name=agent.name,
                agent_version=agent.version,
            )
        else:
            tool = agent.tools[(i // 2) % len(agent.tools)]
            duration = int(rng.lognormvariate(0, 0.8) * 40 * 1e6)
            error = rng.random() < TOOL_FAILURE_RATE
            record = store.span_record(
                team_id=team_id,
                source=agent.source,
                trace_id=trace_id,
                span_id=_hex(rng, 64),
                parent_span_id=root,
                name=f"execute_tool {tool}",
                start_ns=cursor,
                end_ns=cursor + duration,
                status="error" if error else "ok",
                status_message="tool answered 503" if error else "",
                attributes={**base, "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool},
                agent_id=agent.id,
                agent_name=agent.name,
                agent_version=agent.version,
                tool_cost_usd=TOOLS[tool],
            )
        children.append(record)
        cursor += duration + 1_000_000
    code = rng.choice(ERROR_CODES) if failed else None
    run = store.span_record(
        team_id=team_id,
        source=agent.source,
        trace_id=trace_id,
        span_id=root,
        name=f"invoke_agent {agent.name}",
        start_ns=start_ns,
        end_ns=cursor + 1_000_000,
        status="error" if failed else "ok",
        status_message=f"run ended: {code}" if failed else "",
        attributes={
            **base,
            "gen_ai.operation.name": "invoke_agent",
            "fleetdeck.run.status": "failed" if failed else "succeeded",
            "fleetdeck.run.error_code": code,
            "fleetdeck.run.steps": n,
        },
        agent_id=agent.id,
        agent_name=agent.name,
        agent_version=agent.version,
    )
    return [run, *children]


def _agents(team, agents, rng: random.Random) -> list[_Agent]:
    if agents is None:
        from apps.agents.models import Agent, AgentStatus

        agents = list(Agent.objects.filter(team=team).exclude(status=AgentStatus.RETIRED).order_by("pk"))
    if not agents:
        raise ServiceError(
            f"Team {team.slug} has no agents to seed spans for: create some first (e.g. manage.py seed_demo).",
            field="team",
        )
    return [_Agent(agent, i, rng) for i, agent in enumerate(agents)]


def seed_spans(
    *,
    team,
    count: int,
    days: float,
    agents=None,
    batch: int = 5000,
    now: datetime | None = None,
    seed: int = 5,
    progress: Callable[[int, float], None] | None = None,
) -> int:
    """Store about `count` spans of realistic runs of the team's agents over the last `days`; return how many.

    Runs start at random over the period, in time order batch by batch; each trace is whole
    (never split across batches). `progress(stored, seconds)` is called after each batch.
    """
    if count <= 0 or days <= 0:
        raise ServiceError("Give a positive number of spans and of days.", field="count")
    rng = random.Random(seed)
    pool = _agents(team, agents, rng)
    weighted = [a for a in pool for _ in range(a.weight)]
    now = now or timezone.now()
    # Runs arrive in time order, one batch per slice of the period, as live traffic would: each
    # batch then touches the rollup rows of a few hours only, not one row per span.
    slices = -(-count // batch)
    width = timedelta(days=days) / slices
    stored, started = 0, time.perf_counter()
    for i in range(slices):
        begin = now - timedelta(days=days) + width * i
        want = min(batch, count - stored)
        pending: list = []
        while len(pending) < want:
            at = begin + width * rng.random()
            pending.extend(_trace(team.pk, rng.choice(weighted), at, rng))
        stored += len(store.spans_write(pending))
        if progress:
            progress(stored, time.perf_counter() - started)
    return stored


def seed_trace(*, team, agent, spans: int = 1000, at: datetime | None = None, seed: int = 11) -> str:
    """Store one run of the agent with `spans` spans in its trace; return the trace id."""
    rng = random.Random(seed)
    (one,) = _agents(team, [agent], rng)
    records = _trace(team.pk, one, at or timezone.now() - timedelta(hours=1), rng, spans=spans)
    store.spans_write(records)
    return records[0].trace_id
