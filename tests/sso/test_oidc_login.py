"""Single sign-on end to end: Fleetdeck against a real OpenID Connect provider, nothing mocked.

Each login goes Fleetdeck /oidc/authenticate/ -> provider login form -> Fleetdeck /oidc/callback/,
and Fleetdeck fetches the token, the JWKS and the userinfo from the provider over HTTP.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

from apps.accounts.models import Membership, SsoGroupMapping, User
from apps.audit.models import AuditEvent
from tests.conftest import PASSWORD
from tests.factories import MembershipFactory, TeamFactory, UserFactory
from tests.sso.conftest import CLIENT_ID, POST_LOGOUT_URL

pytestmark = pytest.mark.sso

FAILURE_URL = "/login/?sso=failed"
SSO_FAILED_MESSAGE = "Single sign-on did not complete"
BAD_CALLBACK_MESSAGE = "did not match a sign-in started here"


def events(action: str) -> list[AuditEvent]:
    """Return the audit events with this action, oldest first."""
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def memberships(user: User) -> dict[str, tuple[str, str]]:
    """Return {team slug: (role, source)} for the user's memberships."""
    return {m.team.slug: (m.role, m.source) for m in Membership.objects.filter(user=user).select_related("team")}


def shown_role(response) -> str:
    """Return the role the home page shows for the current team."""
    match = re.search(r'data-testid="home-role">([^<]*)<', response.content.decode())
    assert match, "the home page shows no role"
    return match.group(1).strip()


def assert_signed_out(client) -> None:
    """Check that the client's session is anonymous: the home page sends it to sign in."""
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def assert_sso_failed_page(client, response) -> None:
    """Check that a failed SSO login lands on the sign-in page with an explanation."""
    assert response.status_code == 302
    assert response["Location"] == FAILURE_URL
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert SSO_FAILED_MESSAGE in page.content.decode()


# --- First login -------------------------------------------------------------------------------


def test_first_login_creates_the_user_with_roles_from_groups(client, world, sso):
    """Create the user from the claims, sign them in, and grant the roles their groups name."""
    response = sso.login(client)

    assert response.status_code == 302
    assert response["Location"] == "/"
    user = User.objects.get(sso_subject="alice-1")
    assert (user.username, user.email, user.display_name, user.first_name, user.last_name) == (
        "alice",
        "alice@example.com",
        "Alice Doe",
        "Alice",
        "Doe",
    )
    assert not user.has_usable_password()
    assert memberships(user) == {"payments": ("builder", "sso")}
    assert (user.org_role, user.org_role_source) == ("security_auditor", "sso")

    home = client.get("/")
    assert home.status_code == 200
    assert shown_role(home) == "Builder"
    assert client.get("/audit/").status_code == 200  # the auditor role opens the audit log

    [login] = events("auth.login")
    assert (login.actor_label, login.metadata) == ("alice", {"method": "sso"})
    [created] = events("user.create")
    assert created.after == {"username": "alice", "source": "sso"}
    [added] = events("membership.add")
    assert added.team_slug == "payments"
    assert added.after == {"user": "alice", "role": "builder", "source": "sso"}
    [org_sync] = events("user.org_role_sync")
    assert org_sync.after == {"org_role": "security_auditor"}


def test_login_finds_users_by_subject_never_by_email(client, world, sso):
    """Keep a local account with the same username and email apart, and reuse the SSO user next time."""
    local = UserFactory(username="alice", email="alice@example.com")

    assert sso.login(client)["Location"] == "/"
    client.post("/logout/")
    assert sso.login(client)["Location"] == "/"

    user = User.objects.get(sso_subject="alice-1")
    assert user.pk != local.pk
    assert user.username.startswith("alice-")
    assert memberships(local) == {}
    assert len(events("user.create")) == 1
    assert len(events("auth.login")) == 2


def test_login_keeps_an_org_role_granted_in_fleetdeck(client, world, sso):
    """Leave a locally granted org role alone even when the groups say otherwise."""
    UserFactory(username="alice", sso_subject="alice-1", org_role="platform_admin")

    sso.login(client)

    user = User.objects.get(sso_subject="alice-1")
    assert (user.org_role, user.org_role_source) == ("platform_admin", "local")
    assert memberships(user) == {"payments": ("builder", "sso")}
    assert events("user.org_role_sync") == []


