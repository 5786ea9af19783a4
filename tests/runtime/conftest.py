"""Build agents and tools through the real services, run them through the real engine.

`rt` gives a team (payments) with the default catalog (the simulated models among it), tools and
agents made with the registry services, and `rt.drive(run)` executes the run in this process
the way a worker does (`apps.runtime.engine.run_execute`).
"""

from __future__ import annotations

import pytest

from apps.agents.models import ChannelName
from apps.agents.services import agent_create, agent_promote, agent_publish
from apps.catalog.services import catalog_seed_defaults
from apps.runtime.engine import run_execute
from apps.runtime.models import Run
from apps.runtime.services import run_start
from apps.tools.services import tool_create, tool_publish

WORKER = "test-worker@localhost:1"


class Runtime:
    def __init__(self, world):
        self.world = world
        self.team = world.team
        self.owner = world["owner"]
        self.operator = world["operator"]

    def tool(self, name: str, spec: dict):
        """Create and publish a tool (1.0.0) in the team."""
        tool = tool_create(actor=self.owner, team=self.team, name=name, spec=spec)
        tool_publish(actor=self.owner, tool=tool, version="1.0.0")
        return tool

    def http_tool(self, name: str, url: str, *, method: str = "GET", side_effect: str = "read", **extra):
        return self.tool(
            name,
            {
                "description": f"{name} over HTTP",
                "kind": "http",
                "parameters": extra.pop("parameters", {"type": "object", "properties": {"q": {"type": "string"}}}),
                "config": {"method": method, "url": url},
                "side_effect": side_effect,
                **extra,
            },
        )

    def agent(
        self,
        name: str,
        *,
        script: list | None = None,
        tools: list[str] = (),
        limits: dict | None = None,
        model: str = "simulated/sim-small",
        publish: bool = True,
        risk_tier: str = "low",
        **spec,
    ):
        """Create an agent with a simulated script; publish 1.0.0 and promote it to production."""
        draft = {
            "model": model,
            "prompt": {"inline": "You are a careful assistant."},
            "tools": list(tools),
            "limits": limits or {},
            **spec,
        }
        if script is not None:
            draft["simulation"] = {"script": script}
        agent = agent_create(actor=self.owner, team=self.team, name=name, draft_spec=draft, risk_tier=risk_tier)
        if publish:
            version = agent_publish(actor=self.owner, agent=agent, version="1.0.0")
            agent_promote(actor=self.owner, agent=agent, version=version, channel=ChannelName.PRODUCTION, reason="test")
        return agent

    def start(self, agent, input=None, *, actor=None, **kwargs) -> Run:
        return run_start(actor=actor or self.operator, agent=agent, input=input or {}, **kwargs)

    def drive(self, run: Run, worker: str = WORKER) -> Run:
        """Execute the run here, as a worker would; return it refreshed."""
        run_execute(run_id=run.pk, worker=worker)
        run.refresh_from_db()
        return run

    def run(self, agent, input=None, **kwargs) -> Run:
        return self.drive(self.start(agent, input, **kwargs))


def _forget_rate_counters(settings) -> None:
    """Drop Redis rate-limit counters an earlier test run left (test databases reuse the same tool ids)."""
    if not settings.REDIS_URL:
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(f"fleetdeck:{settings.DATABASES['default']['NAME']}:rate:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def rt(world, settings):
    _forget_rate_counters(settings)
    catalog_seed_defaults()
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["127.0.0.1"]
    return Runtime(world)
