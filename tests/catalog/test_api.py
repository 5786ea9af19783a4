"""The catalog API: everyone with the read scope lists it; admins create and change; errors name the field."""

import pytest

from apps.accounts.services import token_create
from apps.audit.models import AuditEvent
from apps.catalog.models import Model
from apps.catalog.services import catalog_seed_defaults
from apps.governance.models import SecretGrant
from apps.governance.services import secret_create


@pytest.fixture
def seeded(world):
    catalog_seed_defaults()


def bearer(secret):
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_models_list_is_paginated_and_filterable(client, world, seeded):
    client.force_login(world["viewer"])
    body = client.get("/api/v1/models/").json()
    assert body["count"] == 7
    row = next(r for r in body["results"] if r["ref"] == "openai/gpt-4o-mini")
    assert row["provider"] == "openai" and row["input_price_per_mtok"] == "0.150000" and row["context_window"] == 128000
    approved = client.get("/api/v1/models/", {"status": "approved", "provider": "anthropic"}).json()["results"]
    assert [r["ref"] for r in approved] == ["anthropic/claude-3-5-sonnet"]
    response = client.get("/api/v1/models/", {"status": "retired"})
    assert response.status_code == 400 and "status" in response.json()


def test_a_read_token_lists_the_catalog_but_cannot_change_it(client, world, seeded):
    _t, read = token_create(actor=world["builder"], team=world.team, name="r", scopes=["read"])
    _t, write = token_create(actor=world["builder"], team=world.team, name="w", scopes=["read", "write"])
    assert client.get("/api/v1/providers/", **bearer(read)).status_code == 200
    response = client.post(
        "/api/v1/models/", {"provider": "openai", "name": "x"}, content_type="application/json", **bearer(write)
    )
    assert response.status_code == 403


def test_admin_creates_and_updates_models_with_audit(client, world, seeded):
    client.force_login(world["admin"])
    response = client.post(
        "/api/v1/models/",
        {"provider": "openai", "name": "o1-mini", "input_price_per_mtok": "1.1", "output_price_per_mtok": "4.4"},
        content_type="application/json",
    )
    assert response.status_code == 201 and response.json()["ref"] == "openai/o1-mini"
    pk = response.json()["id"]
    response = client.patch(f"/api/v1/models/{pk}/", {"status": "blocked"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["status"] == "blocked"
    event = AuditEvent.objects.get(action="model.update")
    assert event.before["status"] == "approved" and event.after["status"] == "blocked"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"provider": "azure", "name": "gpt-4o"}, "provider"),
        ({"provider": "openai", "name": "gpt-4o"}, "name"),
        ({"provider": "openai", "name": "has space"}, "name"),
        ({"provider": "openai", "name": "x", "input_price_per_mtok": "-1"}, "input_price_per_mtok"),
        ({"provider": "openai", "name": "x", "status": "retired"}, "status"),
        ({"provider": "openai", "name": "x", "context_window": 10, "max_output_tokens": 20}, "max_output_tokens"),
    ],
)
def test_bad_model_input_is_a_400_naming_the_field(client, world, seeded, data, field):
    client.force_login(world["admin"])
    count = Model.objects.count()
    response = client.post("/api/v1/models/", data, content_type="application/json")
    assert response.status_code == 400 and field in response.json()
    assert Model.objects.count() == count


def test_model_name_and_provider_cannot_be_patched(client, world, seeded):
    client.force_login(world["admin"])
    pk = Model.objects.get(name="gpt-4o").pk
    for field in ("name", "provider"):
        response = client.patch(f"/api/v1/models/{pk}/", {field: "gpt-5"}, content_type="application/json")
        assert response.status_code == 400 and "cannot change" in response.json()[field][0]
    assert Model.objects.get(pk=pk).name == "gpt-4o"
    response = client.patch("/api/v1/providers/openai/", {"name": "oai"}, content_type="application/json")
    assert response.status_code == 400 and "name" in response.json()


def test_admin_creates_a_provider_with_an_org_secret_key(client, world, seeded):
    secret_create(actor=world["admin"], team=None, name="groq-key", value="gsk-very-secret")
    secret_create(actor=world["admin"], team=world.team, name="team-key", value="x")
    client.force_login(world["admin"])
    data = {"name": "groq", "kind": "openai_compatible", "base_url": "https://api.groq.com/openai/v1"}
    response = client.post(
        "/api/v1/providers/", {**data, "api_key_secret": "team-key"}, content_type="application/json"
    )
    assert response.status_code == 400 and "api_key_secret" in response.json()
    response = client.post(
        "/api/v1/providers/", {**data, "api_key_secret": "groq-key"}, content_type="application/json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["api_key_secret"] == "groq-key" and body["has_api_key"] is True
    assert "gsk-very-secret" not in response.content.decode()
    assert SecretGrant.objects.filter(secret__name="groq-key", grantee_type="provider").exists()
    response = client.patch("/api/v1/providers/groq/", {"api_key_secret": None}, content_type="application/json")
    assert response.status_code == 200 and response.json()["has_api_key"] is False
    assert not SecretGrant.objects.filter(secret__name="groq-key").exists()


def test_provider_errors_name_the_field(client, world, seeded):
    client.force_login(world["admin"])
    response = client.post(
        "/api/v1/providers/", {"name": "x", "kind": "openai_compatible"}, content_type="application/json"
    )
    assert response.status_code == 400 and "base_url" in response.json()
    response = client.post(
        "/api/v1/providers/", {"name": "x", "kind": "anthropic", "base_url": "ftp://x"}, content_type="application/json"
    )
    assert response.status_code == 400 and "base_url" in response.json()
    response = client.patch("/api/v1/providers/simulated/", {"base_url": "http://x:1"}, content_type="application/json")
    assert response.status_code == 400 and "base_url" in response.json()
