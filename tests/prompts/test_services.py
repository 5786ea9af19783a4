"""Prompt services: validated, audited writes; immutable versions; labels with rollout; import."""

import pytest

from apps.audit.models import AuditEvent
from apps.core.exceptions import AccessDenied, ServiceError
from apps.core.specs import dump_document
from apps.core.versioning import ImmutableVersionError
from apps.prompts import services
from apps.prompts.models import Prompt, PromptLabel, PromptVersion
from tests.prompts.factories import SPEC, prompt_with_versions


def test_create_publish_and_audit(world):
    prompt = services.prompt_create(actor=world["builder"], team=world.team, name="greeting", spec=SPEC)
    assert prompt.owner == world["builder"] and prompt.draft_spec["variables"][0]["required"] is True
    version = services.prompt_publish(actor=world["builder"], prompt=prompt, version="1.0.0", notes="First")
    assert version.spec == prompt.draft_spec and version.ref == "greeting@1.0.0"
    events = AuditEvent.objects.filter(object_type="prompts.prompt", object_id=str(prompt.pk)).order_by("seq")
    actions = list(events.values_list("action", flat=True))
    assert actions == ["prompt.create", "prompt.publish"]


def test_undeclared_variable_is_refused_and_nothing_saved(world, prompt):
    count = AuditEvent.objects.count()
    with pytest.raises(ServiceError) as info:
        services.prompt_update_draft(actor=world["builder"], prompt=prompt, spec={"template": "Hi {{ who }}"})
    assert info.value.field == "template" and "undeclared variable who" in info.value.message
    prompt.refresh_from_db()
    assert prompt.draft_spec["template"] == SPEC["template"] and AuditEvent.objects.count() == count


def test_duplicates_viewers_and_versions(world, prompt):
    with pytest.raises(ServiceError) as info:
        services.prompt_create(actor=world["owner"], team=world.team, name="greeting", spec=SPEC)
    assert info.value.field == "name"
    with pytest.raises(AccessDenied):
        services.prompt_update_draft(actor=world["viewer"], prompt=prompt, spec=SPEC)
    with pytest.raises(ServiceError) as info:
        services.prompt_publish(actor=world["builder"], prompt=prompt, version="2.0.0")
    assert "Nothing changed" in info.value.message
    services.prompt_update_draft(
        actor=world["builder"], prompt=prompt, spec={**SPEC, "template": SPEC["template"] + "!"}
    )
    with pytest.raises(ServiceError) as info:
        services.prompt_publish(actor=world["builder"], prompt=prompt, version="1.0.0")
    assert info.value.field == "version"


def test_versions_are_immutable(prompt):
    version = prompt.versions.get()
    version.spec = {"template": "changed"}
    with pytest.raises(ImmutableVersionError):
        version.save()
    with pytest.raises(ImmutableVersionError):
        PromptVersion.objects.all().update(release_notes="x")
    with pytest.raises(ImmutableVersionError):
        PromptVersion.objects.all().delete()


@pytest.fixture
def versions(world):
    return prompt_with_versions(actor=world["builder"], team=world.team, versions=("1.0.0", "1.1.0", "2.0.0"))


def test_labels_point_at_versions_with_an_optional_rollout(world, versions):
    label = services.prompt_label_set(actor=world["builder"], prompt=versions, name="production", version="1.0.0")
    assert (label.version.version, label.candidate, label.rollout_percent) == ("1.0.0", None, 0)
    label = services.prompt_label_set(
        actor=world["builder"],
        prompt=versions,
        name="production",
        version="1.0.0",
        candidate="1.1.0",
        rollout_percent=10,
    )
    assert (label.candidate.version, label.rollout_percent) == ("1.1.0", 10)
    assert PromptLabel.objects.count() == 1
    event = AuditEvent.objects.filter(action="prompt.label_set").latest("seq")
    assert event.before["candidate"] is None and event.after == {
        "label": "production",
        "version": "1.0.0",
        "candidate": "1.1.0",
        "rollout_percent": 10,
    }


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"name": "canary", "version": "1.0.0"}, "name", "production or staging"),
        ({"name": "production", "version": "9.0.0"}, "version", "no published version"),
        ({"name": "production", "version": ""}, "version", "Pick the published version"),
        ({"name": "production", "version": "1.0.0", "rollout_percent": 20}, "candidate", "needs a candidate"),
        ({"name": "production", "version": "1.1.0", "candidate": "1.0.0", "rollout_percent": 5}, "candidate", "newer"),
        (
            {"name": "production", "version": "1.0.0", "candidate": "2.0.0", "rollout_percent": 100},
            "rollout_percent",
            "set the label's version to 2.0.0",
        ),
        (
            {"name": "production", "version": "1.0.0", "candidate": "2.0.0", "rollout_percent": 101},
            "rollout_percent",
            "between 0 and 99",
        ),
        (
            {"name": "production", "version": "1.0.0", "candidate": "2.0.0", "rollout_percent": -1},
            "rollout_percent",
            "between",
        ),
    ],
)
def test_bad_labels_name_the_field(world, versions, kwargs, field, words):
    with pytest.raises(ServiceError) as info:
        services.prompt_label_set(actor=world["builder"], prompt=versions, **kwargs)
    assert info.value.field == field and words in info.value.message
    assert not PromptLabel.objects.exists()


def test_another_prompts_version_cannot_be_labelled(world, versions):
    other = prompt_with_versions(actor=world["builder"], team=world.team, name="other")
    with pytest.raises(ServiceError) as info:
        services.prompt_label_set(actor=world["builder"], prompt=versions, name="staging", version=other.versions.get())
    assert info.value.field == "version" and "another prompt" in info.value.message
    with pytest.raises(AccessDenied):
        services.prompt_label_set(actor=world["operator"], prompt=versions, name="staging", version="1.0.0")


def test_import_round_trip_and_all_or_nothing(world, prompt):
    text = dump_document(kind="Prompt", metadata={"name": "copy", "owner": "olivia"}, spec=prompt.versions.get().spec)
    copy, version, created = services.prompt_import(
        actor=world["builder"], team=world.team, text=text, publish_version="1.0.0"
    )
    assert created and copy.owner == world["owner"] and version.content_hash == prompt.versions.get().content_hash
    count = AuditEvent.objects.count()
    bad = dump_document(kind="Prompt", metadata={"name": "new-one"}, spec={"template": "{{ x }}"})
    with pytest.raises(ServiceError) as info:
        services.prompt_import(actor=world["builder"], team=world.team, text=bad)
    assert info.value.field == "spec.template"
    replaced = dump_document(kind="Prompt", metadata={"name": "copy"}, spec={"template": "Changed."})
    with pytest.raises(ServiceError) as info:
        services.prompt_import(actor=world["builder"], team=world.team, text=replaced, publish_version="0.5.0")
    assert info.value.field == "version"
    copy.refresh_from_db()
    assert copy.draft_spec == prompt.versions.get().spec and not Prompt.objects.filter(name="new-one").exists()
    assert AuditEvent.objects.count() == count
