"""The built-in context tools the engine offers agents: each operation, access checks, bad arguments."""

import pytest

from apps.audit.models import AuditEvent
from apps.context import services
from apps.context.models import ContextEntry, ContextState, ContextStateVersion
from apps.context.tools import (
    CONTEXT_TOOL_NAMES,
    CONTEXT_TOOL_SCHEMAS,
    context_agent_access,
    context_tool_execute,
    context_tool_schemas,
)
from apps.runtime.executors.base import ToolError
from tests.context.conftest import READ_SPEC, WRITE_SPEC, make_agent


def call(agent, operation, spec=WRITE_SPEC, run_id=42, **arguments):
    return context_tool_execute(
        agent=agent,
        spec_spaces=spec,
        operation=operation,
        arguments={"space": "support-kb", **arguments},
        run_id=run_id,
        actor_label=f"agent:{agent.name} run {run_id}",
    )


def refused(agent, operation, spec=WRITE_SPEC, **arguments) -> ToolError:
    with pytest.raises(ToolError) as error:
        call(agent, operation, spec=spec, **arguments)
    return error.value


@pytest.fixture
def content(world, space):
    services.context_entry_add(
        actor=world["operator"],
        space=space,
        kind="fact",
        key="refund-days",
        title="Refunds",
        body="A refund takes 5 days.",
    )
    services.context_entry_add(
        actor=world["operator"], space=space, kind="document", key="handbook", title="Handbook", body="word " * 5000
    )
    services.context_decision_record(
        actor=world["operator"], space=space, title="No refunds over 500", rationale="Fraud.", decided_by="leads"
    )
    services.context_state_write(actor=world["operator"], space=space, key="queue", value={"open": 3})


def test_search(writer, content):
    result = call(writer, "search", query="refund")
    assert result["space"] == "support-kb" and result["query"] == "refund"
    assert "refund-days" in [r["key"] for r in result["results"]]
    assert all(isinstance(r["updated_at"], str) for r in result["results"])
    assert len(call(writer, "search", query="refund", limit=1)["results"]) == 1


def test_read_without_a_key_lists_keys_and_recent_decisions(writer, content):
    overview = call(writer, "read")
    assert overview["facts"] == [{"key": "refund-days", "title": "Refunds"}]
    assert overview["documents"] == [{"key": "handbook", "title": "Handbook"}]
    assert overview["state"] == [{"key": "queue", "version": 1}]
    assert overview["recent_decisions"][0]["title"] == "No refunds over 500"
    assert overview["recent_decisions"][0]["decided_by"] == "leads"


def test_read_by_key(writer, content):
    fact = call(writer, "read", key="refund-days")
    assert fact["kind"] == "fact" and fact["body"] == "A refund takes 5 days." and "next_offset" not in fact
    state = call(writer, "read", key="queue")
    assert (state["kind"], state["value"], state["version"]) == ("state", {"open": 3}, 1)
    first = call(writer, "read", key="handbook")
    assert len(first["body"]) == 20_000 and first["next_offset"] == 20_000 and first["total_chars"] == 25_000
    rest = call(writer, "read", key="handbook", offset=first["next_offset"])
    assert len(rest["body"]) == 5_000 and "next_offset" not in rest
    missing = refused(writer, "read", key="nope")
    assert missing.code == "not_found" and "read without a key" in missing.message


def test_a_read_grant_is_enough_to_read(world, space, content):
    reader = make_agent(world.team, "reader", READ_SPEC)
    services.context_grant_set(actor=world["builder"], space=space, agent=reader, access="read")
    assert call(reader, "read", spec=READ_SPEC, key="refund-days")["body"]
    assert call(reader, "search", spec=READ_SPEC, query="refund")["results"]


def test_write_state_with_versions_and_conflicts(writer, space):
    created = call(writer, "write", key="shift", value={"lead": "ana"}, expected_version=0)
    assert created == {"space": "support-kb", "key": "shift", "kind": "state", "version": 1, "previous_version": 0}
    assert call(writer, "write", key="shift", value={"lead": "bo"}, expected_version=1)["version"] == 2
    conflict = refused(writer, "write", key="shift", value={"lead": "cy"}, expected_version=1)
    assert conflict.code == "version_conflict" and "version 2, not 1" in conflict.message
    assert ContextState.objects.get(key="shift").value == {"lead": "bo"}
    latest = ContextStateVersion.objects.get(version=2)
    assert latest.author == "agent:triage run 42" and latest.run_id == 42
    event = AuditEvent.objects.filter(action="context.state_write").order_by("seq").last()
    assert (event.actor_type, event.actor_label) == ("agent", "agent:triage")
    assert event.metadata["run_id"] == 42 and event.team_slug == "payments"


def test_write_facts_and_documents_by_key(writer, space):
    first = call(writer, "write", kind="fact", key="vip", body="ACME is a VIP customer.", title="VIP")
    assert first["created"] is True
    again = call(writer, "write", kind="fact", key="vip", body="ACME and Initech are VIP customers.")
    assert again["created"] is False and again["entry_id"] == first["entry_id"]
    entry = ContextEntry.objects.get(pk=first["entry_id"])
    assert entry.body.startswith("ACME and Initech") and entry.title == "VIP"
    assert entry.author == "agent:triage run 42" and entry.run_id == 42
    assert call(writer, "write", kind="document", key="notes", value="Plain text as value.")["created"] is True
    wrong = refused(writer, "write", kind="document", key="vip", body="x")
    assert "is a fact" in wrong.message
    assert refused(writer, "write", kind="fact", key="empty").code == "invalid_arguments"
    assert refused(writer, "write", key="no-value").code == "invalid_arguments"


