"""Shared test set-up: factories, the tenant world, and the rules for tests that need servers.

Tests marked `server` need PostgreSQL and Redis (DATABASE_URL=postgres://..., REDIS_URL=redis://...);
`browser` needs Debian's Chromium; `sso` needs Node.js for the real OpenID Connect provider.
Without them those tests are skipped with one summary line; with FLEETDECK_REQUIRE_SERVERS=1
(set by .ci/run) a skip for a missing server, browser or Node is a failure instead.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings

from tests.factories import PASSWORD, MembershipFactory, TeamFactory, UserFactory  # noqa: F401 - PASSWORD re-exported

STRICT = os.environ.get("FLEETDECK_REQUIRE_SERVERS", "") in {"1", "true", "yes"}
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def servers_available() -> str | None:
    """Return why server-backed tests cannot run here, or None when they can."""
    db = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in db:
        return "DATABASE_URL is not a PostgreSQL URL"
    if not os.environ.get("REDIS_URL"):
        return "REDIS_URL is not set"
    return None


def _missing(marker: str) -> str | None:
    if marker == "server":
        return servers_available()
    if marker == "browser":
        return None if CHROMIUM else "no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)"
    if marker == "sso":
        return None if shutil.which("node") and shutil.which("npm") else "Node.js and npm are not installed"
    return None


_skipped: dict[str, int] = {}


def pytest_runtest_setup(item):
    for marker in ("server", "browser", "sso"):
        if item.get_closest_marker(marker) is None:
            continue
        reason = _missing(marker)
        if reason is None:
            continue
        if STRICT:
            pytest.fail(f"FLEETDECK_REQUIRE_SERVERS is set but this {marker} test cannot run: {reason}.", pytrace=False)
        _skipped[reason] = _skipped.get(reason, 0) + 1
        pytest.skip(f"needs {marker}: {reason}")


def pytest_terminal_summary(terminalreporter):
    if _skipped:
        parts = "; ".join(f"{count} because {reason}" for reason, count in _skipped.items())
        terminalreporter.write_line(
            f"Skipped server/browser/SSO tests: {parts}. Set DATABASE_URL, REDIS_URL (and install chromium, node) to run them."
        )


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def _spans_in_the_test_transaction():
    """Store the runtime's spans in the caller's thread, so they land in each test's transaction."""
    from apps.observability import tracing

    tracing.set_export_mode("sync")


@pytest.fixture(autouse=True)
def _fresh_price_cache():
    """Each test builds its own catalog: forget the prices cached by the one before."""
    from apps.observability import ingest, pricing

    pricing.forget()
    ingest.ingest_forget()


class World:
    """Two teams and a user for every role, the cast of the permission matrix."""

    def __init__(self):
        self.team = TeamFactory(slug="payments", name="Payments")
        self.other_team = TeamFactory(slug="support", name="Support")
        self.users = {
            "viewer": UserFactory(username="vera"),
            "operator": UserFactory(username="oscar"),
            "builder": UserFactory(username="ben"),
            "owner": UserFactory(username="olivia"),
            "outsider": UserFactory(username="xavier"),
            "auditor": UserFactory(username="sam", org_role="security_auditor"),
            "admin": UserFactory(
                username="ada", org_role="platform_admin", is_staff=True, is_superuser=True, is_break_glass=True
            ),
        }
        for role in ("viewer", "operator", "builder", "owner"):
            MembershipFactory(user=self.users[role], team=self.team, role=role)
        MembershipFactory(user=self.users["outsider"], team=self.other_team, role="owner")
        from apps.accounts.services import token_create

        builder_token, _ = token_create(actor=self.users["builder"], team=self.team, name="builder-ci", scopes=["read"])
        self.ids = {
            "viewer_membership": self.users["viewer"].memberships.get().pk,
            "builder_token": builder_token.pk,
        }

    def __getitem__(self, role):
        return self.users[role]


@pytest.fixture
def world(db):
    return World()
