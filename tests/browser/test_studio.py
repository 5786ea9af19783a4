"""The Studio in a browser: build an agent from nothing, publish twice, compare, promote, roll back."""

import re

import pytest
from playwright.sync_api import expect

from apps.agents.models import Agent
from apps.catalog.services import catalog_seed_defaults
from apps.governance.models import GranteeType
from apps.governance.services import secret_create, secret_grant
from apps.prompts.services import prompt_create, prompt_label_set, prompt_publish
from apps.tools.services import tool_create, tool_publish

pytestmark = pytest.mark.browser


@pytest.fixture
def registry(world):
    """Create what the Studio offers, through the services: the catalog, two tools, a labelled prompt."""
    builder, owner, team = world["builder"], world["owner"], world.team
    catalog_seed_defaults()
    search = tool_create(
        actor=builder,
        team=team,
        name="kb.search",
        spec={
            "description": "Search the payments knowledge base.",
            "kind": "context",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
            "config": {"operation": "search", "space": "payments-kb"},
            "permissions_required": ["kb.read"],
        },
    )
    tool_publish(actor=builder, tool=search, version="1.0.0")
    key = secret_create(actor=owner, team=team, name="crm-api-key", value="not-a-real-key-0123456789")
    crm = tool_create(
        actor=builder,
        team=team,
        name="crm.update",
        spec={
            "description": "Add a note to a merchant's CRM account.",
            "kind": "http",
            "parameters": {
                "type": "object",
                "properties": {"account_id": {"type": "string"}, "note": {"type": "string"}},
                "required": ["account_id", "note"],
            },
            "config": {
                "method": "PATCH",
                "url": "https://crm.example.com/accounts/{account_id}",
                "headers": {"Authorization": "Bearer {{secrets.crm-api-key}}"},
            },
            "permissions_required": ["crm.write"],
            "side_effect": "write",
            "secrets": ["crm-api-key"],
        },
    )
    secret_grant(actor=owner, secret=key, grantee_type=GranteeType.TOOL, grantee=crm)
    tool_publish(actor=builder, tool=crm, version="1.0.0")
    prompt = prompt_create(
        actor=builder,
        team=team,
        name="merchant-reply",
        spec={
            "template": "Answer {{ product }} merchants in a {{ tone }} tone.",
            "variables": [{"name": "product"}, {"name": "tone"}],
        },
    )
    prompt_publish(actor=builder, prompt=prompt, version="1.0.0")
    prompt_label_set(actor=builder, prompt=prompt, name="production", version="1.0.0")


def _sign_out(page):
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()


def _submit(page, form, button: str):
    with page.expect_navigation():
        page.locator(form).get_by_role("button", name=button).click()


def _channel(page, name: str):
    return page.locator(f"#channels [data-channel={name}]")


