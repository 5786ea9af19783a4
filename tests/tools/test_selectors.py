"""Reading tools: team-scoped resolution for agents, filtered lists, and who uses which version."""

import pytest
from django.http import Http404

from apps.core.exceptions import ServiceError
from apps.tools import selectors, services
from tests.tools.factories import CONTEXT_SPEC, http_spec, tool_with_versions


def resolve_error(team, ref) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        selectors.tool_version_resolve(team=team, ref=ref)
    return info.value


def test_resolve_a_pinned_version_or_the_latest(world):
    tool_with_versions(actor=world["builder"], team=world.team, versions=("1.0.0", "1.2.0", "1.10.0"))
    assert selectors.tool_version_resolve(team=world.team, ref="crm-lookup@1.2.0").version == "1.2.0"
    latest = selectors.tool_version_resolve(team=world.team, ref="crm-lookup")
    assert latest.version == "1.10.0" and latest.ref == "crm-lookup@1.10.0"


def test_another_teams_tool_is_not_found_like_a_missing_one(world):
    tool_with_versions(actor=world["outsider"], team=world.other_team, name="support-only")
    error = resolve_error(world.team, "support-only@1.0.0")
    assert "No tool named 'support-only' in team payments" in error.message
    assert "support" not in error.message.replace("support-only", "")
    assert resolve_error(world.team, "nothing").message.startswith("No tool named 'nothing'")


def test_missing_versions_and_bad_references_say_what_to_do(world, tool):
    assert "has no version 2.0.0 (latest is 1.0.0)" in resolve_error(world.team, "crm-lookup@2.0.0").message
    assert resolve_error(world.team, "crm-lookup@latest").field == "version"
    assert resolve_error(world.team, "CRM lookup").field == "ref"
    assert resolve_error(world.team, "crm-lookup@").field == "ref"
    services.tool_create(actor=world["builder"], team=world.team, name="unpublished", spec=http_spec())
    assert "no published version yet" in resolve_error(world.team, "unpublished").message


def test_deprecated_tools_are_refused_for_new_agent_versions(world, tool):
    services.tool_deprecate(actor=world["builder"], tool=tool, reason="Use crm-v2.")
    error = resolve_error(world.team, "crm-lookup@1.0.0")
    assert error.message == "Tool crm-lookup is deprecated: pick another tool or undeprecate it."


def test_the_list_shows_only_visible_teams_and_filters(world, tool):
    services.tool_create(actor=world["builder"], team=world.team, name="facts", spec=CONTEXT_SPEC)
    tool_with_versions(actor=world["outsider"], team=world.other_team, name="support-only")
    names = lambda user, **f: [t.name for t in selectors.tool_list(user=user, filters=f)]  # noqa: E731
    assert names(world["viewer"]) == ["crm-lookup", "facts"]
    assert names(world["outsider"]) == ["support-only"]
    assert names(world["auditor"]) == ["crm-lookup", "facts", "support-only"]
    assert names(world["auditor"], team="support") == ["support-only"]
    assert names(world["viewer"], kind="context") == ["facts"]
    assert names(world["viewer"], side_effect="write") == []
    assert names(world["viewer"], q="CRM") == ["crm-lookup"]
    services.tool_deprecate(actor=world["builder"], tool=tool, reason="old")
    assert names(world["viewer"], deprecated=True) == ["crm-lookup"]
    assert names(world["viewer"], deprecated=False) == ["facts"]


def test_the_list_shows_the_latest_versions_facts_else_the_drafts(world, tool):
    services.tool_update_draft(
        actor=world["builder"], tool=tool, spec=http_spec(side_effect="write", permissions_required=["crm.write"])
    )
    row = selectors.tool_get(user=world["viewer"], pk=tool.pk)
    assert (row.latest_version, row.current_side_effect, selectors.tool_permissions(row)) == (
        "1.0.0",
        "read",
        ["crm.read"],
    )
    services.tool_publish(actor=world["builder"], tool=tool, version="2.0.0")
    row = selectors.tool_get(user=world["viewer"], pk=tool.pk)
    assert (row.latest_version, row.current_side_effect, selectors.tool_permissions(row)) == (
        "2.0.0",
        "write",
        ["crm.write"],
    )


def test_another_teams_tool_is_a_404(world, tool):
    with pytest.raises(Http404):
        selectors.tool_get(user=world["outsider"], pk=tool.pk)


def test_impact_lists_agent_versions_and_where_they_are_live(world, agent_using):
    tool = tool_with_versions(actor=world["builder"], team=world.team, versions=("1.0.0", "1.1.0"))
    v1, v11 = tool.versions.get(version="1.0.0"), tool.versions.get(version="1.1.0")
    agent_using(v1, "billing-bot", "1.0.0", channels=["production"])
    agent_using(v11, "billing-bot", "1.1.0", channels=["staging"])
    agent_using(v11, "refund-bot", "3.0.0")
    rows = {row["version"].version: row["agent_versions"] for row in selectors.tool_impact(tool=tool)}
    assert rows["1.0.0"] == [
        {"agent": "billing-bot", "agent_id": rows["1.0.0"][0]["agent_id"], "version": "1.0.0", "live": ["production"]}
    ]
    assert [(r["agent"], r["version"], r["live"]) for r in rows["1.1.0"]] == [
        ("billing-bot", "1.1.0", ["staging"]),
        ("refund-bot", "3.0.0", []),
    ]
