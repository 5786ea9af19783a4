"""Secret services: who may manage them, what is refused, grants, reads for use and resolution."""

import pytest

from apps.audit.models import AuditEvent
from apps.core.exceptions import AccessDenied, ServiceError
from apps.governance.models import Secret, SecretGrant
from apps.governance.selectors import secret_list
from apps.governance.services import (
    MAX_VALUE_BYTES,
    SecretNotGranted,
    secret_create,
    secret_delete,
    secret_grant,
    secret_read_for_use,
    secret_resolve,
    secret_revoke_grant,
    secret_set_value,
    secret_update,
)
from tests.governance.conftest import VALUE


def test_team_owners_manage_team_secrets_and_admins_organisation_secrets(world):
    for role in ("viewer", "operator", "builder", "auditor", "outsider"):
        with pytest.raises(AccessDenied):
            secret_create(actor=world[role], team=world.team, name="k", value="v")
    secret = secret_create(actor=world["owner"], team=world.team, name="k", value="v", description="CRM key")
    assert secret.created_by == world["owner"] and secret.description == "CRM key"
    event = AuditEvent.objects.get(action="secret.create")
    assert event.team_slug == "payments" and event.after == {"name": "k", "team": "payments", "description": "CRM key"}
    with pytest.raises(AccessDenied):
        secret_create(actor=world["owner"], team=None, name="org-key", value="v")
    assert secret_create(actor=world["admin"], team=None, name="org-key", value="v").team is None


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("Bad Name", "v", "name"),
        ("", "v", "name"),
        ("x" * 64, "v", "name"),
        ("ok", "", "value"),
        ("ok", "   ", "value"),
        ("ok", "é" * (MAX_VALUE_BYTES // 2 + 1), "value"),
        ("crm-api-key", "v", "name"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(world, team_secret, name, value, field):
    before = (Secret.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ServiceError) as exc:
        secret_create(actor=world["owner"], team=world.team, name=name, value=value)
    assert exc.value.field == field
    assert (Secret.objects.count(), AuditEvent.objects.count()) == before
    if field == "value" and value.strip():
        assert "65,536 bytes" in exc.value.message and "é" not in exc.value.message


def test_a_value_of_exactly_64_kib_is_accepted(world):
    secret_create(actor=world["owner"], team=world.team, name="big", value="x" * MAX_VALUE_BYTES)


def test_names_are_unique_per_team_not_across_teams(world, team_secret):
    secret_create(actor=world["outsider"], team=world.other_team, name="crm-api-key", value="other")
    secret_create(actor=world["admin"], team=None, name="crm-api-key", value="org")
    with pytest.raises(ServiceError, match="already has a secret named 'crm-api-key'"):
        secret_create(actor=world["admin"], team=None, name="crm-api-key", value="again")


def test_secret_resolve_prefers_the_team_then_the_organisation_never_another_team(world, team_secret):
    org = secret_create(actor=world["admin"], team=None, name="slack-token", value="o")
    other = secret_create(actor=world["outsider"], team=world.other_team, name="support-only", value="s")
    assert secret_resolve(team=world.team, name="crm-api-key") == team_secret
    assert secret_resolve(team=world.team, name="slack-token") == org
    shadow = secret_create(actor=world["owner"], team=world.team, name="slack-token", value="t")
    assert secret_resolve(team=world.team, name="slack-token") == shadow
    with pytest.raises(ServiceError) as exc:
        secret_resolve(team=world.team, name=other.name, field="spec.tools.0.secret")
    assert exc.value.field == "spec.tools.0.secret" and "no secret 'support-only' in team payments" in exc.value.message


def test_grants_stay_within_the_team_and_providers_need_org_secrets(world, team_secret, tool, other_tool):
    from apps.catalog.models import Provider

    provider = Provider.objects.create(
        name="openai", display_name="OpenAI", kind="openai_compatible", base_url="http://x"
    )
    with pytest.raises(AccessDenied):
        secret_grant(actor=world["builder"], secret=team_secret, grantee_type="tool", grantee=tool)
    with pytest.raises(ServiceError) as exc:
        secret_grant(actor=world["owner"], secret=team_secret, grantee_type="tool", grantee=other_tool)
    assert exc.value.field == "grantee_id" and "another team" in exc.value.message
    with pytest.raises(ServiceError) as exc:
        secret_grant(actor=world["admin"], secret=team_secret, grantee_type="provider", grantee=provider)
    assert exc.value.field == "grantee_type"
    with pytest.raises(ServiceError) as exc:
        secret_grant(actor=world["owner"], secret=team_secret, grantee_type="agent", grantee=tool)
    assert exc.value.field == "grantee_type"
    grant = secret_grant(actor=world["owner"], secret=team_secret, grantee_type="tool", grantee=tool)
    event = AuditEvent.objects.get(action="secret.grant")
    assert event.after == {"grantee_type": "tool", "grantee_id": tool.pk, "grantee": "tool payments/crm-lookup"}
    with pytest.raises(ServiceError, match="already granted"):
        secret_grant(actor=world["owner"], secret=team_secret, grantee_type="tool", grantee=tool)
    assert grant.created_by == world["owner"]


def test_read_for_use_needs_a_grant_and_is_audited_without_the_value(world, team_secret, tool, agent):
    with pytest.raises(SecretNotGranted) as exc:
        secret_read_for_use(secret=team_secret, grantee_type="tool", grantee_id=tool.pk, purpose="run 12 step 3")
    assert exc.value.field == "secret" and VALUE not in exc.value.message
    denied = AuditEvent.objects.get(action="secret.read", outcome="denied")
    assert denied.metadata["grantee_id"] == tool.pk and denied.actor_label == f"tool:{tool.pk}"

    secret_grant(actor=world["owner"], secret=team_secret, grantee_type="tool", grantee=tool)
    value = secret_read_for_use(secret=team_secret, grantee_type="tool", grantee_id=tool.pk, purpose="run 12 step 3")
    assert value == VALUE
    team_secret.refresh_from_db()
    assert team_secret.last_used_at is not None and team_secret.last_used_by == "tool payments/crm-lookup"
    read = AuditEvent.objects.get(action="secret.read", outcome="success")
    assert read.metadata == {
        "grantee_type": "tool",
        "grantee_id": tool.pk,
        "purpose": "run 12 step 3",
        "grantee": "tool payments/crm-lookup",
    }
    # A grant to a tool is not a grant to an agent.
    with pytest.raises(SecretNotGranted):
        secret_read_for_use(secret=team_secret, grantee_type="agent", grantee_id=agent.pk, purpose="x")


def test_set_value_replaces_the_value_and_keeps_grants(world, team_secret, tool):
    secret_grant(actor=world["owner"], secret=team_secret, grantee_type="tool", grantee=tool)
    old_rotated = team_secret.rotated_at
    with pytest.raises(AccessDenied):
        secret_set_value(actor=world["builder"], secret=team_secret, value="new")
    with pytest.raises(ServiceError) as exc:
        secret_set_value(actor=world["owner"], secret=team_secret, value="")
    assert exc.value.field == "value"
    secret_set_value(actor=world["owner"], secret=team_secret, value="rotated-value")
    assert team_secret.rotated_at > old_rotated
    assert (
        secret_read_for_use(secret=team_secret, grantee_type="tool", grantee_id=tool.pk, purpose="t") == "rotated-value"
    )
    event = AuditEvent.objects.get(action="secret.set_value")
    assert set(event.after) == {"rotated_at"}


def test_delete_is_refused_while_granted(world, team_secret, tool):
    grant = secret_grant(actor=world["owner"], secret=team_secret, grantee_type="tool", grantee=tool)
    with pytest.raises(ServiceError, match="still granted to tool payments/crm-lookup: revoke those grants first"):
        secret_delete(actor=world["owner"], secret=team_secret)
    with pytest.raises(AccessDenied):
        secret_revoke_grant(actor=world["viewer"], grant=grant)
    secret_revoke_grant(actor=world["owner"], grant=grant)
    assert AuditEvent.objects.get(action="secret.revoke_grant").before["grantee"] == "tool payments/crm-lookup"
    secret_delete(actor=world["owner"], secret=team_secret)
    assert not Secret.objects.exists()
    assert AuditEvent.objects.get(action="secret.delete").before["name"] == "crm-api-key"


def test_update_changes_only_the_description(world, team_secret):
    with pytest.raises(ServiceError) as exc:
        secret_update(actor=world["owner"], secret=team_secret, description="x" * 301)
    assert exc.value.field == "description"
    secret_update(actor=world["owner"], secret=team_secret, description="The CRM's key")
    event = AuditEvent.objects.get(action="secret.update")
    assert event.before["description"] == "CRM" and event.after["description"] == "The CRM's key"


def test_grants_to_deleted_objects_are_labelled_as_such(world, team_secret, tool):
    secret_grant(actor=world["owner"], secret=team_secret, grantee_type="tool", grantee=tool)
    pk = tool.pk
    tool.delete()
    assert SecretGrant.objects.get().grantee_id == pk
    with pytest.raises(ServiceError, match=f"tool #{pk} \\(deleted\\)"):
        secret_delete(actor=world["owner"], secret=team_secret)


def test_visibility_team_members_see_their_team_org_secrets_only_admins_and_auditors(world, team_secret):
    org = secret_create(actor=world["admin"], team=None, name="org-key", value="v")
    other = secret_create(actor=world["outsider"], team=world.other_team, name="s", value="v")
    assert set(secret_list(user=world["viewer"])) == {team_secret}
    assert set(secret_list(user=world["outsider"])) == {other}
    assert set(secret_list(user=world["auditor"])) == {team_secret, org, other}
    assert set(secret_list(user=world["admin"], scope="org")) == {org}