def test_record_decision(writer, space):
    result = call(writer, "record_decision", title="Pause refunds", rationale="The payment provider is down.")
    decision = ContextEntry.objects.get(pk=result["decision_id"])
    assert decision.kind == "decision" and decision.decided_by == "agent:triage run 42"
    event = AuditEvent.objects.get(action="context.decision_record")
    assert event.actor_label == "agent:triage" and event.metadata == {"run_id": 42, "agent_id": writer.pk}


def test_without_a_grant_the_agent_is_refused(agent, space):
    error = refused(agent, "search", query="refund")
    assert error.code == "context_not_granted"
    assert error.message == (
        "Agent triage has no grant on context space support-kb: a builder grants it on the space's page."
    )


def test_a_read_grant_does_not_allow_writing(world, space, agent):
    services.context_grant_set(actor=world["builder"], space=space, agent=agent, access="read")
    assert call(agent, "read")["space"] == "support-kb"
    for operation, arguments in [
        ("write", {"key": "k", "value": 1}),
        ("record_decision", {"title": "t", "rationale": "r"}),
    ]:
        error = refused(agent, operation, **arguments)
        assert error.code == "context_not_granted"
        assert "has no write grant on context space support-kb" in error.message
        assert "a builder grants write on the space's page" in error.message
    assert not ContextState.objects.exists() and not ContextEntry.objects.exists()


def test_the_spec_must_ask_for_the_space_and_for_write(writer, space):
    read_only = refused(writer, "write", spec=READ_SPEC, key="k", value=1)
    assert read_only.code == "context_read_only" and "publish a new version" in read_only.message
    not_listed = refused(writer, "read", spec=[{"space": "other", "access": "read"}])
    assert not_listed.code == "context_not_requested" and "it lists: other" in not_listed.message
    assert refused(writer, "read", spec=[]).code == "context_not_requested"


def test_a_space_of_another_team_is_out_of_reach(world, space):
    # An agent of team support asking for "support-kb" finds no such space in its own team.
    foreign = make_agent(world.other_team, "spy", WRITE_SPEC)
    error = refused(foreign, "read")
    assert error.code == "context_space_missing" and "a builder creates it" in error.message


def test_a_revoked_grant_stops_the_next_call(world, space, writer):
    assert call(writer, "read")
    services.context_grant_revoke(actor=world["builder"], grant=writer.context_grants.get())
    assert refused(writer, "read").code == "context_not_granted"


@pytest.mark.parametrize(
    ("operation", "arguments", "fragment"),
    [
        ("search", {"space": "support-kb"}, "'query' is a required property"),
        ("search", {"space": "support-kb", "query": "x", "limit": 100}, "limit"),
        ("read", {"space": "support-kb", "key": 3}, "key"),
        ("read", {"space": "support-kb", "extra": 1}, "Additional properties"),
        ("write", {"space": "support-kb", "value": 1}, "'key' is a required property"),
        ("write", {"space": "support-kb", "key": "k", "value": 1, "expected_version": -1}, "expected_version"),
        ("record_decision", {"space": "support-kb", "title": "t"}, "'rationale' is a required property"),
        ("read", {}, "'space' is a required property"),
        ("delete", {"space": "support-kb"}, "Unknown context operation"),
        ("read", ["support-kb"], "JSON object"),
    ],
)
def test_bad_arguments_are_refused_before_anything_happens(writer, operation, arguments, fragment):
    with pytest.raises(ToolError) as error:
        context_tool_execute(
            agent=writer, spec_spaces=WRITE_SPEC, operation=operation, arguments=arguments, run_id=1, actor_label="a"
        )
    assert error.value.code == "invalid_arguments" and fragment in error.value.message


def test_service_refusals_become_tool_errors(writer, space):
    bad_key = refused(writer, "write", key="bad key", value=1)
    assert bad_key.code == "invalid_arguments" and "not a valid key" in bad_key.message


def test_schemas_offer_the_spaces_the_agent_may_use(world, space, writer):
    assert context_agent_access(agent=writer, spec_spaces=WRITE_SPEC) == {"support-kb": "write"}
    assert context_agent_access(agent=writer, spec_spaces=READ_SPEC) == {"support-kb": "read"}
    assert context_agent_access(agent=writer, spec_spaces=[{"space": "other", "access": "write"}]) == {}
    tools = context_tool_schemas(["support-kb", "faq"], ["support-kb"])
    assert [t["name"] for t in tools] == ["context_search", "context_read", "context_write", "context_record_decision"]
    by_name = {t["name"]: t for t in tools}
    assert by_name["context_search"]["parameters"]["properties"]["space"]["enum"] == ["faq", "support-kb"]
    assert by_name["context_write"]["parameters"]["properties"]["space"]["enum"] == ["support-kb"]
    assert "space" in by_name["context_record_decision"]["parameters"]["required"]
    assert [t["name"] for t in context_tool_schemas(["faq"], [])] == ["context_search", "context_read"]
    assert context_tool_schemas([], []) == []
    # The shared schemas are not changed by building the offers.
    assert "enum" not in CONTEXT_TOOL_SCHEMAS["search"]["parameters"]["properties"]["space"]
    assert CONTEXT_TOOL_NAMES["context_record_decision"] == "record_decision"