def test_group_mappings_grant_custom_group_names(client, world, sso, oidc_provider):
    """Map group names the organisation already has to a team role and an org role."""
    SsoGroupMapping.objects.create(group="Payments Engineers", team=world.team, role="operator")
    SsoGroupMapping.objects.create(group="Platform Team", team=None, role="platform_admin")
    oidc_provider.set_groups("bob-2", ["Payments Engineers", "Platform Team", "Unmapped Group"])

    sso.login(client, login="bob")

    bob = User.objects.get(sso_subject="bob-2")
    assert memberships(bob) == {"payments": ("operator", "sso")}
    assert (bob.org_role, bob.org_role_source) == ("platform_admin", "sso")
    assert shown_role(client.get("/")) == "Operator"


# --- Re-sync at every login --------------------------------------------------------------------


def test_next_login_resyncs_roles_with_the_provider_groups(client, world, sso, oidc_provider):
    """Change, add and remove SSO memberships to match the new groups; keep local ones."""
    research = TeamFactory(slug="research", name="Research")
    ml = TeamFactory(slug="ml", name="Machine Learning")
    SsoGroupMapping.objects.create(group="ml-engineers", team=ml, role="operator")
    oidc_provider.set_groups("alice-1", ["fleetdeck:payments:viewer", "fleetdeck:support:builder"])
    sso.login(client)
    alice = User.objects.get(sso_subject="alice-1")
    MembershipFactory(user=alice, team=research, role="owner", source="local")
    assert client.get("/teams/support/").status_code == 200
    client.post("/logout/")

    oidc_provider.set_groups(
        "alice-1",
        [
            "fleetdeck:payments:viewer",
            "fleetdeck:payments:owner",  # two groups for one team: the highest role wins
            "fleetdeck:research:viewer",  # a local membership is not overridden by SSO
            "fleetdeck:no-such-team:builder",  # unknown team slugs are ignored
            "fleetdeck:ml:superuser",  # unknown roles are ignored
            "ml-engineers",
        ],
    )
    assert sso.login(client)["Location"] == "/"

    assert memberships(alice) == {
        "payments": ("owner", "sso"),
        "research": ("owner", "local"),
        "ml": ("operator", "sso"),
    }
    assert client.get("/teams/support/").status_code == 404
    assert client.get("/teams/payments/").status_code == 200
    client.post("/teams/switch/", {"team": "payments"})
    assert shown_role(client.get("/")) == "Owner"

    [changed] = events("membership.change_role")
    assert (changed.team_slug, changed.before, changed.after) == ("payments", {"role": "viewer"}, {"role": "owner"})
    [removed] = events("membership.remove")
    assert (removed.team_slug, removed.before["source"]) == ("support", "sso")
    assert [e.team_slug for e in events("membership.add")] == ["payments", "support", "ml"]


def test_leaving_the_auditor_group_removes_the_org_role(client, world, sso, oidc_provider):
    """Drop an SSO-granted org role at the next login once the group is gone at the provider."""
    sso.login(client)
    assert client.get("/teams/support/").status_code == 200  # auditors see every team
    client.post("/logout/")

    oidc_provider.set_groups("alice-1", ["fleetdeck:payments:builder"])
    sso.login(client)

    alice = User.objects.get(sso_subject="alice-1")
    assert alice.org_role == ""
    assert client.get("/teams/support/").status_code == 404
    assert client.get("/audit/").status_code == 403
    assert [e.after for e in events("user.org_role_sync")] == [{"org_role": "security_auditor"}, {"org_role": ""}]


# --- Refused logins ----------------------------------------------------------------------------


def test_deactivated_user_cannot_sign_in(client, world, sso):
    """Refuse an SSO login for an account deactivated in Fleetdeck, whatever the provider says."""
    UserFactory(username="alice", sso_subject="alice-1", is_active=False)

    response = sso.login(client)

    assert_sso_failed_page(client, response)
    assert events("auth.login") == []
    assert len(events("auth.login_failed")) == 1
    assert_signed_out(client)


