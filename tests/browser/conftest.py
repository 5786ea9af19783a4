"""Headless Chromium driven by Playwright against pytest-django's live server.

One browser for the session, a fresh context (cookies, storage) and page per test. Every page
records the requests it makes, so each test also proves invariant 9 of DESIGN.md: pages work with
no internet, and their own styles and scripts load.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from tests.conftest import CHROMIUM
from tests.factories import PASSWORD

# Playwright's sync API drives the browser from an asyncio event loop running in this thread, so
# Django sees a running loop and refuses the ORM calls the tests make (factories, assertions) with
# SynchronousOnlyOperation. Nothing here is truly concurrent: the test thread only touches the ORM
# while the browser is idle, and the live server answers in its own thread. The variable is
# process-wide, so it holds for the rest of a session that collected this directory.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 5_000


class Traffic:
    """Record what pages ask for and what they get back, to check nothing leaves the live server."""

    def __init__(self, origin: str):
        self.origin = origin
        self.requests: list[str] = []
        self.responses: list[tuple[str, str, int]] = []

    def watch(self, page) -> None:
        """Record every request the page makes and every response it receives."""
        page.on("request", lambda request: self.requests.append(request.url))
        page.on(
            "response",
            lambda response: self.responses.append((response.url, response.request.resource_type, response.status)),
        )

    def offsite(self) -> list[str]:
        """Return the requested URLs that are not on the live server."""
        return [url for url in self.requests if _origin(url) != self.origin]

    def failed_subresources(self) -> list[tuple[str, int]]:
        """Return the styles, scripts, images and other files a page asked for and did not get."""
        return [(url, status) for url, kind, status in self.responses if kind != "document" and status >= 400]

    def loaded(self, path: str) -> bool:
        """Return whether a file at this path was served with a success status."""
        return any(urlsplit(url).path == path and status < 400 for url, _, status in self.responses)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture(scope="session")
def browser():
    """Launch Debian's Chromium once for the session (Playwright's own browsers are not downloaded)."""
    if not CHROMIUM:
        pytest.skip("needs browser: no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def traffic(live_server) -> Traffic:
    """Return a recorder for the requests of this test's pages."""
    return Traffic(origin=_origin(live_server.url))


@pytest.fixture
def page(browser, live_server, traffic):
    """Open a page in a fresh browser context; afterwards check it stayed on the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    traffic.watch(page)
    yield page
    context.close()
    assert traffic.offsite() == [], "pages must work with no internet: every request goes to the server itself"
    assert traffic.failed_subresources() == [], "every style, script and image a page asks for must be served"


@pytest.fixture
def sign_in(page):
    """Return a function that signs a user in through the login form."""

    def sign_in(username: str, password: str = PASSWORD):
        page.goto("/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        # Wait for the answer, so the next step never races the sign-in request.
        with page.expect_navigation():
            page.click("button[type=submit]")
        return page

    return sign_in


@pytest.fixture
def offline(page, live_server):
    """Block every request that does not go to the live server, as on a machine with no internet.

    Return the list of blocked URLs; the test fails at teardown if anything was blocked.
    """
    origin = urlsplit(live_server.url).netloc
    blocked: list[str] = []

    def only_the_server(route):
        if urlsplit(route.request.url).netloc == origin:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    yield blocked
    assert blocked == [], "pages must not ask any other host for anything"
