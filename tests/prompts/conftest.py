import pytest

from tests.prompts.factories import prompt_with_versions


@pytest.fixture
def prompt(world):
    """greeting in payments with 1.0.0 published and the draft equal to it."""
    return prompt_with_versions(actor=world["builder"], team=world.team)