def test_callback_with_an_unknown_state_is_refused(client, world, sso):
    """Answer 400 with an explanation when the state belongs to no sign-in started in this browser."""
    client.get("/oidc/authenticate/")

    response = client.get("/oidc/callback/", {"code": "stolen-code", "state": "forged-state"})

    assert response.status_code == 400
    assert BAD_CALLBACK_MESSAGE in response.content.decode()
    [failed] = events("auth.login_failed")
    assert failed.outcome == "failure"
    assert failed.metadata["method"] == "sso"
    assert "state" in failed.metadata["reason"]
    assert events("auth.login") == []
    assert_signed_out(client)


def test_callback_without_a_started_login_fails_cleanly(client, world, sso):
    """Send a callback that no sign-in in this browser started back to the sign-in page, audited."""
    response = client.get("/oidc/callback/", {"code": "some-code", "state": "some-state"})

    assert_sso_failed_page(client, response)
    [failed] = events("auth.login_failed")
    assert failed.metadata["method"] == "sso"
    assert_signed_out(client)


@pytest.mark.parametrize("use_pkce", [False, True], ids=["plain", "pkce"])
def test_replayed_code_is_refused_by_the_provider(client, world, sso, settings, use_pkce):
    """Fail the login, without a 500, when an already used code comes back with a fresh state."""
    # Without PKCE the provider has one reason left to refuse the code: it was used already.
    settings.OIDC_USE_PKCE = use_pkce
    consumed = "authorization code already consumed"
    consumed_before = sso.provider.read_log().count(consumed)
    first = sso.authorize(client)
    assert client.get(first)["Location"] == "/"
    old_code = parse_qs(urlsplit(first).query)["code"][0]

    attacker = Client()
    started = attacker.get("/oidc/authenticate/")
    new_state = parse_qs(urlsplit(started["Location"]).query)["state"][0]
    response = attacker.get("/oidc/callback/", {"code": old_code, "state": new_state})

    assert_sso_failed_page(attacker, response)
    [failed] = events("auth.login_failed")
    assert failed.metadata["reason"] == "the provider refused the sign-in (HTTP 400)"
    assert len(events("auth.login")) == 1
    assert_signed_out(attacker)
    if not use_pkce:
        assert sso.provider.read_log().count(consumed) == consumed_before + 1


def test_same_callback_twice_is_refused(client, world, sso):
    """Refuse a callback URL used a second time: its state was spent by the first use."""
    callback = sso.authorize(client)
    assert client.get(callback)["Location"] == "/"
    client.post("/logout/")
    client.get("/oidc/authenticate/")  # a new sign-in in the same browser

    response = client.get(callback)

    assert response.status_code == 400
    assert len(events("auth.login")) == 1
    assert len(events("auth.login_failed")) == 1
    assert_signed_out(client)


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("OIDC_RP_EXPECTED_AUDIENCE", "another-application", "audience"),
        ("OIDC_OP_ISSUER", "https://login.attacker.example", "issuer"),
    ],
)
def test_id_token_for_someone_else_is_refused(client, world, sso, settings, setting, value, reason):
    """Refuse an ID token whose audience or issuer is not the expected one, with a 400 page."""
    setattr(settings, setting, value)

    response = sso.login(client)

    assert response.status_code == 400
    assert BAD_CALLBACK_MESSAGE in response.content.decode()
    assert not User.objects.filter(sso_subject="alice-1").exists()
    [failed] = events("auth.login_failed")
    assert reason in failed.metadata["reason"].lower()
    assert_signed_out(client)


def test_the_configured_issuer_is_accepted(client, world, sso, settings, oidc_provider):
    """Accept ID tokens from the issuer named in OIDC_OP_ISSUER."""
    settings.OIDC_OP_ISSUER = oidc_provider.issuer
    settings.OIDC_RP_EXPECTED_AUDIENCE = CLIENT_ID

    assert sso.login(client)["Location"] == "/"
    assert client.get("/").status_code == 200


