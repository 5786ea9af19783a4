"""Agents as immutable versions: publish, promote, roll back, retire; every refusal names its field."""

import pytest

from apps.agents import services
from apps.agents.models import AgentVersion, Channel, Promotion
from apps.audit.models import AuditEvent
from apps.audit.verify import audit_chain_verify
from apps.core.exceptions import AccessDenied, ServiceError
from apps.core.versioning import ImmutableVersionError
from tests.agents.conftest import spec


def _agent(world, name="invoice-bot", **kwargs):
    return services.agent_create(actor=world["builder"], team=world.team, name=name, **kwargs)


def test_the_whole_life_of_an_agent(world, registry):
    agent = _agent(world, description="Reconciles invoices", tags=["finance"], risk_tier="high")
    services.agent_update_draft(actor=world["builder"], agent=agent, spec=spec())
    v1 = services.agent_publish(actor=world["builder"], agent=agent, version="1.0.0", notes="first")
    assert v1.spec["tools"] == ["kb.search@1.0.0", "crm.update@1.0.0"]  # bare names are pinned at publish
    assert sorted(tv.tool.name for tv in v1.tool_versions.all()) == ["crm.update", "kb.search"]
    assert v1.model == registry.model and v1.prompt_version == registry.prompt_version

    services.agent_update_draft(actor=world["builder"], agent=agent, spec=spec(model="simulated/sim-large"))
    v2 = services.agent_publish(actor=world["builder"], agent=agent, version="1.1.0")
    assert v2.content_hash != v1.content_hash

    services.agent_promote(actor=world["builder"], agent=agent, version=v1, channel="staging", reason="try it")
    services.agent_promote(actor=world["owner"], agent=agent, version=v1, channel="production", reason="ship")
    services.agent_promote(actor=world["owner"], agent=agent, version=v2, channel="production", reason="bigger model")
    services.agent_rollback(actor=world["owner"], agent=agent, channel="production", reason="costs too much")
    assert Channel.objects.get(agent=agent, name="production").version == v1
    last = Promotion.objects.filter(agent=agent).first()
    assert last.is_rollback and last.from_version == v2 and last.to_version == v1 and last.reason == "costs too much"

    services.agent_retire(actor=world["owner"], agent=agent, reason="replaced")
    with pytest.raises(ServiceError, match="retired"):
        services.agent_publish(actor=world["builder"], agent=agent, version="2.0.0")
    actions = list(
        AuditEvent.objects.filter(object_type="agents.agent").order_by("seq").values_list("action", flat=True)
    )
    assert actions == [
        "agent.create",
        "agent.update_draft",
        "agent.publish",
        "agent.update_draft",
        "agent.publish",
        "agent.promote",
        "agent.promote",
        "agent.promote",
        "agent.rollback",
        "agent.retire",
    ]
    assert audit_chain_verify().ok


@pytest.mark.parametrize(
    ("draft", "field", "message"),
    [
        (spec(model="simulated/sim-old"), "model", "blocked"),
        (spec(model="nowhere/none"), "model", ""),
        (spec(tools=["legacy"]), "tools[0]", "deprecated"),
        (spec(tools=["support.only"]), "tools[0]", "No tool named 'support.only' in team payments"),
        (spec(tools=["kb.search@9.9.9"]), "tools[0]", "no version 9.9.9"),
        (spec(prompt={"ref": "support-reply@1.0.0", "inline": "both"}), "prompt", "either ref"),
        (
            spec(prompt={"ref": "support-reply@1.0.0", "variables": {"mood": "x"}}),
            "prompt.variables",
            "no variable mood",
        ),
        (spec(limits={"max_steps": 0}), "limits.max_steps", "between 1 and 200"),
        (spec(limits={"max_steps": "ten"}), "limits.max_steps", "whole number"),
        (spec(colour="blue"), "colour", "Unknown key colour"),
        (spec(handoffs=["ghost"]), "handoffs[0]", "No agent named 'ghost'"),
        (spec(input_schema={"type": "nonsense"}), "input_schema", "not a valid JSON Schema"),
        (spec(prompt={"inline": "x" * 100_001}), "prompt.inline", "too long"),
        (spec(secrets=["crm-key"]), "secrets[0]", ""),
    ],
)
def test_bad_drafts_are_refused_naming_the_field_and_nothing_changes(world, registry, draft, field, message):
    agent = _agent(world)
    before = dict(agent.draft_spec)
    count = AuditEvent.objects.count()
    with pytest.raises(ServiceError) as caught:
        services.agent_update_draft(actor=world["builder"], agent=agent, spec=draft)
    assert caught.value.field == field
    assert message in caught.value.message
    agent.refresh_from_db()
    assert agent.draft_spec == before
    assert AuditEvent.objects.count() == count


