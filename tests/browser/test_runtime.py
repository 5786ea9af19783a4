"""The runtime pages in a browser: a run page and the Studio playground follow runs live, approvals get decided.

No worker runs in these tests: the test thread executes runs with `Runtime.drive` (the engine, in
process) while the page stays open, and the page must catch up by itself, without a reload.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect

from apps.catalog.services import catalog_seed_defaults
from apps.runtime.models import Approval, Run, RunStatus
from apps.runtime.services import approval_decide
from tests.runtime.conftest import Runtime
from tests.runtime.loopback import loopback_server

pytestmark = pytest.mark.browser

STEPS_JSON = re.compile(r"/runs/\d+/steps\.json")
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def rt(world, settings):
    """Return the runtime tests' helper (tests/runtime/conftest.py); tools may call 127.0.0.1."""
    catalog_seed_defaults()
    # The live server answers in a thread of this process, so the override reaches it too.
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["127.0.0.1"]
    return Runtime(world)


class Polls:
    """Keep a page's live-update polls off the server while the test thread uses the database.

    On SQLite the live server shares the test's in-memory database connection, which is safe only
    while one thread at a time uses it; a page polling steps.json every second would otherwise race
    the engine run by the test. Playwright's sync API runs route handlers only inside a Playwright
    call, so a poll sent while the test runs its own code waits in the browser until the next one.
    """

    def __init__(self, page):
        self.page = page
        self.forwarded: set = set()
        page.route(STEPS_JSON, self._forward)
        page.on("requestfinished", self._answered)
        page.on("requestfailed", self._answered)

    def _forward(self, route) -> None:
        self.forwarded.add(route.request)
        route.continue_()

    def _answered(self, request) -> None:
        self.forwarded.discard(request)

    @contextmanager
    def held(self):
        """Wait until no poll is being answered, then let the block use the database alone."""
        deadline = time.monotonic() + 5
        while self.forwarded:
            assert time.monotonic() < deadline, "a poll of steps.json got no answer within 5 s"
            self.page.wait_for_timeout(10)
        yield


@pytest.fixture
def polls(page) -> Polls:
    return Polls(page)


def _mark_page(page) -> None:
    """Leave a mark in the page's window that a reload or navigation would wipe."""
    page.evaluate("window.__stillTheSamePage = true")


def _assert_not_reloaded(page) -> None:
    assert page.evaluate("window.__stillTheSamePage === true"), "the page was reloaded or left"


def _refund_tool(rt, server):
    """Publish refund.issue: a POST to the loopback ledger that always needs a person's approval."""
    rt.http_tool(
        "refund.issue",
        f"{server.url}/refunds",
        method="POST",
        side_effect="write",
        requires_approval=True,
        parameters={
            "type": "object",
            "properties": {"order": {"type": "string"}, "amount": {"type": "number"}},
            "required": ["order", "amount"],
        },
    )


def _ledger(request):
    request.reply(201, {"refund": "R-1001", "state": "issued"})


def test_run_page_follows_an_approved_run_to_its_end_without_reload(rt, page, sign_in, polls):
    with loopback_server(_ledger) as ledger:
        _refund_tool(rt, ledger)
        agent = rt.agent(
            "refunder",
            tools=["refund.issue"],
            script=[
                {"call": [{"tool": "refund.issue", "arguments": {"order": "{input.order}", "amount": 12.5}}]},
                {"answer": "Refund {result.body.refund} issued for {input.order}."},
            ],
        )
        run = rt.run(agent, {"order": "ORD-7"})
        assert run.status == RunStatus.WAITING and ledger.requests == []

        sign_in("oscar")
        page.goto(f"/runs/{run.pk}/")
        badge = page.locator("h1 [data-run-field=status_label]")
        tool_step = page.locator("#timeline li[data-index='1']")
        expect(badge).to_have_text("Waiting for approval")
        expect(tool_step.locator(".step-name")).to_have_text("refund.issue")
        expect(tool_step.locator(".step-status")).to_have_text("Waiting for approval")
        expect(tool_step.locator(".step-approval")).to_be_visible()
        expect(page.locator("#run-pending")).to_contain_text("waiting for a person to decide")
        cancel = page.get_by_role("button", name="Cancel the run")
        expect(cancel).to_be_visible()
        _mark_page(page)

        with polls.held():
            approval_decide(actor=rt.operator, approval=Approval.objects.get(run=run), approve=True, comment="ok")
            assert rt.drive(run).status == RunStatus.SUCCEEDED

        expect(badge).to_have_text("Succeeded")
        expect(tool_step.locator(".step-status")).to_have_text("Succeeded")
        expect(tool_step.locator(".step-output")).to_contain_text("R-1001")
        expect(page.locator("#timeline li[data-index='2'] .step-kind")).to_have_text("Approval")
        expect(page.locator("#timeline li[data-index='2'] .step-status")).to_have_text("Succeeded")
        expect(page.locator("#timeline li[data-index='3'] .step-kind")).to_have_text("Model call")
        expect(page.locator("#run-output")).to_contain_text("Refund R-1001 issued for ORD-7.")
        expect(page.locator("#run-pending")).to_be_hidden()
        expect(page.locator("#live-note")).to_be_hidden()
        expect(cancel).to_be_hidden()
        _assert_not_reloaded(page)
    assert len(ledger.requests) == 1 and ledger.requests[0].json() == {"order": "ORD-7", "amount": 12.5}


