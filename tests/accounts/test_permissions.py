"""Object grants (django-guardian) beyond team roles, and the roles' reach."""

from apps.accounts import services
from apps.accounts.permissions import has_perm
from apps.audit.models import AuditEvent


def test_an_object_grant_lets_an_outsider_see_one_team(client, world):
    outsider = world["outsider"]
    client.force_login(outsider)
    assert client.get("/teams/payments/").status_code == 404
    client.force_login(world["owner"])
    response = client.post("/teams/payments/", {"action": "add_grant", "username": "xavier", "permission": "team.view"})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="grant.add", after__user="xavier").exists()
    client.force_login(outsider)
    assert client.get("/teams/payments/").status_code == 200
    assert [t["slug"] for t in client.get("/api/v1/teams/").json()["results"]] == ["payments", "support"]
    # Seeing is all the grant gives: the outsider still cannot change the team.
    assert not has_perm(outsider, "team.change", world.team)

    client.force_login(world["owner"])
    client.post("/teams/payments/", {"action": "remove_grant", "username": "xavier", "permission": "team.view"})
    client.force_login(outsider)
    assert client.get("/teams/payments/").status_code == 404


def test_a_grant_of_member_management_works_through_the_api(client, world):
    client.force_login(world["owner"])
    added = client.post(
        "/api/v1/teams/payments/grants/",
        {"user": "oscar", "permission": "membership.manage"},
        content_type="application/json",
    )
    assert added.status_code == 200 and {"user": "oscar", "permission": "membership.manage"} in added.json()
    operator = world["operator"]
    services.membership_change_role(actor=operator, membership=world["viewer"].memberships.get(), role="builder")
    assert world["viewer"].memberships.get().role == "builder"


def test_only_grantable_permissions_can_be_granted(client, world):
    client.force_login(world["owner"])
    response = client.post(
        "/api/v1/teams/payments/grants/", {"user": "oscar", "permission": "audit.view"}, content_type="application/json"
    )
    assert response.status_code == 400 and "cannot be granted" in response.json()["permission"][0]


def test_security_auditor_reads_everything_and_changes_nothing(world):
    auditor = world["auditor"]
    assert has_perm(auditor, "team.view", world.other_team)
    assert has_perm(auditor, "audit.view")
    for perm in ("team.change", "membership.manage", "token.manage", "team.create"):
        assert not has_perm(auditor, perm, world.team)
