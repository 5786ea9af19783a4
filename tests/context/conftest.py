"""A context space in team payments, and agents to grant it to."""

import pytest

from apps.agents.models import Agent
from apps.context import services

WRITE_SPEC = [{"space": "support-kb", "access": "write"}]
READ_SPEC = [{"space": "support-kb", "access": "read"}]


def make_agent(team, name, spaces=()):
    """Create an agent whose draft asks for the given context spaces (rows as the agents service leaves them)."""
    return Agent.objects.create(team=team, name=name, draft_spec={"memory": {"context_spaces": list(spaces)}})


@pytest.fixture
def space(world):
    return services.context_space_create(
        actor=world["builder"], team=world.team, name="support-kb", description="What support agents know."
    )


@pytest.fixture
def agent(world):
    return make_agent(world.team, "triage", WRITE_SPEC)


@pytest.fixture
def writer(world, space, agent):
    """The triage agent with a write grant on support-kb."""
    services.context_grant_set(actor=world["builder"], space=space, agent=agent, access="write")
    return agent
