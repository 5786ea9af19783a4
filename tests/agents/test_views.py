"""The Studio, agent pages, inventory and access page as a person uses them."""

import csv
import io
import json

from apps.agents import services
from apps.agents.models import Agent
from tests.agents.conftest import spec
from tests.agents.matrix import DRAFT_FORM


def _published(world, name="invoice-bot", **overrides):
    agent = services.agent_create(actor=world["builder"], team=world.team, name=name)
    services.agent_update_draft(actor=world["builder"], agent=agent, spec=spec(**overrides))
    version = services.agent_publish(actor=world["builder"], agent=agent, version="1.0.0")
    return agent, version


def test_studio_builds_an_agent_from_nothing(client, world, registry):
    client.force_login(world["builder"])
    response = client.post(
        "/agents/studio/",
        {"name": "triage", "risk_tier": "medium", "data_classification": "internal", "tags": "support, email"},
    )
    agent = Agent.objects.get(name="triage")
    assert response["Location"] == f"/agents/{agent.pk}/studio/"
    page = client.get(f"/agents/{agent.pk}/studio/").content.decode()
    assert "simulated/sim-small" in page and "sim-old" not in page  # blocked models are not offered
    assert 'class="perm-badge">crm.write<' in page  # each tool shows the permissions it brings
    assert "legacy" not in page  # deprecated tools are not offered

    form = {
        **DRAFT_FORM,
        "prompt_mode": "registry",
        "prompt_ref": "support-reply@1.0.0",
        "prompt_variables": '{"tone": "calm"}',
        "tools": ["kb.search", "crm.update"],
    }
    assert client.post(f"/agents/{agent.pk}/studio/", form).status_code == 302
    agent.refresh_from_db()
    assert agent.draft_spec["tools"] == ["kb.search@1.0.0", "crm.update@1.0.0"]
    assert agent.draft_spec["prompt"] == {"ref": "support-reply@1.0.0", "inline": None, "variables": {"tone": "calm"}}
    assert (
        client.post(f"/agents/{agent.pk}/publish/", {"version": "1.0.0", "release_notes": "first"}).status_code == 302
    )
    detail = client.get(f"/agents/{agent.pk}/").content.decode()
    assert ">1.0.0</a>" in detail and "first" in detail


def test_studio_shows_errors_inline_and_saves_nothing(client, world, registry):
    agent = services.agent_create(actor=world["builder"], team=world.team, name="triage")
    client.force_login(world["builder"])
    bad = {**DRAFT_FORM, "input_schema": '{"type": "nonsense"}', "max_steps": "500"}
    response = client.post(f"/agents/{agent.pk}/studio/", bad)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Ensure this value is less than or equal to 200" in html
    bad = {**DRAFT_FORM, "input_schema": '{"type": "nonsense"}'}
    html = client.post(f"/agents/{agent.pk}/studio/", bad).content.decode()
    assert "not a valid JSON Schema" in html
    bad = {**DRAFT_FORM, "input_schema": "{not json"}
    assert "Not valid JSON" in client.post(f"/agents/{agent.pk}/studio/", bad).content.decode()
    agent.refresh_from_db()
    assert agent.draft_spec["model"] == ""


def test_publish_refusal_is_shown_not_a_500(client, world, registry):
    agent, _ = _published(world)
    client.force_login(world["builder"])
    response = client.post(f"/agents/{agent.pk}/publish/", {"version": "0.1.0"}, follow=True)
    assert "must be greater than the latest published version 1.0.0" in response.content.decode()


def test_compare_promote_and_roll_back_from_the_pages(client, world, registry):
    agent, v1 = _published(world)
    services.agent_update_draft(actor=world["builder"], agent=agent, spec=spec(model="simulated/sim-large"))
    services.agent_publish(actor=world["builder"], agent=agent, version="1.1.0")
    client.force_login(world["owner"])
    diff = client.get(f"/agents/{agent.pk}/diff/").content.decode()
    assert "<code>model</code>" in diff and "simulated/sim-large" in diff
    client.post(f"/agents/{agent.pk}/promote/", {"version": "1.0.0", "channel": "production", "reason": "launch"})
    client.post(f"/agents/{agent.pk}/promote/", {"version": "1.1.0", "channel": "production", "reason": "upgrade"})
    client.post(f"/agents/{agent.pk}/rollback/", {"channel": "production", "reason": "too slow"})
    page = client.get(f"/agents/{agent.pk}/").content.decode()
    assert 'data-channel="production">1.0.0<' in page
    assert "production (rollback)" in page and "too slow" in page


def test_builder_cannot_promote_to_production_from_the_page(client, world, registry):
    agent, _ = _published(world)
    client.force_login(world["builder"])
    response = client.post(
        f"/agents/{agent.pk}/promote/", {"version": "1.0.0", "channel": "production", "reason": "go"}
    )
    assert response.status_code == 403


def test_export_then_import_recreates_the_same_version(client, world, registry):
    agent, v1 = _published(world)
    client.force_login(world["builder"])
    document = client.get(f"/agents/{agent.pk}/export/?version=1.0.0").content.decode()
    assert document.startswith("apiVersion: fleetdeck/v1\nkind: Agent\n")
    document = document.replace("name: invoice-bot", "name: invoice-bot-copy")
    response = client.post("/agents/import/", {"document": document, "publish_version": "1.0.0"})
    assert response.status_code == 302
    copy = Agent.objects.get(name="invoice-bot-copy")
    assert copy.versions.get().content_hash == v1.content_hash  # the same spec, the same identity


