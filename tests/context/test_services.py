"""Context services: spaces, grants, entries, the append-only decision log, versioned state, audit, tenancy."""

import pytest
from django.http import Http404

from apps.audit.models import AuditEvent
from apps.context import selectors, services
from apps.context.models import ContextEntry, ContextGrant, ContextSpace, ContextState
from apps.core.exceptions import AccessDenied, ServiceError
from tests.context.conftest import make_agent


def actions():
    return list(
        AuditEvent.objects.filter(action__startswith="context.").order_by("seq").values_list("action", flat=True)
    )


def test_builders_create_spaces_with_registry_names(world):
    space = services.context_space_create(actor=world["builder"], team=world.team, name="ops-notes")
    assert space.created_by == world["builder"] and actions() == ["context.space_create"]
    event = AuditEvent.objects.get(action="context.space_create")
    assert event.team_slug == "payments" and event.after["name"] == "ops-notes"
    with pytest.raises(ServiceError) as duplicate:
        services.context_space_create(actor=world["builder"], team=world.team, name="ops-notes")
    assert duplicate.value.field == "name" and "already exists" in duplicate.value.message
    with pytest.raises(ServiceError) as bad:
        services.context_space_create(actor=world["builder"], team=world.team, name="Ops Notes")
    assert bad.value.field == "name"
    # The same name in another team is another space.
    services.context_space_create(actor=world["outsider"], team=world.other_team, name="ops-notes")
    for role in ("viewer", "operator", "auditor"):
        with pytest.raises(AccessDenied):
            services.context_space_create(actor=world[role], team=world.team, name=f"by-{role}")
    assert ContextSpace.objects.count() == 2


def test_update_and_delete_need_manage_and_delete_everything(world, space, writer):
    services.context_space_update(actor=world["builder"], space=space, description="New words.")
    services.context_entry_add(actor=world["operator"], space=space, kind="fact", body="Refunds take 5 days.")
    services.context_state_write(actor=world["operator"], space=space, key="mode", value="normal", expected_version=0)
    with pytest.raises(AccessDenied):
        services.context_space_delete(actor=world["operator"], space=space)
    services.context_space_delete(actor=world["owner"], space=space)
    assert not ContextSpace.objects.exists() and not ContextEntry.objects.exists()
    assert not ContextState.objects.exists() and not ContextGrant.objects.exists()
    deleted = AuditEvent.objects.get(action="context.space_delete")
    assert deleted.before["entries"] == 1 and deleted.before["grants"] == ["triage"]


def test_grants_go_to_the_spaces_own_team_and_granting_again_changes_access(world, space, agent):
    grant = services.context_grant_set(actor=world["builder"], space=space, agent=agent, access="read")
    again = services.context_grant_set(actor=world["builder"], space=space, agent=agent, access="write")
    assert again.pk == grant.pk and ContextGrant.objects.get().access == "write"
    assert AuditEvent.objects.filter(action="context.grant_set").order_by("seq").last().before == {
        "agent": "triage",
        "access": "read",
    }
    foreign = make_agent(world.other_team, "outsider-bot")
    with pytest.raises(ServiceError) as other_team:
        services.context_grant_set(actor=world["admin"], space=space, agent=foreign, access="read")
    assert "another team" in other_team.value.message
    with pytest.raises(ServiceError) as bad_access:
        services.context_grant_set(actor=world["builder"], space=space, agent=agent, access="admin")
    assert bad_access.value.field == "access"
    with pytest.raises(AccessDenied):
        services.context_grant_set(actor=world["operator"], space=space, agent=agent, access="read")
    with pytest.raises(AccessDenied):
        services.context_grant_revoke(actor=world["operator"], grant=again)
    services.context_grant_revoke(actor=world["builder"], grant=again)
    assert not ContextGrant.objects.exists() and "context.grant_revoke" in actions()


def test_operators_add_edit_and_delete_facts_and_documents(world, space):
    fact = services.context_entry_add(
        actor=world["operator"], space=space, kind="fact", key="refund-days", body="Refunds take 5 days."
    )
    assert fact.author == "oscar" and fact.run_id is None
    with pytest.raises(ServiceError) as taken:
        services.context_entry_add(actor=world["operator"], space=space, kind="document", key="refund-days", body="x")
    assert taken.value.code == "duplicate_key"
    services.context_entry_update(actor=world["builder"], entry=fact, body="Refunds take 3 days.")
    fact.refresh_from_db()
    assert fact.body == "Refunds take 3 days." and fact.author == "ben"
    entry, created = services.context_entry_put(actor=world["operator"], space=space, key="refund-days", body="7 days.")
    assert not created and entry.pk == fact.pk
    with pytest.raises(ServiceError) as untitled:
        services.context_entry_add(actor=world["operator"], space=space, kind="document", body="Long text.")
    assert untitled.value.field == "title"
    with pytest.raises(AccessDenied):
        services.context_entry_add(actor=world["viewer"], space=space, kind="fact", body="Nope.")
    with pytest.raises(AccessDenied):
        services.context_entry_delete(actor=world["auditor"], entry=fact)
    services.context_entry_delete(actor=world["operator"], entry=fact)
    assert not ContextEntry.objects.exists()
    assert actions() == [
        "context.space_create",
        "context.entry_add",
        "context.entry_update",
        "context.entry_update",
        "context.entry_delete",
    ]


@pytest.mark.parametrize(
    ("kind", "size", "allowed"),
    [("fact", 20_000, True), ("fact", 20_001, False), ("document", 200_000, True), ("document", 200_001, False)],
)
def test_body_limits(world, space, kind, size, allowed):
    add = lambda: services.context_entry_add(  # noqa: E731
        actor=world["operator"], space=space, kind=kind, title="t", body="x" * size
    )
    if allowed:
        assert len(add().body) == size
    else:
        with pytest.raises(ServiceError) as too_long:
            add()
        assert too_long.value.field == "body" and "too long" in too_long.value.message


