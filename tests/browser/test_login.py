"""Password sign-in as a person does it: the login form, the error, the landing page."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_wrong_password_shows_an_error_and_stays_on_login(world, page, sign_in, live_server):
    """Refuse a wrong password with a visible error, keeping the user on the login page."""
    sign_in("vera", password="not-the-password")

    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    expect(page).to_have_url(f"{live_server.url}/login/")
    expect(page.locator("#id_username")).to_have_value("vera")
    expect(page.locator("[data-testid=username]")).to_have_count(0)


def test_right_password_lands_on_home_with_name_and_role(world, page, sign_in, live_server):
    """Sign the user in and show who they are and their role on the home page."""
    sign_in("vera")

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("[data-testid=username]")).to_have_text("vera")
    expect(page.locator("[data-testid=role]")).to_have_text("Viewer")


def test_pages_style_themselves_from_the_server_only(world, page, sign_in, traffic):
    """Load app.css and app.js from the live server and style the page with them."""
    sign_in("vera")
    expect(page.locator("[data-testid=username]")).to_have_text("vera")

    assert traffic.loaded("/static/core/app.css")
    assert traffic.loaded("/static/core/app.js")
    # The sidebar is dark only when app.css applied: a user sees the styled shell, not bare HTML.
    expect(page.locator("aside.sidebar")).to_have_css("background-color", "rgb(20, 26, 42)")
    expect(page.locator("[data-testid=role]")).to_have_css("border-radius", re.compile(r"^10px"))
    page.screenshot(path="/tmp/fleetdeck-home.png", full_page=True)
