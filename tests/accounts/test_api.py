"""API tokens and the API: bearer authentication, scopes, team restriction, clear errors."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.accounts.services import token_create
from apps.audit.models import AuditEvent
from tests.factories import MembershipFactory


def bearer(secret):
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def read_token(world):
    _token, secret = token_create(actor=world["builder"], team=world.team, name="reader", scopes=["read"])
    return secret


def test_token_is_shown_once_and_only_its_hash_is_stored(client, world):
    client.force_login(world["builder"])
    response = client.post(
        "/api/v1/tokens/",
        {"team": "payments", "name": "deploy", "scopes": ["read", "write"]},
        content_type="application/json",
    )
    assert response.status_code == 201
    secret = response.json()["token"]
    token = ApiToken.objects.get(name="deploy")
    assert secret.startswith(token.prefix) and secret not in token.token_hash
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert all("token" not in row for row in listed)
    assert secret not in str(listed)
    event = AuditEvent.objects.get(action="token.create", object_id=str(token.pk))
    assert secret not in str(event.after) and event.after["prefix"] == token.prefix


def test_bearer_token_calls_the_api_and_records_last_use(client, world, read_token):
    response = client.get("/api/v1/me/", **bearer(read_token))
    assert response.status_code == 200
    assert response.json()["username"] == "ben"
    assert response.json()["token"]["scopes"] == ["read"]
    assert ApiToken.objects.get(name="reader").last_used_at is not None


def test_token_sees_only_its_own_team(client, world):
    MembershipFactory(user=world["builder"], team=world.other_team, role="viewer")
    _token, secret = token_create(actor=world["builder"], team=world.team, name="scoped", scopes=["read"])
    teams = [t["slug"] for t in client.get("/api/v1/teams/", **bearer(secret)).json()["results"]]
    assert teams == ["payments"]
    assert client.get("/api/v1/teams/support/", **bearer(secret)).status_code == 404


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"revoked_at": timezone.now()}, "revoked"),
        ({"expires_at": timezone.now() - timedelta(minutes=1)}, "expired"),
    ],
)
def test_revoked_and_expired_tokens_are_refused_and_audited(client, world, read_token, change, message):
    ApiToken.objects.filter(name="reader").update(**change)
    response = client.get("/api/v1/me/", **bearer(read_token))
    assert response.status_code == 401
    assert message in response.json()["detail"]
    event = AuditEvent.objects.filter(action="auth.token_refused").latest("seq")
    assert event.metadata["reason"] == message and event.outcome == "denied"


@pytest.mark.parametrize("header", ["Bearer", "Bearer fdk_unknown", "Bearer a b", "Bearer " + "x" * 300])
def test_malformed_or_unknown_tokens_answer_401(client, world, header):
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert "token" in response.json()["detail"].lower() or "authorization" in response.json()["detail"].lower()


def test_token_without_the_scope_is_refused_with_the_reason(client, world, read_token):
    response = client.patch(
        "/api/v1/teams/payments/", {"description": "x"}, content_type="application/json", **bearer(read_token)
    )
    assert response.status_code == 403
    assert "'write' scope" in response.json()["detail"]
    assert AuditEvent.objects.filter(action="permission.denied", metadata__permission="scope:write").exists()


def test_a_token_never_exceeds_its_users_role(client, world):
    _token, secret = token_create(actor=world["builder"], team=world.team, name="w", scopes=["read", "write"])
    response = client.patch(
        "/api/v1/teams/payments/", {"description": "x"}, content_type="application/json", **bearer(secret)
    )
    assert response.status_code == 403  # a builder may not change the team, token or not


def test_a_viewer_cannot_mint_a_write_token(client, world):
    client.force_login(world["viewer"])
    response = client.post(
        "/api/v1/tokens/", {"team": "payments", "name": "x", "scopes": ["write"]}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "does not allow the scope write" in response.json()["scopes"][0]
    assert not ApiToken.objects.filter(name="x").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"team": "payments", "name": "", "scopes": ["read"]}, "name"),
        ({"team": "payments", "name": "n" * 101, "scopes": ["read"]}, "name"),
        ({"team": "payments", "name": "x", "scopes": []}, "scopes"),
        ({"team": "payments", "name": "x", "scopes": ["admin"]}, "scopes"),
        ({"team": "payments", "name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"team": "payments", "name": "x", "scopes": ["read"], "expires_at": "not a date"}, "expires_at"),
    ],
)
def test_bad_token_requests_name_the_field_and_save_nothing(client, world, body, field):
    client.force_login(world["builder"])
    count = ApiToken.objects.count()
    response = client.post("/api/v1/tokens/", body, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()
    assert ApiToken.objects.count() == count


def test_revoked_token_stops_working_at_once(client, world, read_token):
    token = ApiToken.objects.get(name="reader")
    client.force_login(world["builder"])
    assert client.post(f"/api/v1/tokens/{token.pk}/revoke/").json()["status"] == "revoked"
    client.logout()
    assert client.get("/api/v1/me/", **bearer(read_token)).status_code == 401


def test_team_owner_manages_members_through_the_api(client, world):
    from tests.factories import UserFactory

    UserFactory(username="newbie")
    client.force_login(world["owner"])
    created = client.post(
        "/api/v1/memberships/",
        {"team": "payments", "user": "newbie", "role": "operator"},
        content_type="application/json",
    )
    assert created.status_code == 201
    duplicate = client.post(
        "/api/v1/memberships/",
        {"team": "payments", "user": "newbie", "role": "viewer"},
        content_type="application/json",
    )
    assert duplicate.status_code == 400 and "already a member" in duplicate.json()["user"][0]
    unknown = client.post(
        "/api/v1/memberships/", {"team": "payments", "user": "ghost", "role": "viewer"}, content_type="application/json"
    )
    assert unknown.status_code == 400
    own = world["owner"].memberships.get()
    last_owner = client.patch(f"/api/v1/memberships/{own.pk}/", {"role": "viewer"}, content_type="application/json")
    assert last_owner.status_code == 400 and "at least one owner" in last_owner.json()["role"][0]


def test_schema_describes_bearer_auth(client, world):
    client.force_login(world["viewer"])
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/tokens/" in schema["paths"]
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_api_docs_page_uses_only_local_assets(client, world):
    client.force_login(world["viewer"])
    html = client.get("/api/v1/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower() and "https://" not in html
