"""Fixtures for the tool registry tests: a published tool, a team secret, agents that use a tool."""

import pytest

from apps.catalog.models import Model, Provider
from apps.core.versioning import spec_hash
from tests.tools.factories import tool_with_versions


@pytest.fixture
def tool(world):
    """crm-lookup in payments, version 1.0.0 published, draft equal to it."""
    return tool_with_versions(actor=world["builder"], team=world.team)


@pytest.fixture
def secret(world):
    from apps.governance.services import secret_create

    return secret_create(actor=world["owner"], team=world.team, name="crm-key", value="s3cret-value")


@pytest.fixture
def grant(world):
    """Return grant(secret, tool): an owner grants the secret to the tool."""
    from apps.governance.services import secret_grant

    def give(secret, tool):
        return secret_grant(actor=world["owner"], secret=secret, grantee_type="tool", grantee=tool)

    return give


@pytest.fixture
def agent_using(world):
    """Return use(tool_version, agent_name, version, channels): an agent version pinning the tool version."""
    from apps.agents.models import Agent, AgentVersion, Channel

    provider = Provider.objects.create(name="simulated", display_name="Simulated", kind="simulated")
    model = Model.objects.create(provider=provider, name="sim-small", status="approved")

    def use(tool_version, agent_name="billing-bot", version="1.0.0", channels=()):
        agent, _ = Agent.objects.get_or_create(team=world.team, name=agent_name)
        spec = {"model": "simulated/sim-small", "tools": [tool_version.ref], "version": version}
        major, minor, patch = (int(p) for p in version.split("."))
        agent_version = AgentVersion.objects.create(
            agent=agent,
            version=version,
            major=major,
            minor=minor,
            patch=patch,
            spec=spec,
            content_hash=spec_hash(spec),
            model=model,
        )
        agent_version.tool_versions.add(tool_version)
        for name in channels:
            Channel.objects.update_or_create(agent=agent, name=name, defaults={"version": agent_version})
        return agent_version

    return use
