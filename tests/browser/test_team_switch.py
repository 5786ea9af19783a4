"""Switching teams from the top bar: the badge and the home page follow the chosen team."""

import pytest
from playwright.sync_api import expect

from tests.factories import MembershipFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def olivia(world):
    """Return the Payments owner, also made a viewer of Support so she has a team to switch to."""
    MembershipFactory(user=world["owner"], team=world.other_team, role="viewer")
    return world["owner"]


def _expect_team(page, name: str, role: str) -> None:
    expect(page.locator("main .card h2").first).to_have_text(name)
    expect(page.locator("[data-testid=role]")).to_have_text(role)
    expect(page.locator("[data-testid=home-role]")).to_have_text(role)


def test_choosing_a_team_switches_at_once(olivia, page, sign_in):
    """Switch team as soon as one is chosen in the top bar, without pressing Switch."""
    sign_in(olivia.username)
    _expect_team(page, "Payments", "Owner")

    with page.expect_navigation():
        page.select_option("select#team-switch", "support")

    _expect_team(page, "Support", "Viewer")
    expect(page.locator("select#team-switch option:checked")).to_have_text("Support")
    page.reload()
    _expect_team(page, "Support", "Viewer")


def test_switch_button_switches_team_without_script(olivia, page, sign_in, browser, live_server, traffic):
    """Switch team with the Switch button, which works when JavaScript is off."""
    sign_in(olivia.username)
    # Same session in a browser with scripts off: only the button can submit the form.
    nojs_context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        nojs_context.add_cookies(page.context.cookies())
        nojs = nojs_context.new_page()
        traffic.watch(nojs)
        nojs.goto("/")
        _expect_team(nojs, "Payments", "Owner")

        nojs.select_option("select#team-switch", "support")
        _expect_team(nojs, "Payments", "Owner")
        nojs.get_by_role("button", name="Switch").click()

        _expect_team(nojs, "Support", "Viewer")
    finally:
        nojs_context.close()