def test_versions_must_increase_and_change(world, registry):
    agent = _agent(world)
    services.agent_update_draft(actor=world["builder"], agent=agent, spec=spec())
    services.agent_publish(actor=world["builder"], agent=agent, version="1.2.0")
    with pytest.raises(ServiceError, match="Nothing changed since 1.2.0"):
        services.agent_publish(actor=world["builder"], agent=agent, version="1.3.0")
    services.agent_update_draft(actor=world["builder"], agent=agent, spec=spec(limits={"max_steps": 9}))
    for bad in ("1.2.0", "1.1.9", "0.9.0"):
        with pytest.raises(ServiceError, match="must be greater than the latest published version 1.2.0") as caught:
            services.agent_publish(actor=world["builder"], agent=agent, version=bad)
        assert caught.value.field == "version"
    with pytest.raises(ServiceError, match="not a version like"):
        services.agent_publish(actor=world["builder"], agent=agent, version="v2")
    assert agent.versions.count() == 1


def test_a_model_blocked_after_publishing_cannot_be_published_again(world, registry):
    agent = _agent(world)
    services.agent_update_draft(actor=world["builder"], agent=agent, spec=spec())
    services.agent_publish(actor=world["builder"], agent=agent, version="1.0.0")
    registry.model.status = "blocked"
    registry.model.save()
    with pytest.raises(ServiceError) as caught:
        services.agent_publish(actor=world["builder"], agent=agent, version="1.0.1")
    assert caught.value.field == "model"


def test_published_versions_are_immutable_through_the_orm(world, registry):
    agent = _agent(world)
    services.agent_update_draft(actor=world["builder"], agent=agent, spec=spec())
    version = services.agent_publish(actor=world["builder"], agent=agent, version="1.0.0")
    version.release_notes = "rewritten history"
    with pytest.raises(ImmutableVersionError):
        version.save()
    with pytest.raises(ImmutableVersionError):
        version.delete()
    with pytest.raises(ImmutableVersionError):
        AgentVersion.objects.filter(pk=version.pk).update(release_notes="x")
    with pytest.raises(ImmutableVersionError):
        AgentVersion.objects.filter(pk=version.pk).delete()
    assert AgentVersion.objects.get(pk=version.pk).release_notes == ""


def test_production_needs_the_owner_role_or_a_grant(world, registry):
    from guardian.shortcuts import assign_perm

    agent = _agent(world)
    services.agent_update_draft(actor=world["builder"], agent=agent, spec=spec())
    version = services.agent_publish(actor=world["builder"], agent=agent, version="1.0.0")
    with pytest.raises(AccessDenied):
        services.agent_promote(actor=world["builder"], agent=agent, version=version, channel="production", reason="go")
    services.agent_promote(actor=world["builder"], agent=agent, version=version, channel="staging", reason="go")
    with pytest.raises(AccessDenied):
        services.agent_promote(actor=world["operator"], agent=agent, version=version, channel="staging", reason="go")
    assign_perm("agents.promote_agent", world["operator"], agent)
    services.agent_promote(
        actor=world["operator"], agent=agent, version=version, channel="production", reason="granted"
    )
    assert Channel.objects.get(agent=agent, name="production").version == version


def test_promotion_needs_a_reason_and_a_different_version(world, registry):
    agent = _agent(world)
    services.agent_update_draft(actor=world["builder"], agent=agent, spec=spec())
    version = services.agent_publish(actor=world["builder"], agent=agent, version="1.0.0")
    with pytest.raises(ServiceError, match="Say why"):
        services.agent_promote(actor=world["owner"], agent=agent, version=version, channel="production", reason=" ")
    services.agent_promote(actor=world["owner"], agent=agent, version=version, channel="production", reason="go")
    with pytest.raises(ServiceError, match="already runs 1.0.0"):
        services.agent_promote(actor=world["owner"], agent=agent, version=version, channel="production", reason="again")
    with pytest.raises(ServiceError, match="has run no other version"):
        services.agent_rollback(actor=world["owner"], agent=agent, channel="production", reason="back")


def test_duplicate_names_and_bad_metadata_are_refused(world, registry):
    _agent(world)
    with pytest.raises(ServiceError, match="already has an agent named 'invoice-bot'") as caught:
        _agent(world)
    assert caught.value.field == "name"
    with pytest.raises(ServiceError) as caught:
        _agent(world, name="Bad Name")
    assert caught.value.field == "name"
    with pytest.raises(ServiceError) as caught:
        _agent(world, name="x1", risk_tier="extreme")
    assert caught.value.field == "risk_tier"
    with pytest.raises(ServiceError) as caught:
        _agent(world, name="x2", owner="xavier")  # not a member of payments
    assert caught.value.field == "owner"


def test_handoffs_resolve_within_the_team_only(world, registry):
    helper = _agent(world, name="helper")
    services.agent_update_draft(actor=world["builder"], agent=helper, spec=spec(tools=["crm.update"]))
    agent = _agent(world)
    services.agent_update_draft(actor=world["builder"], agent=agent, spec=spec(handoffs=["helper"]))
    version = services.agent_publish(actor=world["builder"], agent=agent, version="1.0.0")
    assert list(version.handoff_agents.all()) == [helper]
    with pytest.raises(ServiceError, match="hand off to itself"):
        services.agent_update_draft(actor=world["builder"], agent=agent, spec=spec(handoffs=["invoice-bot"]))
