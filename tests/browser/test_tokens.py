"""API tokens from the browser: create one, see its secret once, use it, revoke it."""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _me(live_server, secret: str) -> requests.Response:
    with requests.Session() as http:
        http.trust_env = False  # talk to the live server directly, whatever proxy the machine has
        return http.get(f"{live_server.url}/api/v1/me/", headers={"Authorization": f"Bearer {secret}"}, timeout=5)


def test_token_is_shown_once_works_and_stops_working_when_revoked(world, page, sign_in, live_server):
    """Create a token, show its secret once, call the API with it, then revoke it."""
    sign_in("ben")
    page.goto("/tokens/")
    form = page.locator("#token-form")
    form.locator("#id_name").fill("ci-deploy")
    form.locator("input[name=scopes][value=read]").check()
    form.locator("input[name=scopes][value=run]").check()
    expires = (timezone.now() + timedelta(days=30)).replace(hour=12, minute=0)
    form.locator("#id_expires_at").fill(expires.strftime("%Y-%m-%dT%H:%M"))
    with page.expect_navigation() as created:
        form.get_by_role("button", name="Create token").click()

    # The page holding the secret must not be kept by the browser or a proxy.
    assert "no-store" in created.value.headers["cache-control"]
    expect(page.locator("#created-token")).to_contain_text("shown only once")
    secret = page.locator("[data-testid=new-token]").inner_text().strip()
    row = page.locator('tr[data-token-name="ci-deploy"]')
    prefix = row.locator("td code").inner_text().rstrip("…")
    assert secret.startswith(prefix) and len(secret) > len(prefix)
    expect(row).to_contain_text("read, run")
    expect(row).to_contain_text(expires.strftime("%Y-%m-%d 12:00"))
    expect(row.locator("td.status-active")).to_have_text("active")
    assert secret not in row.inner_text()

    page.goto("/tokens/")
    expect(page.locator('tr[data-token-name="ci-deploy"]')).to_be_visible()
    expect(page.locator("[data-testid=new-token]")).to_have_count(0)
    assert secret not in page.content()

    response = _me(live_server, secret)
    assert response.status_code == 200
    assert response.json()["username"] == "ben"

    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".messages")).to_contain_text("Token ci-deploy revoked")
    expect(row.locator("td.status-revoked")).to_have_text("revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)

    response = _me(live_server, secret)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_token_form_offers_only_the_scopes_the_role_allows(world, page, sign_in):
    """Refuse a scope beyond the user's role and keep the form with the reason."""
    sign_in("vera")
    page.goto("/tokens/")
    expect(page.locator("#token-form")).to_contain_text("Your role here allows: read.")
    page.fill("#id_name", "too-much")
    page.check("input[name=scopes][value=write]")
    page.get_by_role("button", name="Create token").click()

    expect(page.locator("#token-form")).to_contain_text("does not allow the scope write")
    expect(page.locator("[data-testid=new-token]")).to_have_count(0)
    expect(page.locator('tr[data-token-name="too-much"]')).to_have_count(0)
