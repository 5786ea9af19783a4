import pytest

from apps.agents.models import Agent
from apps.governance.services import secret_create
from apps.tools.models import Tool

# A value distinctive enough that finding it anywhere means it leaked.
VALUE = "sk-LEAKCANARY-7f3a9c1e-d00d-4b1d-9e8f-feedfacecafe"


@pytest.fixture
def tool(world):
    return Tool.objects.create(team=world.team, name="crm-lookup")


@pytest.fixture
def agent(world):
    return Agent.objects.create(team=world.team, name="invoice-bot")


@pytest.fixture
def other_tool(world):
    return Tool.objects.create(team=world.other_team, name="ticket-search")


@pytest.fixture
def team_secret(world):
    return secret_create(actor=world["owner"], team=world.team, name="crm-api-key", value=VALUE, description="CRM")