def test_build_an_agent_in_the_studio_from_nothing_to_production_and_back(world, registry, page, sign_in):
    """Create, design, publish 1.0.0, change, publish 1.1.0, compare, promote, roll back, find it in the inventory."""
    sign_in("ben")

    # The Studio's front door: name the agent.
    page.goto("/agents/studio/")
    expect(page.locator("h2", has_text="New agent in Payments")).to_be_visible()
    form = page.locator("#agent-create-form")
    form.locator("#id_name").fill("refund-helper")
    form.locator("#id_description").fill("Answers merchants' refund questions.")
    form.locator("#id_risk_tier").select_option("high")
    form.locator("#id_tags").fill("refunds, Payments")
    _submit(page, "#agent-create-form", "Create and design")
    expect(page).to_have_url(re.compile(r"/agents/\d+/studio/$"))
    expect(page.locator(".messages")).to_contain_text("Agent refund-helper created: now design its draft.")
    expect(page.locator("h1")).to_have_text("Studio: payments/refund-helper")
    studio_url = page.url

    # The draft editor: a model from the approved catalog only.
    model = page.locator("#id_model")
    offered = model.locator("option").all_inner_texts()
    assert any(o.startswith("simulated/sim-small") for o in offered)
    assert not any(o.startswith(("anthropic/claude-2", "openai/gpt-3.5-turbo")) for o in offered)  # blocked, deprecated
    model.select_option("simulated/sim-small")

    # A prompt from the registry, with the variables it declares shown beside it.
    page.check("input[name=prompt_mode][value=registry]")
    expect(page.locator("#prompt-variables")).to_contain_text("pick a prompt")
    page.select_option("#id_prompt_ref", "merchant-reply@production")
    expect(page.locator("#prompt-variables")).to_contain_text("product, tone")
    page.fill("#id_prompt_variables", '{"product": "Fleetdeck Pay", "tone": "friendly"}')

    # Two tools, each showing the permissions it brings.
    picker = page.locator("#tool-picker")
    search_row = picker.locator("tr", has=page.locator("input[value='kb.search']"))
    crm_row = picker.locator("tr", has=page.locator("input[value='crm.update']"))
    expect(search_row.locator(".perm-badge")).to_have_text(["kb.read"])
    expect(crm_row.locator(".perm-badge")).to_have_text(["crm.write"])
    expect(crm_row).to_contain_text("write")
    expect(search_row).to_contain_text("Built-in context tool")
    search_row.locator("input[type=checkbox]").check()
    crm_row.locator("input[type=checkbox]").check()
    page.fill("#id_max_steps", "8")
    _submit(page, "#draft-form", "Save draft")

    expect(page.locator(".messages")).to_contain_text("Draft saved and valid: it can be published.")
    expect(page.locator("#id_model")).to_have_value("simulated/sim-small")
    expect(page.locator("#id_prompt_ref")).to_have_value("merchant-reply@1.0.0")  # the label, pinned
    expect(page.locator("#prompt-variables")).to_contain_text("product, tone")
    expect(page.locator("input[name=tools][value='kb.search']")).to_be_checked()
    expect(page.locator("input[name=tools][value='crm.update']")).to_be_checked()
    expect(crm_row).to_contain_text("pinned 1.0.0")

    # Publish 1.0.0: the first version is offered.
    expect(page.locator("#publish-form #id_version")).to_have_value("1.0.0")
    page.locator("#publish-form #id_release_notes").fill("First version.")
    _submit(page, "#publish-form", "Publish")
    expect(page.locator(".messages")).to_contain_text("Published refund-helper 1.0.0.")
    expect(page.locator("#versions tbody tr")).to_have_count(1)
    expect(page.locator("#versions")).to_contain_text("simulated/sim-small")

    # Change the model and the limits, publish 1.1.0 (the next minor version is offered).
    page.goto(studio_url)
    page.select_option("#id_model", "simulated/sim-large")
    page.fill("#id_max_steps", "12")
    _submit(page, "#draft-form", "Save draft")
    expect(page.locator(".messages")).to_contain_text("Draft saved and valid")
    expect(page.locator("#publish-form #id_version")).to_have_value("1.1.0")
    _submit(page, "#publish-form", "Publish")
    expect(page.locator(".messages")).to_contain_text("Published refund-helper 1.1.0.")
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    detail_url = page.url

    # Compare: the diff names exactly what changed.
    with page.expect_navigation():
        page.get_by_role("link", name="Compare versions").click()
    expect(page).to_have_url(re.compile(r"/agents/\d+/diff/$"))
    expect(page.locator("h1")).to_have_text("payments/refund-helper: 1.0.0 → 1.1.0")
    model_change = page.locator("#diff tr", has=page.locator("code", has_text=re.compile(r"^model$")))
    expect(model_change).to_contain_text("simulated/sim-small")
    expect(model_change).to_contain_text("simulated/sim-large")
    steps_change = page.locator("#diff tr", has=page.locator("code", has_text="limits.max_steps"))
    expect(steps_change.locator("td pre")).to_have_text(["8", "12"])
    expect(page.locator("#diff tbody tr")).to_have_count(2)

    # The builder moves staging; production is the owner's.
    page.goto(detail_url)
    promote = page.locator("#promote-form")
    promote.locator("select[name=version]").select_option("1.1.0")
    promote.locator("select[name=channel]").select_option("staging")
    promote.locator("input[name=reason]").fill("Try the large model.")
    _submit(page, "#promote-form", "Promote")
    expect(page.locator(".messages")).to_contain_text("Promoted.")
    expect(_channel(page, "staging")).to_have_text("1.1.0")
    expect(_channel(page, "production")).to_have_text("—")

    promote.locator("select[name=version]").select_option("1.0.0")
    promote.locator("select[name=channel]").select_option("production")
    promote.locator("input[name=reason]").fill("Builders cannot do this.")
    _submit(page, "#promote-form", "Promote")
    expect(page.locator("h1")).to_have_text("Not allowed")
    _sign_out(page)

    # The owner promotes to production, twice, then rolls back.
    sign_in("olivia")
    page.goto(detail_url)
    expect(_channel(page, "production")).to_have_text("—")
    for version, reason in [("1.0.0", "Reviewed with the refunds team."), ("1.1.0", "Large model approved.")]:
        promote.locator("select[name=version]").select_option(version)
        promote.locator("select[name=channel]").select_option("production")
        promote.locator("input[name=reason]").fill(reason)
        _submit(page, "#promote-form", "Promote")
        expect(page.locator(".messages")).to_contain_text("Promoted.")
        expect(_channel(page, "production")).to_have_text(version)

    rollback = page.locator("#rollback-form")
    rollback.locator("select[name=channel]").select_option("production")
    rollback.locator("input[name=reason]").fill("Replies got too long.")
    _submit(page, "#rollback-form", "Roll back")
    expect(page.locator(".messages")).to_contain_text("Rolled back.")
    expect(_channel(page, "production")).to_have_text("1.0.0")
    expect(_channel(page, "staging")).to_have_text("1.1.0")
    latest = page.locator("#promotions tbody tr").first
    expect(latest).to_contain_text("production (rollback)")
    expect(latest).to_contain_text("olivia")
    expect(latest).to_contain_text("Replies got too long.")
    expect(latest.locator("td").nth(3)).to_have_text("1.1.0")
    expect(latest.locator("td").nth(4)).to_have_text("1.0.0")
    expect(page.locator("#promotions tbody tr")).to_have_count(4)

    # The inventory shows it with what its production version reaches.
    page.goto("/agents/inventory/?permission=crm.write")
    row = page.locator('tr[data-agent="payments/refund-helper"]')
    expect(row).to_be_visible()
    cells = row.locator("td")
    expect(cells.nth(0)).to_contain_text("high risk")
    expect(cells.nth(1)).to_have_text("ben")
    expect(cells.nth(3)).to_have_text("1.0.0")
    expect(cells.nth(4)).to_have_text("1.1.0")
    expect(cells.nth(5)).to_have_text("simulated/sim-small")
    expect(cells.nth(6)).to_contain_text("kb.search@1.0.0")
    expect(cells.nth(6)).to_contain_text("crm.update@1.0.0")
    assert sorted(cells.nth(6).locator(".perm-badge").all_inner_texts()) == ["crm.write", "kb.read"]
    expect(cells.nth(7)).to_have_text("crm-api-key")

    agent = Agent.objects.get(name="refund-helper")
    assert agent.tags == ["payments", "refunds"]
    assert agent.channels.get(name="production").version.version == "1.0.0"
