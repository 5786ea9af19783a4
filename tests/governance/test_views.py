"""Secret pages: metadata only, values typed once into a password field and never shown again."""

import pytest

from apps.audit.models import AuditEvent
from apps.governance.models import Secret, SecretGrant
from apps.governance.services import secret_create, secret_grant
from tests.governance.conftest import VALUE


def test_the_list_shows_the_current_team_and_org_secrets_only_to_admins_and_auditors(client, world, team_secret):
    secret_create(actor=world["admin"], team=None, name="openai-key", value="v")
    secret_create(actor=world["outsider"], team=world.other_team, name="support-key", value="v")
    client.force_login(world["viewer"])
    html = client.get("/secrets/").content.decode()
    assert 'data-secret="crm-api-key"' in html and "support-key" not in html and "openai-key" not in html
    assert "New secret" not in html
    client.force_login(world["auditor"])
    html = client.get("/secrets/").content.decode()
    assert 'data-secret="openai-key"' in html and 'data-secret="crm-api-key"' in html
    assert "New secret" not in html


def test_owner_creates_a_secret_and_sees_only_its_metadata(client, world):
    client.force_login(world["owner"])
    page = client.get("/secrets/new/").content.decode()
    assert 'type="password"' in page and 'value="org"' not in page
    response = client.post(
        "/secrets/new/", {"scope": "team", "name": "crm-api-key", "description": "CRM", "value": VALUE}
    )
    secret = Secret.objects.get(name="crm-api-key")
    assert response.status_code == 302 and response["Location"] == f"/secrets/{secret.pk}/"
    html = client.get(response["Location"]).content.decode()
    assert "stored encrypted" in html and "never shown" in html and VALUE not in html
    assert secret.team == world.team


def test_a_refused_create_never_echoes_the_value(client, world, team_secret):
    client.force_login(world["owner"])
    for name in ("Bad Name", "crm-api-key"):
        response = client.post("/secrets/new/", {"scope": "team", "name": name, "value": VALUE})
        html = response.content.decode()
        assert response.status_code == 400 and VALUE not in html
    assert "already has a secret named" in html
    response = client.post("/secrets/new/", {"scope": "team", "name": "empty", "value": ""})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert Secret.objects.count() == 1


def test_admin_creates_an_organisation_secret(client, world):
    client.force_login(world["admin"])
    assert 'value="org"' in client.get("/secrets/new/").content.decode()
    client.post("/secrets/new/", {"scope": "org", "name": "openai-key", "value": "sk-1"})
    assert Secret.objects.get(name="openai-key").team is None


def test_the_outsider_creates_in_its_own_current_team(client, world):
    client.force_login(world["outsider"])
    client.post("/secrets/new/", {"scope": "team", "name": "zendesk", "value": "z"})
    assert Secret.objects.get(name="zendesk").team == world.other_team


def test_owner_grants_sets_a_new_value_and_deletes_from_the_detail_page(client, world, team_secret, tool, agent):
    client.force_login(world["owner"])
    url = f"/secrets/{team_secret.pk}/"
    html = client.get(url).content.decode()
    assert f'value="tool:{tool.pk}"' in html and f'value="agent:{agent.pk}"' in html and "Set a new value" in html

    assert client.post(f"{url}grants/", {"grantee": f"tool:{tool.pk}"}).status_code == 302
    html = client.get(url).content.decode()
    assert "tool payments/crm-lookup" in html and f'value="tool:{tool.pk}"' not in html
    response = client.post(f"{url}grants/", {"grantee": "tool:999999"})
    assert response.status_code == 400 and "no tool #999999" in response.content.decode()

    response = client.post(f"{url}value/", {"value": ""})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    old = Secret.objects.get(pk=team_secret.pk).ciphertext
    assert client.post(f"{url}value/", {"value": "new-value"}).status_code == 302
    assert Secret.objects.get(pk=team_secret.pk).ciphertext != old

    assert client.post(f"{url}edit/", {"description": "x" * 301}).status_code == 400
    assert client.post(f"{url}edit/", {"description": "Rotated monthly"}).status_code == 302
    assert Secret.objects.get(pk=team_secret.pk).description == "Rotated monthly"

    response = client.post(f"{url}delete/")
    assert response.status_code == 400 and "revoke those grants first" in response.content.decode()
    grant = SecretGrant.objects.get()
    assert client.post(f"{url}grants/{grant.pk}/revoke/").status_code == 302
    assert client.post(f"{url}delete/").status_code == 302
    assert not Secret.objects.exists()
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="secret.").order_by("seq")] == [
        "secret.create",
        "secret.grant",
        "secret.set_value",
        "secret.update",
        "secret.revoke_grant",
        "secret.delete",
    ]


def test_members_see_metadata_and_usage_but_no_forms(client, world, team_secret, tool):
    secret_grant(actor=world["owner"], secret=team_secret, grantee_type="tool", grantee=tool)
    client.force_login(world["builder"])
    html = client.get(f"/secrets/{team_secret.pk}/").content.decode()
    assert "tool payments/crm-lookup" in html and "Set a new value" not in html and "Revoke" not in html
    assert client.get(f"/secrets/{team_secret.pk}/delete/").status_code == 403


def test_another_teams_secret_is_a_404(client, world, team_secret):
    client.force_login(world["outsider"])
    assert client.get(f"/secrets/{team_secret.pk}/").status_code == 404
    assert client.post(f"/secrets/{team_secret.pk}/value/", {"value": "x"}).status_code == 404


@pytest.mark.parametrize("path", ["grants/", "value/", "edit/"])
def test_post_only_urls_refuse_get(client, world, team_secret, path):
    client.force_login(world["owner"])
    assert client.get(f"/secrets/{team_secret.pk}/{path}").status_code == 405
