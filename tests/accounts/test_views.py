"""Sign-in, throttling, teams and members pages: what a person sees, and clear errors on bad input."""

import pytest

from apps.accounts.models import Membership, Team
from apps.audit.models import AuditEvent
from tests.factories import PASSWORD


def test_failed_login_is_audited_and_says_what_to_do(client, world):
    response = client.post("/login/", {"username": "vera", "password": "wrong"}, REMOTE_ADDR="10.0.0.9")
    assert response.status_code == 400
    assert "Wrong username or password" in response.content.decode()
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.metadata["username"] == "vera" and event.ip == "10.0.0.9" and event.outcome == "failure"


def test_password_login_is_throttled_after_repeated_failures(client, world, settings):
    settings.FLEETDECK_LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        client.post("/login/", {"username": "vera", "password": "wrong"})
    response = client.post("/login/", {"username": "vera", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Another person from another address is not locked out by vera's guesses.
    other = client.post("/login/", {"username": "ben", "password": PASSWORD}, REMOTE_ADDR="10.9.9.9")
    assert other.status_code == 302


def test_login_and_logout_are_audited(client, world):
    assert client.post("/login/", {"username": "vera", "password": PASSWORD}).status_code == 302
    assert AuditEvent.objects.filter(action="auth.login", actor_label="vera", metadata__method="password").exists()
    client.post("/logout/")
    assert AuditEvent.objects.filter(action="auth.logout", actor_label="vera").exists()
    assert client.get("/").status_code == 302


def test_login_never_redirects_off_site(client, world):
    response = client.post(
        "/login/?next=https://evil.example/",
        {"username": "vera", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/"


@pytest.mark.parametrize(
    "data",
    [
        {"username": "u" * 151, "password": "x"},
        {"username": "", "password": ""},
        {"username": "vera", "password": "p" * 5000},
    ],
)
def test_oversized_or_empty_login_fields_answer_400(client, world, data):
    response = client.post("/login/", data)
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "update", "name": "x" * 101, "description": "", "monthly_budget": "1"}, "at most 100 characters"),
        ({"action": "update", "name": "P", "description": "", "monthly_budget": "-5"}, "greater than or equal to 0"),
        ({"action": "update", "name": "P", "description": "", "monthly_budget": "lots"}, "Enter a number"),
        ({"action": "add_member", "username": "ghost", "role": "viewer"}, "No active user"),
        ({"action": "add_member", "username": "vera", "role": "viewer"}, "already a member"),
        ({"action": "add_member", "username": "ben", "role": "emperor"}, "Select a valid choice"),
        ({"action": "change_role", "membership": "abc", "role": "viewer"}, "Not found"),
    ],
)
def test_bad_team_forms_explain_and_change_nothing(client, world, data, message):
    client.force_login(world["owner"])
    before = (Team.objects.get(slug="payments").name, Membership.objects.count())
    response = client.post("/teams/payments/", data)
    assert response.status_code in (400, 404)
    assert message in response.content.decode()
    assert (Team.objects.get(slug="payments").name, Membership.objects.count()) == before


def test_the_last_owner_cannot_leave(client, world):
    client.force_login(world["owner"])
    own = world["owner"].memberships.get()
    response = client.post("/teams/payments/", {"action": "remove_member", "membership": own.pk})
    assert response.status_code == 400
    assert "at least one owner" in response.content.decode()
    assert Membership.objects.filter(pk=own.pk).exists()


def test_owner_changes_a_role_and_the_member_sees_it(client, world):
    client.force_login(world["owner"])
    viewer = world["viewer"].memberships.get()
    assert (
        client.post(
            "/teams/payments/", {"action": "change_role", "membership": viewer.pk, "role": "builder"}
        ).status_code
        == 302
    )
    client.force_login(world["viewer"])
    assert 'data-testid="role">Builder<' in client.get("/").content.decode()


def test_membership_of_another_team_cannot_be_changed_through_this_one(client, world):
    client.force_login(world["admin"])
    other = world["outsider"].memberships.get()
    response = client.post("/teams/payments/", {"action": "remove_member", "membership": other.pk})
    assert response.status_code == 400
    assert Membership.objects.filter(pk=other.pk).exists()


def test_every_area_of_the_design_is_in_the_navigation(client, world):
    from apps.core.context_processors import NAV, navigation

    client.force_login(world["viewer"])
    html = client.get("/").content.decode()
    labels = [label for _, items in NAV for label, _, _ in items]
    assert len(labels) == 18  # Observe: fleet dashboard, team costs, traces, alerts, evals, gateway
    for _, items in navigation():
        for label, href in items:
            assert f'<a href="{href}">{label}</a>' in html
            assert client.get(href).status_code == 200, href
    assert "not built yet" in client.get("/area/evals/").content.decode()


def test_pages_show_the_team_and_the_role(client, world):
    client.force_login(world["operator"])
    html = client.get("/").content.decode()
    assert 'data-testid="role">Operator<' in html
    assert "Payments" in html
    client.force_login(world["auditor"])
    assert 'data-testid="role">Security auditor<' in client.get("/").content.decode()
