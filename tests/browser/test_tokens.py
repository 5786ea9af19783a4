"""API tokens from the browser: create one, see its secret once, use it, revoke it."""

import pytest
import requests
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
    form.get_by_role("button", name="Create token").click()

    secret = page.locator("[data-testid=new-token]").inner_text().strip()
    assert len(secret) >= 20
    row = page.locator('tr[data-token-name="ci-deploy"]')
    expect(row).to_contain_text("read, run")
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