def test_a_bad_import_writes_nothing(client, world, registry):
    client.force_login(world["builder"])
    document = "apiVersion: fleetdeck/v1\nkind: Agent\nmetadata: {name: new-bot}\nspec: {model: simulated/sim-small, prompt: {inline: x}, tools: [support.only]}\n"
    response = client.post("/agents/import/", {"document": document, "publish_version": "1.0.0"})
    assert response.status_code == 400
    assert "No tool named &#x27;support.only&#x27; in team payments" in response.content.decode()
    assert not Agent.objects.filter(name="new-bot").exists()
    for bad, message in [
        ("kind: Tool\napiVersion: fleetdeck/v1\nmetadata: {}\nspec: {}", "kind must be one of Agent"),
        ("apiVersion: fleetdeck/v1\nkind: Agent\nmetadata: {name: a}\nspec: {model: 3}", "model must be a string"),
        ("a: [unclosed", "not valid YAML or JSON"),
        (
            "apiVersion: fleetdeck/v1\nkind: Agent\nmetadata: {name: a, colour: red}\nspec: {}",
            "Unknown key metadata.colour",
        ),
    ]:
        html = client.post("/agents/import/", {"document": bad}).content.decode()
        assert message in html, message
    assert Agent.objects.count() == 0


def test_inventory_lists_what_each_agent_reaches(client, world, registry):
    agent, v1 = _published(world)
    services.agent_promote(actor=world["owner"], agent=agent, version=v1, channel="production", reason="go")
    client.force_login(world["auditor"])
    html = client.get("/agents/inventory/").content.decode()
    assert 'data-agent="payments/invoice-bot"' in html
    assert 'class="perm-badge">crm.write<' in html and "simulated/sim-small" in html
    rows = list(
        csv.DictReader(io.StringIO(b"".join(client.get("/agents/inventory/export.csv").streaming_content).decode()))
    )
    assert rows[0]["name"] == "invoice-bot" and rows[0]["production_version"] == "1.0.0"
    assert rows[0]["permissions"] == "crm.write kb.read"
    data = json.loads(client.get("/agents/inventory/export.json?permission=crm.write").content)
    assert [r["full_name"] for r in data] == ["payments/invoice-bot"]
    assert json.loads(client.get("/agents/inventory/export.json?permission=none.such").content) == []
    client.force_login(world["outsider"])
    assert "invoice-bot" not in client.get("/agents/inventory/").content.decode()


def test_access_page_follows_handoffs_and_names_who_can_act(client, world, registry):
    helper, hv = _published(world, name="crm-helper", tools=["crm.update"])
    services.agent_promote(actor=world["owner"], agent=helper, version=hv, channel="production", reason="go")
    agent, v1 = _published(world, name="front-desk", tools=["kb.search"], handoffs=["crm-helper"])
    services.agent_promote(actor=world["owner"], agent=agent, version=v1, channel="staging", reason="go")
    client.force_login(world["viewer"])
    access = client.get(f"/api/v1/agents/{agent.pk}/access/").json()
    assert access["summary"]["permissions"] == ["crm.write", "kb.read"]  # crm.write only through the handoff
    assert access["summary"]["handoff_targets"] == ["crm-helper"]
    assert "olivia (owner)" in access["people"]["promote"] and "ben (builder)" not in access["people"]["promote"]
    assert "ben (builder)" in access["people"]["change"] and "oscar (operator)" in access["people"]["approve"]
    html = client.get(f"/agents/{agent.pk}/access/").content.decode()
    assert "Through handoff to crm-helper" in html


def test_an_owner_grants_promotion_of_one_agent_to_someone_outside_the_team(client, world, registry):
    agent, v1 = _published(world)
    client.force_login(world["owner"])
    response = client.post(
        f"/agents/{agent.pk}/access/", {"username": "xavier", "permission": "agent.promote", "action": "add"}
    )
    assert response.status_code == 302
    client.force_login(world["outsider"])
    assert client.get(f"/agents/{agent.pk}/").status_code == 200  # the grant makes this one agent visible
    assert client.get("/teams/payments/").status_code == 404  # and nothing else of the team
    promoted = client.post(
        f"/api/v1/agents/{agent.pk}/promote/",
        {"version": "1.0.0", "channel": "production", "reason": "granted"},
        content_type="application/json",
    )
    assert promoted.status_code == 200
    access = client.get(f"/api/v1/agents/{agent.pk}/access/").json()
    assert "xavier (object grant)" in access["people"]["promote"]
    url = f"/api/v1/agents/{agent.pk}/grants/"
    refused = client.post(url, {"user": "xavier", "permission": "run.start"}, content_type="application/json")
    assert refused.status_code == 403  # the outsider may not hand out grants
    wrong = client.post(url, {"user": "xavier", "permission": "team.view"}, content_type="application/json")
    assert wrong.status_code == 400 and "permission" in wrong.json()
