"""The demo fleet: realistic, built through the services, audited, and idempotent."""

import pytest

from apps.accounts.demo import ADMIN_USERNAME, seed_demo
from apps.accounts.models import User
from apps.agents.demo import AGENTS, seed_demo_fleet
from apps.agents.models import Agent, AgentVersion, Promotion
from apps.audit.models import AuditEvent
from apps.audit.verify import audit_chain_verify
from apps.governance.models import GranteeType, Secret, SecretGrant
from apps.prompts.models import Prompt, PromptLabel, PromptVersion
from apps.tools.models import Tool, ToolKind, ToolVersion


def _totals() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (Agent, AgentVersion, Promotion, Tool, ToolVersion, Prompt, PromptVersion, Secret, SecretGrant)
    } | {"labels": PromptLabel.objects.count()}


@pytest.fixture
def fleet(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path  # the demo password file goes there
    seed_demo()
    admin = User.objects.get(username=ADMIN_USERNAME)
    return admin, seed_demo_fleet(admin=admin)


def test_seeding_twice_creates_nothing_new_and_the_audit_chain_holds(fleet):
    admin, first = fleet
    assert first["counts"]["agents"] == len(AGENTS) == 12
    assert len(first["created"]["agents"]) == 12
    before, events = _totals(), AuditEvent.objects.count()

    second = seed_demo_fleet(admin=admin)

    assert second["created"] == {"secrets": [], "tools": [], "prompts": [], "agents": []}
    assert second["catalog"] == {"providers": [], "models": []}
    assert second["counts"] == first["counts"]
    assert _totals() == before
    assert AuditEvent.objects.count() == events
    result = audit_chain_verify()
    assert result.ok, result.message


def test_every_change_was_made_by_a_team_member_and_audited(fleet):
    agents = {f"{a.team.slug}/{a.name}": a for a in Agent.objects.select_related("team", "owner")}
    publishes = AuditEvent.objects.filter(action="agent.publish")
    assert publishes.count() == AgentVersion.objects.count()
    # Builders publish; production moves are the owners'.
    assert set(publishes.values_list("actor_label", flat=True)) <= {"ben", "sofia", "rita"}
    production = Promotion.objects.filter(channel="production").select_related("actor")
    assert {p.actor.username for p in production} == {"olivia", "sofia", "rita"}
    assert agents["payments/refund-assistant"].owner.username == "olivia"
    assert agents["payments/invoice-reconciler"].owner.username == "ben"


def test_the_fleet_looks_like_a_real_one(fleet):
    kinds = set(ToolVersion.objects.values_list("kind", flat=True))
    assert kinds == set(ToolKind.values)  # http, python, agent_handoff, mcp, context
    permissions = {p for tv in ToolVersion.objects.all() for p in tv.permissions_required}
    assert {"crm.write", "payments.refund", "code_execution", "kb.read", "tickets.write"} <= permissions
    assert any(tv.spec["requires_approval"] for tv in ToolVersion.objects.all())
    assert Tool.objects.filter(deprecated=True).count() == 1
    assert all(tv.spec["parameters"]["type"] == "object" for tv in ToolVersion.objects.all())

    stripe = Secret.objects.get(team__slug="payments", name="stripe-api-key")
    granted = SecretGrant.objects.filter(secret=stripe, grantee_type=GranteeType.TOOL)
    assert {Tool.objects.get(pk=g.grantee_id).name for g in granted} == {"stripe.charges", "stripe.refund"}
    assert Secret.objects.filter(team__slug="support", name="zendesk-token").exists()

    for prompt in Prompt.objects.all():
        assert prompt.versions.count() >= 2
        assert set(prompt.labels.values_list("name", flat=True)) == {"production", "staging"}

    assert Agent.objects.filter(status="retired").count() == 1
    assert set(Agent.objects.values_list("risk_tier", flat=True)) == {"low", "medium", "high", "critical"}
    assert set(AgentVersion.objects.values_list("model__name", flat=True)) == {"sim-small", "sim-large"}
    for agent in Agent.objects.all():
        assert 1 <= agent.versions.count() <= 3
        assert agent.channels.exists()
    assert Promotion.objects.filter(is_rollback=True).count() >= 1
    refunds = Agent.objects.get(name="refund-assistant")
    assert refunds.channels.get(name="production").version.version == "1.0.0"  # rolled back from 1.1.0
    handoffs = {
        (v.agent.name, a.name)
        for v in AgentVersion.objects.prefetch_related("handoff_agents")
        for a in v.handoff_agents.all()
    }
    assert {("refund-assistant", "dispute-specialist"), ("ticket-triage", "escalation-agent")} <= handoffs


def test_secret_values_are_random_and_never_in_the_audit_log(fleet):
    from apps.governance.services import secret_read_for_use

    values = set()
    for grant in SecretGrant.objects.select_related("secret"):
        values.add(
            secret_read_for_use(
                secret=grant.secret, grantee_type=grant.grantee_type, grantee_id=grant.grantee_id, purpose="test"
            )
        )
    assert len(values) == Secret.objects.filter(team__isnull=False).count() >= 4
    log = "".join(f"{e.before}{e.after}{e.metadata}" for e in AuditEvent.objects.all())
    assert not any(value in log for value in values)


def test_the_auditor_finds_the_whole_fleet_in_the_inventory(fleet, client):
    client.force_login(User.objects.get(username="sam"))
    body = client.get("/api/v1/inventory/").json()
    assert body["count"] == 12
    rows = {r["full_name"]: r for r in body["results"]}
    refunds = rows["payments/refund-assistant"]
    assert refunds["production_version"] == "1.0.0" and refunds["staging_version"] == "1.1.0"
    assert "payments.refund" in refunds["permissions"] and refunds["secrets"] == ["crm-api-key", "stripe-api-key"]
    assert rows["payments/fraud-screener-legacy"]["status"] == "retired"
    assert rows["research/competitor-watch"]["secrets"] == ["notion-token", "serp-api-key"]
    page = client.get("/agents/inventory/")
    assert page.status_code == 200 and "12 agents" in page.content.decode()


def test_a_team_member_sees_only_their_teams_agents(fleet, client):
    client.force_login(User.objects.get(username="sofia"))
    body = client.get("/api/v1/agents/").json()
    assert body["count"] == 4
    assert {r["team"] for r in body["results"]} == {"support"}
