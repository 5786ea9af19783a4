"""The audit log: every service writes its event, the chain detects tampering, rows are append-only."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts import services
from apps.accounts.models import Team
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.audit.verify import audit_chain_verify
from tests.factories import UserFactory


def _last(action):
    return AuditEvent.objects.filter(action=action).order_by("-seq").first()


SERVICE_CALLS = [
    ("team.create", lambda w: services.team_create(actor=w["admin"], slug="new", name="New")),
    ("team.update", lambda w: services.team_update(actor=w["owner"], team=w.team, description="x")),
    (
        "membership.add",
        lambda w: services.membership_add(actor=w["owner"], team=w.team, user=UserFactory(), role="viewer"),
    ),
    (
        "membership.change_role",
        lambda w: services.membership_change_role(
            actor=w["owner"], membership=w["viewer"].memberships.get(), role="builder"
        ),
    ),
    (
        "membership.remove",
        lambda w: services.membership_remove(actor=w["owner"], membership=w["viewer"].memberships.get()),
    ),
    ("token.create", lambda w: services.token_create(actor=w["viewer"], team=w.team, name="t", scopes=["read"])),
    ("token.revoke", lambda w: services.token_revoke(actor=w["builder"], token=w["builder"].api_tokens.get())),
    (
        "user.set_org_role",
        lambda w: services.user_set_org_role(actor=w["admin"], user=w["viewer"], org_role="security_auditor"),
    ),
    (
        "user.org_role_sync",
        lambda w: services.user_sync_sso_roles(user=w["viewer"], team_roles={}, org_role="security_auditor"),
    ),
]


@pytest.mark.parametrize(("action", "call"), SERVICE_CALLS, ids=[a for a, _ in SERVICE_CALLS])
def test_every_service_writes_its_event(world, action, call):
    before = AuditEvent.objects.count()
    call(world)
    event = _last(action)
    assert event is not None and event.seq > before, f"{action} wrote no audit event"
    assert event.outcome == "success"
    assert audit_chain_verify().ok


def test_event_records_actor_team_before_after_request_and_ip(client, world):
    client.force_login(world["owner"])
    client.post(
        "/teams/payments/",
        {"action": "update", "name": "Payments EU", "description": "", "monthly_budget": "25"},
        HTTP_X_REQUEST_ID="req123abc",
        REMOTE_ADDR="10.1.2.3",
    )
    event = _last("team.update")
    assert (event.actor_type, event.actor_label) == ("user", "olivia")
    assert event.team_slug == "payments"
    assert event.before["name"] == "Payments" and event.after["name"] == "Payments EU"
    assert event.after["monthly_budget"] == "25.00"
    assert event.request_id == "req123abc"
    assert event.ip == "10.1.2.3"


def test_refused_change_writes_nothing_but_the_denial(client, world):
    client.force_login(world["viewer"])
    count = AuditEvent.objects.count()
    response = client.post(
        "/teams/payments/", {"action": "update", "name": "Hacked", "description": "", "monthly_budget": "1"}
    )
    assert response.status_code == 403
    assert Team.objects.get(slug="payments").name == "Payments"
    new = list(AuditEvent.objects.filter(seq__gt=count))
    assert [e.action for e in new] == ["permission.denied"]
    assert new[0].outcome == "denied" and new[0].metadata["permission"] == "team.change"


def test_a_change_and_its_event_roll_back_together(world):
    count = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.team_update(actor=world["owner"], team=world.team, description="half-written")
        raise RuntimeError("the caller failed after the service")
    assert AuditEvent.objects.count() == count
    assert Team.objects.get(slug="payments").description == ""
    assert audit_chain_verify().ok


def _raw(sql, params=()):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A database superuser can switch the guard off; audit_verify must still catch what they do.
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")


def test_audit_verify_names_the_altered_event(world):
    target = _last("token.create")
    assert audit_chain_verify().ok
    _raw("UPDATE audit_auditevent SET actor_label = %s WHERE seq = %s", ["someone-else", target.seq])
    result = audit_chain_verify()
    assert not result.ok and result.first_bad_seq == target.seq
    with pytest.raises(CommandError, match=f"Event #{target.seq} .*was altered"):
        call_command("audit_verify")


def test_audit_verify_names_a_missing_event(world):
    target = _last("token.create")
    _raw("DELETE FROM audit_auditevent WHERE seq = %s", [target.seq])
    with pytest.raises(CommandError, match=f"Event #{target.seq} is missing"):
        call_command("audit_verify")


def test_audit_verify_notices_the_newest_events_removed(world):
    last = AuditEvent.objects.order_by("-seq").first()
    _raw("DELETE FROM audit_auditevent WHERE seq = %s", [last.seq])
    with pytest.raises(CommandError, match=f"Event #{last.seq} is missing"):
        call_command("audit_verify")


def test_audit_verify_catches_a_rewritten_hash(world):
    """Recomputing one event's hash after altering it still breaks the link to the next event."""
    target = _last("token.create")
    audit_record(actor=None, action="system.later_event")
    event = AuditEvent.objects.get(seq=target.seq)
    event.actor_label = "forged"
    forged_hash = event.compute_hash()
    _raw("UPDATE audit_auditevent SET actor_label = %s, hash = %s WHERE seq = %s", ["forged", forged_hash, target.seq])
    result = audit_chain_verify()
    assert not result.ok and result.first_bad_seq == target.seq + 1


