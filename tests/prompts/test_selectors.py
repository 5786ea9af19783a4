"""Resolving prompts for agents: versions, labels and rollouts, never another team's prompt."""

import pytest

from apps.core.exceptions import ServiceError
from apps.prompts import selectors, services
from tests.prompts.factories import prompt_with_versions


@pytest.fixture
def labelled(world):
    prompt = prompt_with_versions(actor=world["builder"], team=world.team, versions=("1.0.0", "1.1.0", "2.0.0"))
    services.prompt_label_set(actor=world["builder"], prompt=prompt, name="production", version="1.0.0")
    return prompt


def resolve(world, ref, **kw):
    return selectors.prompt_version_resolve(team=world.team, ref=ref, **kw).version


def resolve_error(world, ref) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        selectors.prompt_version_resolve(team=world.team, ref=ref)
    return info.value


def test_versions_labels_and_latest(world, labelled):
    assert resolve(world, "greeting@1.1.0") == "1.1.0"
    assert resolve(world, "greeting") == "2.0.0"
    assert resolve(world, "greeting@production") == "1.0.0"
    found = selectors.prompt_version_resolve(team=world.team, ref="greeting@production")
    assert found.ref == "greeting@1.0.0"


def test_a_rollout_serves_the_candidate_to_its_share_of_keys(world, labelled):
    services.prompt_label_set(
        actor=world["builder"],
        prompt=labelled,
        name="production",
        version="1.0.0",
        candidate="2.0.0",
        rollout_percent=30,
    )
    assert resolve(world, "greeting@production") == "1.0.0"  # no key: the stable version
    served = [resolve(world, "greeting@production", key=f"session-{i}") for i in range(400)]
    share = served.count("2.0.0") / len(served)
    assert 0.2 < share < 0.4 and set(served) == {"1.0.0", "2.0.0"}
    assert resolve(world, "greeting@production", key="session-7") == resolve(
        world, "greeting@production", key="session-7"
    )


def test_refusals_say_what_to_do(world, labelled):
    prompt_with_versions(actor=world["outsider"], team=world.other_team, name="theirs")
    assert resolve_error(world, "theirs@1.0.0").message.startswith("No prompt named 'theirs' in team payments")
    assert "has no label 'staging' (labels: production)" in resolve_error(world, "greeting@staging").message
    assert "has no version 3.0.0 (latest is 2.0.0)" in resolve_error(world, "greeting@3.0.0").message
    services.prompt_create(actor=world["builder"], team=world.team, name="empty", spec={"template": "x"})
    assert "no published version yet" in resolve_error(world, "empty").message
    assert resolve_error(world, "Bad Ref").field == "ref"


def test_detected_variables_for_the_editor():
    rows = selectors.prompt_variables(
        {"template": "{{ a }} {{b}}", "variables": [{"name": "a", "required": True}, {"name": "c"}]}
    )
    assert [(r["name"], r["declared"], r["used"]) for r in rows] == [
        ("a", True, True),
        ("b", False, True),
        ("c", True, False),
    ]
