"""The alerts API and pages: rules CRUD, events unacknowledged first, acknowledgement, clear 4xx answers."""

from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.observability import services
from apps.observability.models import AlertEvent, AlertKind, AlertRule
from tests.observability.test_alerts import FAIL_SCRIPT

pytestmark = pytest.mark.django_db

RULE = {"team": "payments", "name": "Failures", "kind": "failure_rate", "threshold": "25", "window_minutes": 30}


def api(client, method: str, path: str, data=None):
    return getattr(client, method)(f"/api/v1{path}", data, content_type="application/json")


def fired_events(rt, world, count: int = 1) -> list[AlertEvent]:
    """Fire `count` failure-rate rules from five real failed runs; return their events."""
    flaky = rt.agent("flaky", script=FAIL_SCRIPT)
    for _ in range(5):
        rt.run(flaky)
    for i in range(count):
        services.alert_rule_create(
            actor=world["builder"], team=world.team, name=f"failures {i}", kind="failure_rate", threshold=10
        )
    services.alerts_evaluate()
    return list(AlertEvent.objects.order_by("pk"))


def test_builder_creates_reads_changes_and_deletes_a_rule(client, world):
    client.force_login(world["builder"])
    created = api(client, "post", "/alert-rules/", {**RULE, "webhook_url": "https://93.184.215.14/hooks/SECRET-T0KEN"})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["team"] == "payments" and body["kind"] == "failure_rate" and body["threshold"] == "25.0000"
    assert body["window_minutes"] == 30 and body["firing"] is False and body["created_by"] == "ben"
    assert body["webhook"] == "https://93.184.215.14/…" and "SECRET-T0KEN" not in created.content.decode()
    assert body["url"] == f"http://testserver/api/v1/alert-rules/{body['id']}/"

    changed = api(client, "patch", f"/alert-rules/{body['id']}/", {"threshold": "40", "enabled": False})
    assert changed.status_code == 200 and changed.json()["threshold"] == "40.0000" and not changed.json()["enabled"]
    assert AlertRule.objects.get().webhook_url.endswith("SECRET-T0KEN"), "an update without the URL keeps it"

    listed = api(client, "get", "/alert-rules/?team=payments").json()
    assert [r["name"] for r in listed["results"]] == ["Failures"]
    assert api(client, "delete", f"/alert-rules/{body['id']}/").status_code == 204
    assert not AlertRule.objects.exists()
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="alert_rule.").order_by("seq")] == [
        "alert_rule.create",
        "alert_rule.update",
        "alert_rule.delete",
    ]


def test_bad_rule_input_answers_400_saying_what_to_fix(client, world, settings):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = []
    client.force_login(world["builder"])
    ssrf = api(client, "post", "/alert-rules/", {**RULE, "webhook_url": "http://169.254.169.254/latest/"})
    assert ssrf.status_code == 400
    assert "link-local" in ssrf.json()["webhook_url"][0] and ssrf.json()["code"] == "ssrf_refused"
    kind = api(client, "post", "/alert-rules/", {**RULE, "kind": "vibes"})
    assert kind.status_code == 400 and "kind" in kind.json()
    rate = api(client, "post", "/alert-rules/", {**RULE, "threshold": "150"})
    assert rate.status_code == 400 and "percentage below 100" in rate.json()["threshold"][0]
    missing = api(client, "post", "/alert-rules/", {"team": "payments"})
    assert missing.status_code == 400 and {"name", "kind", "threshold"} <= set(missing.json())
    assert api(client, "post", "/alert-rules/", {**RULE, "agent": 999999}).status_code == 404
    assert not AlertRule.objects.exists()


def test_viewer_may_not_create_and_outsider_sees_nothing(client, world):
    client.force_login(world["viewer"])
    denied = api(client, "post", "/alert-rules/", RULE)
    assert denied.status_code == 403 and "alert.manage" in denied.json()["detail"]
    rule = services.alert_rule_create(actor=world["owner"], team=world.team, name="r", kind="latency_p95", threshold=5)
    assert api(client, "get", f"/alert-rules/{rule.pk}/").status_code == 200

    client.force_login(world["outsider"])
    assert api(client, "get", f"/alert-rules/{rule.pk}/").status_code == 404
    assert api(client, "patch", f"/alert-rules/{rule.pk}/", {"threshold": "1"}).status_code == 404
    assert api(client, "post", "/alert-rules/", RULE).status_code == 404, "another team is not there"
    assert api(client, "get", "/alert-rules/").json()["results"] == []