def test_audit_verify_command_reports_an_intact_chain(world, capsys):
    call_command("audit_verify")
    assert "Audit chain intact" in capsys.readouterr().out


def test_events_cannot_be_changed_through_the_orm(world):
    event = AuditEvent.objects.first()
    with pytest.raises(TypeError, match="append-only"):
        event.save()
    with pytest.raises(TypeError, match="append-only"):
        event.delete()
    with pytest.raises(TypeError, match="append-only"):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(TypeError, match="append-only"):
        AuditEvent.objects.all().delete()


@pytest.mark.server
def test_postgresql_refuses_update_and_delete_of_audit_rows(world):
    from django.db import DatabaseError

    for sql in ("UPDATE audit_auditevent SET action = 'x'", "DELETE FROM audit_auditevent"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert audit_chain_verify().ok


def test_audit_page_filters_and_exports(client, world):
    services.token_create(actor=world["viewer"], team=world.team, name="=HYPERLINK(evil)", scopes=["read"])
    audit_record(actor=None, action="system.test", metadata={"n": 1})
    client.force_login(world["auditor"])
    page = client.get("/audit/", {"action": "token.", "team": "payments"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "<code>token.create</code>" in body and "<code>membership.add</code>" not in body

    jsonl = b"".join(client.get("/audit/export.jsonl", {"action": "token.create"}).streaming_content).decode()
    rows = [json.loads(line) for line in jsonl.splitlines()]
    assert rows and all(r["action"] == "token.create" for r in rows)
    assert {"seq", "hash", "prev_hash", "actor_label", "before", "after"} <= set(rows[0])

    csv_text = b"".join(client.get("/audit/export.csv", {"action": "token.create"}).streaming_content).decode()
    assert csv_text.splitlines()[0].startswith("seq,created_at,actor_type")
    assert "'=HYPERLINK(evil)" in csv_text  # formulas are neutralised for spreadsheets

    since = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert "<code>token.create</code>" not in client.get("/audit/", {"since": since}).content.decode()


def test_audit_api_rejects_malformed_filters(client, world):
    client.force_login(world["auditor"])
    response = client.get("/api/v1/audit-events/", {"since": "yesterday"})
    assert response.status_code == 400
    assert "since" in response.json()


def test_audit_verify_page_shows_the_result(client, world):
    client.force_login(world["admin"])
    assert "Intact" in client.get("/audit/verify/").content.decode()
    _raw("UPDATE audit_auditevent SET action = %s WHERE seq = 1", ["tampered"])
    assert "Event #1" in client.get("/audit/verify/").content.decode()
