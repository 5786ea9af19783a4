"""The trace waterfall in a browser: open a run's trace, fold it, open a span's attributes; no internet."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.catalog.services import catalog_seed_defaults
from apps.observability.models import Span
from apps.runtime.models import RunStatus
from tests.runtime.conftest import Runtime

pytestmark = pytest.mark.browser


@pytest.fixture
def rt(world):
    catalog_seed_defaults()
    return Runtime(world)


def test_open_a_trace_fold_it_and_read_a_spans_attributes(rt, page, sign_in, offline, traffic):
    agent = rt.agent("answerer", script=[{"answer": "All good."}])
    run = rt.run(agent, {"ticket": "T-1"})
    assert run.status == RunStatus.SUCCEEDED, run.error
    root = Span.objects.get(trace_id=run.trace_id, operation="invoke_agent")
    chat = Span.objects.get(trace_id=run.trace_id, operation="chat")

    sign_in("vera")
    page.goto("/observability/traces/")
    page.get_by_role("link", name="invoke_agent answerer").click()
    expect(page.locator("h1")).to_contain_text(run.trace_id)

    root_row = page.locator(f"tr.span-row[data-span='{root.span_id}']")
    chat_row = page.locator(f"tr.span-row[data-span='{chat.span_id}']")
    expect(chat_row).to_be_visible()
    expect(chat_row.locator(".wf-bar")).to_be_visible()

    # Fold the run span: its child span hides; unfold: it is back.
    root_row.locator(".wf-toggle").click()
    expect(chat_row).to_be_hidden()
    root_row.locator(".wf-toggle").click()
    expect(chat_row).to_be_visible()

    # Open the model call: its attributes, tokens and links appear below it.
    chat_row.get_by_role("button", name=f"chat {chat.model}").click()
    panel = page.locator(f"tr.span-detail[data-detail-of='{chat.span_id}']")
    expect(panel).to_be_visible()
    attributes = panel.locator("table.span-attributes")
    expect(attributes).to_contain_text("gen_ai.request.model")
    expect(attributes).to_contain_text("sim-small")
    expect(attributes).to_contain_text("gen_ai.usage.input_tokens")
    expect(panel).to_contain_text(f"{chat.input_tokens} / {chat.output_tokens}")
    expect(panel.get_by_role("link", name=f"#{run.pk}")).to_have_attribute("href", f"/runs/{run.pk}/")

    # Close it again.
    chat_row.get_by_role("button", name=f"chat {chat.model}").click()
    expect(panel).to_have_count(0)
    assert traffic.loaded("/static/observability/waterfall.js") and traffic.loaded("/static/observability/traces.css")