def test_events_list_unacknowledged_first_and_operators_acknowledge(client, rt, world):
    first, second = fired_events(rt, world, count=2)
    client.force_login(world["viewer"])
    assert api(client, "post", f"/alert-events/{first.pk}/acknowledge/").status_code == 403

    client.force_login(world["operator"])
    acked = api(client, "post", f"/alert-events/{first.pk}/acknowledge/")
    assert acked.status_code == 200
    assert acked.json()["acknowledged_by"] == "oscar" and acked.json()["acknowledged_at"]
    again = api(client, "post", f"/alert-events/{first.pk}/acknowledge/")
    assert again.status_code == 400 and "already acknowledged by oscar" in again.json()["detail"]

    listed = api(client, "get", "/alert-events/").json()["results"]
    assert [e["id"] for e in listed] == [second.pk, first.pk]
    assert listed[0]["kind"] == "failure_rate" and listed[0]["rule_name"] == "failures 1"
    assert listed[0]["page_url"] == f"http://testserver/observability/alerts/events/{second.pk}/"
    assert [e["id"] for e in api(client, "get", "/alert-events/?state=open").json()["results"]] == [second.pk]
    bad = api(client, "get", "/alert-events/?state=sleeping")
    assert bad.status_code == 400 and "open, acknowledged, all" in bad.json()["state"][0]

    client.force_login(world["outsider"])
    assert api(client, "get", f"/alert-events/{second.pk}/").status_code == 404
    assert api(client, "post", f"/alert-events/{second.pk}/acknowledge/").status_code == 404


def test_events_page_shows_acknowledge_only_to_those_who_may(client, rt, world):
    [event] = fired_events(rt, world)
    client.force_login(world["viewer"])
    page = client.get("/observability/alerts/")
    assert page.status_code == 200
    assert event.message in page.content.decode() and "Acknowledge</button>" not in page.content.decode()

    client.force_login(world["operator"])
    page = client.get("/observability/alerts/").content.decode()
    assert "Acknowledge</button>" in page
    done = client.post(f"/observability/alerts/events/{event.pk}/acknowledge/", {"next": "/observability/alerts/"})
    assert done.status_code == 302 and done["Location"] == "/observability/alerts/"
    event.refresh_from_db()
    assert event.acknowledged_by == world["operator"]
    detail = client.get(f"/observability/alerts/events/{event.pk}/").content.decode()
    assert "by oscar" in detail and "Acknowledge</button>" not in detail


def test_rule_pages_create_edit_and_delete(client, world, settings):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = []
    client.force_login(world["viewer"])
    assert client.get("/observability/alerts/rules/new/").status_code == 403

    client.force_login(world["builder"])
    form = {"name": "Slow runs", "kind": AlertKind.LATENCY_P95, "threshold": "2000", "window_minutes": "60"}
    refused = client.post("/observability/alerts/rules/new/", {**form, "webhook_url": "http://127.0.0.1/x"})
    assert refused.status_code == 400 and "loopback" in refused.content.decode()
    created = client.post("/observability/alerts/rules/new/", {**form, "enabled": "on"})
    assert created.status_code == 302
    rule = AlertRule.objects.get(name="Slow runs")
    listing = client.get("/observability/alerts/rules/").content.decode()
    assert "Slow runs" in listing and f"/observability/alerts/rules/{rule.pk}/edit/" in listing

    edited = client.post(f"/observability/alerts/rules/{rule.pk}/edit/", {**form, "threshold": "3000"})
    assert edited.status_code == 302
    rule.refresh_from_db()
    assert rule.threshold == 3000 and not rule.enabled
    assert client.get(f"/observability/alerts/rules/{rule.pk}/delete/").status_code == 200
    assert client.post(f"/observability/alerts/rules/{rule.pk}/delete/").status_code == 302
    assert not AlertRule.objects.exists()
