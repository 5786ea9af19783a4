"""The secrets API: values are write-only, errors name the field, another team's secret is out of reach."""

import pytest

from apps.accounts.services import token_create
from apps.audit.models import AuditEvent
from apps.governance.models import Secret, SecretGrant
from apps.governance.services import secret_create, secret_grant
from tests.governance.conftest import VALUE


def bearer(secret):
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def post(client, path, data, **extra):
    return client.post(path, data, content_type="application/json", **extra)


def test_create_returns_metadata_and_never_the_value(client, world):
    client.force_login(world["owner"])
    response = post(client, "/api/v1/secrets/", {"team": "payments", "name": "crm-api-key", "value": VALUE})
    assert response.status_code == 201
    body = response.json()
    assert "value" not in body and VALUE not in response.content.decode()
    assert body["team"] == "payments" and body["scope"] == "team" and body["value_set"] is True
    assert body["created_by"] == "olivia" and body["used_by"] == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"team": "payments", "name": "Bad Name", "value": VALUE}, "name"),
        ({"team": "payments", "name": "crm-api-key", "value": VALUE}, "name"),
        ({"team": "payments", "name": "ok", "value": ""}, "value"),
        ({"team": "payments", "name": "ok"}, "value"),
        ({"team": "payments", "name": "ok", "value": "x" * (64 * 1024 + 1)}, "value"),
        ({"team": "support", "name": "ok", "value": VALUE}, "team"),
        ({"name": "ok", "value": VALUE}, "team"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_without_the_value(client, world, data, field):
    secret_create(actor=world["owner"], team=world.team, name="crm-api-key", value="v")
    client.force_login(world["owner"])
    events = AuditEvent.objects.count()
    response = post(client, "/api/v1/secrets/", data)
    assert response.status_code == 400 and field in response.json()
    assert VALUE not in response.content.decode()
    assert Secret.objects.count() == 1 and AuditEvent.objects.count() == events


def test_set_value_patch_and_delete(client, world):
    secret = secret_create(actor=world["owner"], team=world.team, name="k", value="v1")
    client.force_login(world["owner"])
    response = post(client, f"/api/v1/secrets/{secret.pk}/set-value/", {"value": VALUE})
    assert response.status_code == 200 and VALUE not in response.content.decode()
    assert response.json()["rotated_at"] > secret.rotated_at.isoformat().replace("+00:00", "Z")[:19]
    response = post(client, f"/api/v1/secrets/{secret.pk}/set-value/", {"value": ""})
    assert response.status_code == 400 and "value" in response.json()
    response = client.patch(f"/api/v1/secrets/{secret.pk}/", {"description": "d"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["description"] == "d"
    assert client.delete(f"/api/v1/secrets/{secret.pk}/").status_code == 204
    assert not Secret.objects.exists()


def test_list_filters_and_scopes(client, world):
    secret_create(actor=world["owner"], team=world.team, name="a", value="v")
    secret_create(actor=world["outsider"], team=world.other_team, name="b", value="v")
    secret_create(actor=world["admin"], team=None, name="c", value="v")
    client.force_login(world["admin"])
    names = lambda params: [r["name"] for r in client.get("/api/v1/secrets/", params).json()["results"]]  # noqa: E731
    assert names({}) == ["c", "a", "b"] or sorted(names({})) == ["a", "b", "c"]
    assert names({"scope": "org"}) == ["c"]
    assert names({"team": "support"}) == ["b"]
    assert client.get("/api/v1/secrets/", {"scope": "nope"}).status_code == 400
    client.force_login(world["viewer"])
    assert names({}) == ["a"]


def test_a_team_token_sees_only_its_team_secrets_even_for_an_admin(client, world):
    secret_create(actor=world["admin"], team=None, name="org-key", value="v")
    secret_create(actor=world["owner"], team=world.team, name="a", value="v")
    _t, read = token_create(actor=world["admin"], team=world.team, name="r", scopes=["read"])
    rows = client.get("/api/v1/secrets/", **bearer(read)).json()["results"]
    assert [r["name"] for r in rows] == ["a"]


def test_grants_api_creates_lists_and_revokes(client, world, tool, other_tool):
    secret = secret_create(actor=world["owner"], team=world.team, name="k", value=VALUE)
    other = secret_create(actor=world["outsider"], team=world.other_team, name="s", value="v")
    client.force_login(world["owner"])
    data = {"secret": secret.pk, "grantee_type": "tool", "grantee_id": tool.pk}
    response = post(client, "/api/v1/secret-grants/", data)
    assert response.status_code == 201 and response.json()["grantee"] == "tool payments/crm-lookup"
    grant_id = response.json()["id"]
    assert post(client, "/api/v1/secret-grants/", data).status_code == 400

    response = post(client, "/api/v1/secret-grants/", {**data, "secret": other.pk})
    assert response.status_code == 400 and "secret" in response.json()
    response = post(client, "/api/v1/secret-grants/", {**data, "grantee_id": other_tool.pk})
    assert response.status_code == 400 and "grantee_id" in response.json()
    response = post(client, "/api/v1/secret-grants/", {**data, "grantee_type": "robot"})
    assert response.status_code == 400 and "grantee_type" in response.json()

    rows = client.get("/api/v1/secret-grants/", {"secret": secret.pk}).json()["results"]
    assert [r["grantee"] for r in rows] == ["tool payments/crm-lookup"]
    assert client.get("/api/v1/secret-grants/", {"secret": "x"}).status_code == 400
    assert client.get(f"/api/v1/secrets/{secret.pk}/").json()["used_by"] == ["tool payments/crm-lookup"]
    assert client.delete(f"/api/v1/secrets/{secret.pk}/").status_code == 400
    assert client.delete(f"/api/v1/secret-grants/{grant_id}/").status_code == 204
    assert not SecretGrant.objects.exists()


def test_another_teams_secret_and_grant_are_404(client, world, tool):
    secret = secret_create(actor=world["owner"], team=world.team, name="k", value="v")
    grant = secret_grant(actor=world["owner"], secret=secret, grantee_type="tool", grantee=tool)
    client.force_login(world["outsider"])
    assert client.get(f"/api/v1/secrets/{secret.pk}/").status_code == 404
    assert post(client, f"/api/v1/secrets/{secret.pk}/set-value/", {"value": "x"}).status_code == 404
    assert client.get(f"/api/v1/secret-grants/{grant.pk}/").status_code == 404
    assert client.get("/api/v1/secret-grants/").json()["results"] == []


def test_the_api_answers_json_only(client, world):
    client.force_login(world["owner"])
    response = client.post(
        "/api/v1/secrets/",
        {"team": "payments", "name": "Bad Name", "value": VALUE},
        content_type="application/json",
        HTTP_ACCEPT="text/html",
    )
    assert VALUE not in response.content.decode()
