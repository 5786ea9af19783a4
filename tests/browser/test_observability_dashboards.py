"""The fleet dashboard in a browser: its Plotly charts draw from the server's own static files, offline.

Every request to another host is aborted (a Playwright route), so the charts can only render if
plotly.js and the dashboard's script come from the live server; the page fixture also checks
that nothing left it and that every script and style it asked for was served.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.catalog.services import catalog_seed_defaults
from apps.runtime.models import RunStatus
from tests.runtime.conftest import Runtime
from tests.runtime.loopback import loopback_server

pytestmark = pytest.mark.browser


@pytest.fixture
def rt(world, settings):
    catalog_seed_defaults()
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["127.0.0.1"]
    return Runtime(world)


def test_fleet_dashboard_draws_its_charts_from_local_plotly(rt, page, sign_in, offline, traffic):
    def handler(request):
        request.reply(200, {"ok": True})

    with loopback_server(handler) as server:
        rt.http_tool("kb.search", f"{server.url}/kb", cost_per_call=0.01)
        agent = rt.agent(
            "helper",
            tools=["kb.search"],
            script=[{"call": [{"tool": "kb.search", "arguments": {"q": "x"}}]}, {"answer": "done"}],
        )
        broken = rt.agent("broken", script=[{"error": {"status": 400, "message": "context too long"}}])
        runs = [rt.run(agent) for _ in range(3)] + [rt.run(broken)]
    assert [r.status for r in runs].count(RunStatus.FAILED) == 1

    sign_in("vera")
    page.goto("/observability/")
    expect(page.get_by_role("heading", name="Fleet operations")).to_be_visible()
    # The numbers a person reads first.
    expect(page.locator('[data-kpi="succeeded-today"] .kpi-value')).to_have_text("3")
    expect(page.locator('[data-kpi="failed-today"] .kpi-value')).to_have_text("1")
    expect(page.locator('[data-kpi="failure-rate"] .kpi-value')).to_have_text("25.0%")
    # Plotly drew each chart with data: an SVG plot inside each chart container.
    for name in ("runs", "tools", "cost_trend", "agents"):
        chart = page.locator(f'[data-figure="{name}"]')
        expect(chart).to_have_attribute("data-drawn", "true")
        expect(chart.locator(".plot-container svg.main-svg").first).to_be_attached()
    expect(page.locator('[data-figure="tools"] .slicetext').first).to_contain_text("kb.search")
    # Each chart's numbers are a table and a CSV link away.
    page.locator("#chart-tools summary").click()
    expect(page.locator('table[data-table="tools"] tbody tr').first).to_contain_text("kb.search")
    assert page.locator('[data-testid="csv-tools"]').get_attribute("href") == "?format=csv&chart=tools"

    assert traffic.loaded("/static/vendor/plotly/plotly.min.js")
    assert traffic.loaded("/static/observability/dashboards.js")
    assert offline == [], "the dashboard must not ask any other host for anything"
    page.screenshot(path="/tmp/fleetdeck-fleet-dashboard.png", full_page=True)


def test_bad_range_shows_the_message_in_the_page(rt, page, sign_in, offline):
    sign_in("vera")
    page.goto("/observability/?range=forever")
    expect(page.get_by_role("alert")).to_contain_text("Unknown range 'forever'")
    page.select_option("#dash-range-select", "30d")
    with page.expect_navigation():
        page.click("#dash-range button[type=submit]")
    expect(page.locator(".dash-period")).to_contain_text("last 30d")
    expect(page.locator('[data-figure="runs"]')).to_have_attribute("data-drawn", "true")
    assert offline == []