def test_operator_rejects_a_call_in_the_approvals_inbox_and_the_run_goes_on_with_the_reason(rt, page, sign_in):
    reason = "Refunds over 10 EUR need the merchant's receipt."
    with loopback_server(_ledger) as ledger:
        _refund_tool(rt, ledger)
        agent = rt.agent(
            "refunder",
            tools=["refund.issue"],
            script=[
                {"call": [{"tool": "refund.issue", "arguments": {"order": "ORD-8", "amount": 99}}]},
                {"answer": "No refund: {result}"},
            ],
        )
        run = rt.run(agent, {"order": "ORD-8"})
        approval = Approval.objects.get(run=run)

        sign_in("oscar")
        page.goto("/approvals/")
        card = page.locator(f"#approval-{approval.pk}")
        expect(card.locator("h2 a").first).to_have_text("refund.issue")
        expect(card).to_contain_text(f"run #{run.pk}")
        expect(card.locator("pre")).to_contain_text('"order": "ORD-8"')
        expect(card.locator("pre")).to_contain_text('"amount": 99')
        card.get_by_label("Reason").fill(reason)
        with page.expect_navigation():
            card.get_by_role("button", name="Reject").click()

        expect(page).to_have_url(re.compile(r"/approvals/$"))
        expect(page.locator(".messages")).to_contain_text(f"refund.issue in run {run.pk}: rejected. The run goes on.")
        expect(page.locator(f"#approval-{approval.pk}")).to_have_count(0)
        expect(page.get_by_text("Nothing waits for a decision.")).to_be_visible()

        page.goto("/approvals/?status=decided")
        expect(page.locator(f"#approval-{approval.pk}")).to_contain_text("oscar at")
        expect(page.locator(f"#approval-{approval.pk}")).to_contain_text(reason)

        run = rt.drive(run)
        assert ledger.requests == []  # a rejected call never reaches the tool
    assert run.status == RunStatus.SUCCEEDED
    assert reason in run.output

    page.goto(f"/runs/{run.pk}/")
    expect(page.locator("h1 [data-run-field=status_label]")).to_have_text("Succeeded")
    expect(page.locator("#timeline li[data-index='1'] .step-status")).to_have_text("Rejected")
    expect(page.locator("#timeline li[data-index='1'] .step-error")).to_contain_text(reason)
    expect(page.locator("#run-output")).to_contain_text(reason)


def test_studio_playground_runs_the_draft_and_shows_its_timeline_in_place(rt, world, page, sign_in, polls):
    agent = rt.agent("greeter", publish=False, script=[{"answer": "Hello {input.name}"}])
    assert not agent.versions.exists()

    sign_in("ben")
    page.goto(f"/agents/{agent.pk}/studio/")
    studio_url = page.url
    page.fill("#playground-input", '{"name": "Ada"}')
    _mark_page(page)
    page.get_by_role("button", name="Run the draft").click()

    expect(page.locator("#playground-result")).to_be_visible()
    expect(page.locator("#playground-status")).to_contain_text("Queued")
    with polls.held():
        run = Run.objects.latest("pk")
        assert (run.agent, run.is_draft, run.started_by, run.input) == (agent, True, world["builder"], {"name": "Ada"})
    expect(page.locator("#playground-run-link")).to_have_text(f"#{run.pk}")
    expect(page.locator("#playground-run-link")).to_have_attribute("href", f"/runs/{run.pk}/")

    with polls.held():
        assert rt.drive(run).status == RunStatus.SUCCEEDED

    expect(page.locator("#playground-status")).to_contain_text("Succeeded")
    expect(page.locator("#playground-status")).to_contain_text("simulated")
    step = page.locator("#playground-timeline li[data-index='0']")
    expect(step.locator(".step-kind")).to_have_text("Model call")
    expect(step.locator(".step-status")).to_have_text("Succeeded")
    expect(page.locator("#playground-output")).to_contain_text("Hello Ada")
    expect(page.locator("#playground-totals")).to_contain_text("1 steps")
    expect(page.locator("#playground-error")).to_have_text("")
    assert page.url == studio_url
    _assert_not_reloaded(page)


def test_run_page_shows_untrusted_output_as_text(rt, page, sign_in, polls):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    agent = rt.agent("echo", script=[{"answer": "Echo: {input.note}"}])
    run = rt.start(agent, {"note": HOSTILE})

    sign_in("oscar")
    page.goto(f"/runs/{run.pk}/")
    expect(page.locator("#run-input")).to_contain_text(HOSTILE)
    with polls.held():
        assert rt.drive(run).output == f"Echo: {HOSTILE}"

    # Drawn live by timeline.js, then drawn by the server after a reload: text both times.
    for drawn_by in ("script", "server"):
        expect(page.locator("h1 [data-run-field=status_label]")).to_have_text("Succeeded")
        expect(page.locator("#run-output")).to_contain_text(f"Echo: {HOSTILE}")
        expect(page.locator("#timeline li[data-index='0'] .step-output")).to_contain_text(HOSTILE)
        assert page.locator("#run img").count() == 0, f"the {drawn_by} turned untrusted text into an element"
        if drawn_by == "script":
            page.reload()
    assert dialogs == []
