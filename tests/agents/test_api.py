"""The agents API: the same rules as the pages, with clear 4xx answers."""

from apps.agents.models import Agent, AgentVersion
from apps.audit.models import AuditEvent
from tests.agents.conftest import spec


def test_build_publish_promote_through_the_api(client, world, registry):
    client.force_login(world["owner"])
    created = client.post(
        "/api/v1/agents/", {"team": "payments", "name": "api-bot", "tags": ["Finance"]}, content_type="application/json"
    )
    assert created.status_code == 201 and created.json()["namespace"] == "payments"
    pk = created.json()["id"]
    assert (
        client.put(f"/api/v1/agents/{pk}/draft/", {"spec": spec()}, content_type="application/json").status_code == 200
    )
    published = client.post(f"/api/v1/agents/{pk}/publish/", {"version": "1.0.0"}, content_type="application/json")
    assert published.status_code == 201 and published.json()["model"] == "simulated/sim-small"
    client.put(f"/api/v1/agents/{pk}/draft/", {"spec": spec(tools=[])}, content_type="application/json")
    client.post(f"/api/v1/agents/{pk}/publish/", {"version": "1.1.0"}, content_type="application/json")
    diff = client.get(f"/api/v1/agents/{pk}/diff/?a=1.0.0&b=1.1.0").json()
    assert any(c["path"] == "tools" for c in diff["changes"])
    promoted = client.post(
        f"/api/v1/agents/{pk}/promote/",
        {"version": "1.1.0", "channel": "production", "reason": "go"},
        content_type="application/json",
    )
    assert promoted.json()["to_version"] == "1.1.0"
    assert client.get(f"/api/v1/agents/{pk}/").json()["channels"] == {"production": "1.1.0"}
    listed = client.get("/api/v1/agents/?q=api-bot").json()
    assert listed["count"] == 1 and listed["results"][0]["tags"] == ["finance"]
    inventory = client.get("/api/v1/inventory/?tool=kb.search").json()
    assert inventory["count"] == 0  # 1.1.0 dropped the tools


def test_bad_drafts_answer_400_naming_the_field(client, world, registry):
    agent = Agent.objects.create(team=world.team, name="x", draft_spec={})
    client.force_login(world["builder"])
    for body, field in [
        ({"spec": spec(model="simulated/sim-old")}, "model"),
        ({"spec": spec(tools=["support.only"])}, "tools[0]"),
        ({"spec": {**spec(), "extra": 1}}, "extra"),
        ({"spec": "not an object"}, "spec"),
    ]:
        response = client.put(f"/api/v1/agents/{agent.pk}/draft/", body, content_type="application/json")
        assert response.status_code == 400, body
        assert field in response.json(), response.json()
    agent.refresh_from_db()
    assert agent.draft_spec == {}


def test_versions_cannot_be_changed_through_the_api(client, world, registry):
    agent = Agent.objects.create(team=world.team, name="x", draft_spec={})
    client.force_login(world["owner"])
    client.put(f"/api/v1/agents/{agent.pk}/draft/", {"spec": spec()}, content_type="application/json")
    client.post(f"/api/v1/agents/{agent.pk}/publish/", {"version": "1.0.0"}, content_type="application/json")
    url = f"/api/v1/agents/{agent.pk}/versions/1.0.0/"
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)(url, {"spec": {}}, content_type="application/json").status_code == 405
    assert AgentVersion.objects.get(agent=agent).spec["model"] == "simulated/sim-small"


def test_another_teams_agent_is_a_404(client, world, registry):
    agent = Agent.objects.create(team=world.team, name="x", draft_spec={})
    client.force_login(world["outsider"])
    assert client.get(f"/api/v1/agents/{agent.pk}/").status_code == 404
    assert (
        client.post(
            f"/api/v1/agents/{agent.pk}/retire/", {"reason": "mine now"}, content_type="application/json"
        ).status_code
        == 404
    )
    assert client.get("/api/v1/agents/abc/").status_code == 404


def test_import_via_api_is_all_or_nothing(client, world, registry):
    client.force_login(world["builder"])
    count = AuditEvent.objects.count()
    document = "apiVersion: fleetdeck/v1\nkind: Agent\nmetadata: {name: a1}\nspec: {model: simulated/sim-small, prompt: {inline: x}, limits: {max_steps: 0}}\n"
    response = client.post(
        "/api/v1/agents/import/", {"team": "payments", "document": document}, content_type="application/json"
    )
    assert response.status_code == 400 and "limits.max_steps" in response.json()
    assert not Agent.objects.filter(name="a1").exists() and AuditEvent.objects.count() == count


def test_the_admin_cannot_change_a_published_version(client, world, registry):
    agent = Agent.objects.create(team=world.team, name="x", draft_spec={})
    client.force_login(world["owner"])
    client.put(f"/api/v1/agents/{agent.pk}/draft/", {"spec": spec()}, content_type="application/json")
    client.post(f"/api/v1/agents/{agent.pk}/publish/", {"version": "1.0.0"}, content_type="application/json")
    version = AgentVersion.objects.get(agent=agent)
    client.force_login(world["admin"])
    url = f"/admin/agents/agentversion/{version.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and "Save" not in page.content.decode()  # shown read-only
    client.post(url, {"release_notes": "rewritten"})
    assert client.post(f"/admin/agents/agentversion/{version.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AgentVersion.objects.get(pk=version.pk).release_notes == ""
