"""Fixtures for the SSO tests: one real OpenID Connect provider, and Fleetdeck configured to use it.

The provider process (tests/sso/provider.py) starts once per test session; each test gets it back
with the default accounts, so groups changed by one test never leak into the next. Fleetdeck runs
in-process behind the Django test client, while its token, userinfo and JWKS calls reach the
provider over real HTTP.
"""

from __future__ import annotations

import copy
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import STRICT
from tests.sso.provider import GROUPS_SCOPE, OIDCProvider, OIDCProviderUnavailable, start_oidc_provider

CALLBACK_URL = "http://testserver/oidc/callback/"
POST_LOGOUT_URL = "http://testserver/login/"
CLIENT_ID = "fleetdeck"
CLIENT_SECRET = "fleetdeck-test-secret"

ACCOUNTS = [
    {
        "sub": "alice-1",
        "email": "alice@example.com",
        "name": "Alice Doe",
        "given_name": "Alice",
        "family_name": "Doe",
        "preferred_username": "alice",
        "groups": ["fleetdeck:payments:builder", "fleetdeck:security-auditor"],
    },
    {
        "sub": "bob-2",
        "email": "bob@example.com",
        "name": "Bob Roe",
        "given_name": "Bob",
        "family_name": "Roe",
        "preferred_username": "bob",
        "groups": [],
    },
]
CLIENTS = [
    {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [CALLBACK_URL],
        "post_logout_redirect_uris": [POST_LOGOUT_URL],
    }
]


class SsoFlow:
    """Drive Fleetdeck's SSO login through the real provider, the way a browser would."""

    def __init__(self, provider: OIDCProvider) -> None:
        """Remember the provider the logins go through."""
        self.provider = provider

    def authorize(
        self, client, *, login: str = "alice", cancel: bool = False, browser: requests.Session | None = None
    ) -> str:
        """Start a login at Fleetdeck, sign in at the provider, and return the callback path with its query.

        ``browser`` holds the provider's cookies; a fresh one (the default) always meets the login form.
        """
        response = client.get("/oidc/authenticate/")
        assert response.status_code == 302, response
        callback = self.provider.login(
            browser or requests.Session(), response["Location"], login=login, redirect_uri=CALLBACK_URL, cancel=cancel
        )
        parts = urlsplit(callback)
        return f"{parts.path}?{parts.query}"

    def login(self, client, *, login: str = "alice", browser: requests.Session | None = None):
        """Sign in through the provider and return Fleetdeck's answer to the callback."""
        return client.get(self.authorize(client, login=login, browser=browser))


@pytest.fixture(scope="session")
def oidc_provider_process():
    """Start the provider once for the whole session and stop it at the end."""
    try:
        provider = start_oidc_provider(ACCOUNTS, CLIENTS)
    except OIDCProviderUnavailable as exc:
        if STRICT:
            pytest.fail(f"FLEETDECK_REQUIRE_SERVERS is set but the OIDC provider cannot run: {exc}", pytrace=False)
        pytest.skip(f"needs sso: {exc}")
    with provider:
        yield provider


@pytest.fixture
def oidc_provider(oidc_provider_process):
    """Return the running provider with the default accounts restored."""
    oidc_provider_process.set_accounts(copy.deepcopy(ACCOUNTS))
    return oidc_provider_process


@pytest.fixture
def sso_settings(settings, oidc_provider):
    """Point Fleetdeck's OIDC settings at the provider and put the SSO backend first."""
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    settings.OIDC_RP_SCOPES = GROUPS_SCOPE
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = oidc_provider.authorization_endpoint
    settings.OIDC_OP_TOKEN_ENDPOINT = oidc_provider.token_endpoint
    settings.OIDC_OP_USER_ENDPOINT = oidc_provider.userinfo_endpoint
    settings.OIDC_OP_JWKS_ENDPOINT = oidc_provider.jwks_uri
    settings.OIDC_OP_LOGOUT_URL = oidc_provider.end_session_endpoint
    settings.OIDC_STORE_ID_TOKEN = True
    settings.OIDC_RP_EXPECTED_AUDIENCE = None
    settings.OIDC_OP_ISSUER = None
    settings.AUTHENTICATION_BACKENDS = [
        "apps.accounts.oidc.FleetdeckOIDCBackend",
        *(b for b in settings.AUTHENTICATION_BACKENDS if b != "apps.accounts.oidc.FleetdeckOIDCBackend"),
    ]
    return settings


@pytest.fixture
def sso(sso_settings, oidc_provider) -> SsoFlow:
    """Return a driver for SSO logins, with Fleetdeck configured for the provider."""
    return SsoFlow(oidc_provider)