def test_provider_error_ends_in_a_failed_login(client, world, sso):
    """Turn the provider's access_denied into the sign-in page with a message, and audit it."""
    callback = sso.authorize(client, cancel=True)
    query = parse_qs(urlsplit(callback).query)
    assert query["error"] == ["access_denied"]

    response = client.get(callback)

    assert_sso_failed_page(client, response)
    [failed] = events("auth.login_failed")
    assert failed.metadata["method"] == "sso"
    assert failed.metadata["reason"] == "End-User aborted interaction"
    assert_signed_out(client)
    # The state died with the error: a code sent with it later is refused.
    later = client.get("/oidc/callback/", {"code": "late-code", "state": query["state"][0]})
    assert later.status_code == 400


def test_callback_answers_404_when_sso_is_not_configured(client, world, settings):
    """Hide the SSO callback when OIDC is not configured."""
    settings.OIDC_ENABLED = False

    assert client.get("/oidc/callback/", {"code": "c", "state": "s"}).status_code == 404


def test_authenticate_answers_404_when_sso_is_not_configured(world, settings):
    """Answer 404 on /oidc/authenticate/ when OIDC is not configured, not a server error."""
    settings.OIDC_ENABLED = False

    response = Client(raise_request_exception=False).get("/oidc/authenticate/")

    assert response.status_code == 404


# --- Logout ------------------------------------------------------------------------------------


def test_logout_ends_the_session_here_and_at_the_provider(client, world, sso, oidc_provider):
    """Sign out locally, then send the browser to the provider's end-session page with the ID token."""
    browser = requests.Session()
    sso.login(client, browser=browser)
    id_token = client.session["oidc_id_token"]

    response = client.post("/logout/")

    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == oidc_provider.end_session_endpoint
    params = parse_qs(target.query)
    assert params["id_token_hint"] == [id_token]
    assert params["post_logout_redirect_uri"] == [POST_LOGOUT_URL]
    assert params["client_id"] == [CLIENT_ID]
    assert_signed_out(client)
    [logout] = events("auth.logout")
    assert logout.actor_label == "alice"
    # The provider accepts the hint and sends the browser back to Fleetdeck's sign-in page.
    assert oidc_provider.logout(browser, response["Location"]).startswith(POST_LOGOUT_URL)


def test_logout_of_a_password_user_stays_here(client, world, sso):
    """Send a password user back to the sign-in page: they have no provider session to end."""
    client.force_login(world["viewer"], backend="apps.accounts.backends.LocalPasswordBackend")

    response = client.post("/logout/")

    assert response["Location"] == "/login/"
    assert_signed_out(client)
    assert len(events("auth.logout")) == 1


# --- Password login beside SSO -----------------------------------------------------------------


def test_password_login_switched_off_is_refused(client, world, settings):
    """Refuse every password sign-in with 403 and point to single sign-on."""
    settings.FLEETDECK_PASSWORD_LOGIN = "off"

    response = client.post("/login/", {"username": "ada", "password": PASSWORD})

    assert response.status_code == 403
    assert "Password sign-in is switched off here: use single sign-on." in response.content.decode()
    assert_signed_out(client)


def test_break_glass_mode_admits_only_break_glass_accounts(client, world, settings):
    """Let only accounts marked break-glass sign in with a password."""
    settings.FLEETDECK_PASSWORD_LOGIN = "break-glass"

    refused = client.post("/login/", {"username": "vera", "password": PASSWORD})
    assert refused.status_code == 400
    assert "this account must use single sign-on" in refused.content.decode()
    assert_signed_out(client)
    [failed] = events("auth.login_failed")
    assert failed.metadata["username"] == "vera"

    admitted = client.post("/login/", {"username": "ada", "password": PASSWORD})
    assert admitted.status_code == 302
    assert client.get("/").status_code == 200
    [login] = events("auth.login")
    assert (login.actor_label, login.metadata) == ("ada", {"method": "password"})


def test_sso_users_have_no_password_to_sign_in_with(client, world, sso, settings):
    """Refuse a password sign-in for an account created by SSO, even when all passwords are allowed."""
    settings.FLEETDECK_PASSWORD_LOGIN = "all"
    sso.login(client)
    client.post("/logout/")

    response = client.post("/login/", {"username": "alice", "password": ""})
    assert response.status_code == 400
    response = client.post("/login/", {"username": "alice", "password": "password"})
    assert response.status_code == 400
    assert_signed_out(client)