def test_the_decision_log_is_append_only(world, space):
    first = services.context_decision_record(
        actor=world["operator"], space=space, title="Refunds over 500 need a person", rationale="Fraud seen in May."
    )
    second = services.context_decision_record(
        actor=world["operator"],
        space=space,
        title="Refunds over 800 need a person",
        rationale="Too many reviews.",
        decided_by="support leads",
    )
    assert first.decided_by == "oscar" and second.decided_by == "support leads"
    with pytest.raises(ServiceError) as edit:
        services.context_entry_update(actor=world["owner"], entry=first, body="Changed my mind.")
    assert edit.value.code == "append_only" and "record a new decision" in edit.value.message
    with pytest.raises(ServiceError) as delete:
        services.context_entry_delete(actor=world["owner"], entry=first)
    assert delete.value.code == "append_only"
    with pytest.raises(ServiceError):
        services.context_entry_add(actor=world["operator"], space=space, kind="decision", title="x", body="y")
    assert [d.title for d in selectors.context_decision_list(space=space)] == [second.title, first.title]
    first.refresh_from_db()
    assert first.body == "Fraud seen in May."
    assert actions().count("context.decision_record") == 2


def test_state_writes_are_versioned_and_refuse_stale_versions(world, space):
    write = services.context_state_write
    v1 = write(actor=world["operator"], space=space, key="incident", value={"open": True}, expected_version=0)
    assert v1.version == 1
    v2 = write(actor=world["builder"], space=space, key="incident", value={"open": False}, expected_version=1)
    assert v2.version == 2 and v2.updated_by == "ben"
    with pytest.raises(services.VersionConflict) as stale:
        write(actor=world["operator"], space=space, key="incident", value={"open": True}, expected_version=1)
    assert stale.value.code == "version_conflict" and stale.value.current_version == 2
    assert "it is at version 2, not 1" in stale.value.message and "expected_version 2" in stale.value.message
    with pytest.raises(services.VersionConflict) as exists:
        write(actor=world["operator"], space=space, key="incident", value=1, expected_version=0)
    assert "already exists at version 2" in exists.value.message
    with pytest.raises(services.VersionConflict) as missing:
        write(actor=world["operator"], space=space, key="other", value=1, expected_version=3)
    assert missing.value.current_version == 0 and "expected_version 0" in missing.value.message
    state = ContextState.objects.get(key="incident")
    assert state.value == {"open": False} and state.version == 2
    history = list(selectors.context_state_history(state=state))
    assert [(h.version, h.value, h.author) for h in history] == [
        (2, {"open": False}, "ben"),
        (1, {"open": True}, "oscar"),
    ]
    # Without expected_version the last writer wins (still versioned).
    assert write(actor=world["operator"], space=space, key="incident", value="closed").version == 3
    events = AuditEvent.objects.filter(action="context.state_write").order_by("seq")
    assert [e.after["version"] for e in events] == [1, 2, 3]


def test_state_refuses_bad_input_and_keys_taken_by_entries(world, space):
    services.context_entry_add(actor=world["operator"], space=space, kind="fact", key="policy", body="x")
    cases = [
        ({"key": "policy", "value": 1}, "key"),
        ({"key": "bad key", "value": 1}, "key"),
        ({"key": "k", "value": 1, "expected_version": -1}, "expected_version"),
        ({"key": "k", "value": 1, "expected_version": "1"}, "expected_version"),
        ({"key": "k", "value": "x" * 70_000}, "value"),
        ({"key": "k", "value": float("nan")}, "value"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ServiceError) as refused:
            services.context_state_write(actor=world["operator"], space=space, **kwargs)
        assert refused.value.field == field, kwargs
    with pytest.raises(AccessDenied):
        services.context_state_write(actor=world["viewer"], space=space, key="k", value=1)
    assert not ContextState.objects.exists()


def test_another_teams_space_is_not_found(world, space):
    assert list(selectors.context_space_list(user=world["outsider"])) == []
    with pytest.raises(Http404):
        selectors.context_space_get(user=world["outsider"], pk=space.pk)
    for role in ("viewer", "auditor", "admin"):
        assert selectors.context_space_get(user=world[role], pk=space.pk) == space
    theirs = services.context_space_create(actor=world["outsider"], team=world.other_team, name="their-kb")
    with pytest.raises(Http404):
        selectors.context_space_get(user=world["owner"], pk=theirs.pk)
    listed = selectors.context_space_list(user=world["admin"], filters={"team": "support"})
    assert [s.name for s in listed] == ["their-kb"]


def test_list_counts_and_requests(world, space, writer):
    services.context_entry_add(actor=world["operator"], space=space, kind="fact", body="a")
    services.context_decision_record(actor=world["operator"], space=space, title="t", rationale="r")
    services.context_state_write(actor=world["operator"], space=space, key="s", value=1)
    row = selectors.context_space_list(user=world["viewer"]).get()
    assert (row.entry_count, row.decision_count, row.state_count, row.grant_count) == (2, 1, 1, 1)
    make_agent(world.team, "reader", [{"space": "support-kb", "access": "read"}])
    make_agent(world.team, "unrelated", [{"space": "other", "access": "write"}])
    requests = selectors.context_space_requests(space=space)
    assert [(r["agent"].name, r["access"], r["grant"] is not None) for r in requests] == [
        ("reader", "read", False),
        ("triage", "write", True),
    ]
