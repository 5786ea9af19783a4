"""The runtime API: start and watch runs, decide approvals, manage webhooks and schedules, with clear 4xx answers."""

from __future__ import annotations

import time

import pytest

from apps.accounts.services import token_create
from apps.audit.models import AuditEvent
from apps.runtime.models import Approval, ApprovalKind, ApprovalStatus, Run, RunStatus, Schedule, Webhook
from tests.runtime.matrix import SIMPLE_SCRIPT, approval_agent

pytestmark = pytest.mark.django_db

TICKET_SCHEMA = {"type": "object", "required": ["ticket"], "properties": {"ticket": {"type": "string"}}}


def api(client, method: str, path: str, data=None, **headers):
    return getattr(client, method)(f"/api/v1{path}", data, content_type="application/json", **headers)


def bearer(world, role: str, scopes: list[str]) -> dict:
    _, secret = token_create(actor=world[role], team=world.team, name=f"{role}-{'-'.join(scopes)}", scopes=scopes)
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_start_a_run_then_read_it_with_its_steps(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT, input_schema=TICKET_SCHEMA)
    client.force_login(world["operator"])
    created = api(client, "post", "/runs/", {"agent": agent.pk, "input": {"ticket": "T-1"}, "session": "chat-9"})
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "queued" and body["version"] == "1.0.0" and body["trigger"] == "api"
    assert body["session"] == "chat-9" and body["simulated"] is True
    assert body["steps_url"] == f"http://testserver/api/v1/runs/{body['id']}/steps/"

    rt.drive(Run.objects.get(pk=body["id"]))
    run = api(client, "get", f"/runs/{body['id']}/").json()
    assert run["status"] == "succeeded" and run["output"] == "Done with T-1." and run["finished"]
    assert run["tokens_in"] > 0 and float(run["cost_usd"]) > 0 and run["duration_ms"] is not None
    assert [(s["index"], s["kind"], s["status"]) for s in run["steps"]] == [(0, "model_call", "succeeded")]
    steps = api(client, "get", f"/runs/{body['id']}/steps/?after=0").json()
    assert steps["count"] == 0
    assert api(client, "get", f"/runs/{body['id']}/steps/?after=x").status_code == 400


def test_bad_input_answers_400_naming_the_field(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT, input_schema=TICKET_SCHEMA)
    client.force_login(world["operator"])
    wrong = api(client, "post", "/runs/", {"agent": agent.pk, "input": {"ticket": 5}})
    assert wrong.status_code == 400 and "input schema" in wrong.json()["input"][0]
    staging = api(client, "post", "/runs/", {"agent": agent.pk, "channel": "staging"})
    assert staging.status_code == 400 and "has no version in staging" in staging.json()["channel"][0]
    too_long = api(client, "post", "/runs/", {"agent": agent.pk, "input": {"ticket": "x"}, "wait": 61})
    assert too_long.status_code == 400 and "wait" in too_long.json()
    assert api(client, "post", "/runs/", {"input": {}}).status_code == 400  # no agent
    assert api(client, "get", "/runs/?status=bogus").status_code == 400
    assert not Run.objects.exists()


def test_another_teams_agent_and_run_are_404(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT)
    run = rt.start(agent, {"ticket": "T-1"})
    client.force_login(world["outsider"])
    assert api(client, "post", "/runs/", {"agent": agent.pk, "input": {}}).status_code == 404
    assert api(client, "get", f"/runs/{run.pk}/").status_code == 404
    assert api(client, "post", f"/runs/{run.pk}/cancel/").status_code == 404
    assert api(client, "get", "/runs/").json()["count"] == 0


def test_the_same_idempotency_key_returns_the_same_run_with_200(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT)
    client.force_login(world["operator"])
    data = {"agent": agent.pk, "input": {"ticket": "T-1"}}
    first = api(client, "post", "/runs/", data, HTTP_IDEMPOTENCY_KEY="order-77")
    again = api(client, "post", "/runs/", data, HTTP_IDEMPOTENCY_KEY="order-77")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and Run.objects.count() == 1
    other = api(client, "post", "/runs/", data, HTTP_IDEMPOTENCY_KEY="order-78")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


def test_wait_answers_promptly_with_the_runs_current_status(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT)
    client.force_login(world["operator"])
    data = {"agent": agent.pk, "input": {"ticket": "T-1"}, "wait": 0.3}
    started = time.monotonic()
    queued = api(client, "post", "/runs/", data, HTTP_IDEMPOTENCY_KEY="k-1")
    elapsed = time.monotonic() - started
    # Nothing executes runs in this test, so the run is still queued when the wait is over.
    assert queued.status_code == 201 and queued.json()["status"] == "queued"
    assert 0.3 <= elapsed < 5
    rt.drive(Run.objects.get(pk=queued.json()["id"]))
    started = time.monotonic()
    done = api(client, "post", "/runs/", {**data, "wait": 30}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert time.monotonic() - started < 5  # a finished run is answered at once, not after 30 s
    assert (
        done.status_code == 200 and done.json()["status"] == "succeeded" and done.json()["output"] == "Done with T-1."
    )


def test_wait_stops_at_a_pause_for_a_person(client, world, rt):
    agent = approval_agent(rt)
    client.force_login(world["operator"])
    data = {"agent": agent.pk, "input": {"ticket": "T-2"}}
    first = api(client, "post", "/runs/", data, HTTP_IDEMPOTENCY_KEY="pause-1")
    assert rt.drive(Run.objects.get(pk=first.json()["id"])).status == RunStatus.WAITING
    started = time.monotonic()
    answer = api(client, "post", "/runs/", {**data, "wait": 30}, HTTP_IDEMPOTENCY_KEY="pause-1")
    assert time.monotonic() - started < 5
    assert answer.status_code == 200 and answer.json()["status"] == "waiting_for_approval"


def test_tokens_need_the_run_scope_to_start_and_cancel(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT)
    read_only = bearer(world, "operator", ["read"])
    runner = bearer(world, "operator", ["read", "run"])
    data = {"agent": agent.pk, "input": {"ticket": "T-1"}}
    refused = api(client, "post", "/runs/", data, **read_only)
    assert refused.status_code == 403 and "'run' scope" in refused.json()["detail"]
    started = api(client, "post", "/runs/", data, **runner)
    assert started.status_code == 201 and started.json()["started_by"] == "oscar"
    assert api(client, "get", f"/runs/{started.json()['id']}/", **read_only).status_code == 200
    cancelled = api(client, "post", f"/runs/{started.json()['id']}/cancel/", {"reason": "oops"}, **runner)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = api(client, "post", f"/runs/{started.json()['id']}/cancel/", {}, **runner)
    assert again.status_code == 400 and "already ended" in again.json()["detail"]
    # Webhooks change what may start runs without a person: they need `write`, which `run` is not.
    builder_runner = bearer(world, "builder", ["read", "run"])
    assert api(client, "post", f"/agents/{agent.pk}/webhooks/", {"name": "x"}, **builder_runner).status_code == 403


def test_approvals_are_listed_and_decided(client, world, rt):
    run = rt.run(approval_agent(rt), {"ticket": "T-3"})
    approval = Approval.objects.get(run=run)
    client.force_login(world["operator"])
    pending = api(client, "get", "/approvals/").json()
    assert [a["id"] for a in pending["results"]] == [approval.pk]
    item = pending["results"][0]
    assert item["tool_name"] == "ticket.close" and item["arguments"] == {"q": "T-3"} and item["run"] == run.pk
    assert "high risk" in item["reason_required"] and item["choices"] == {}
    assert api(client, "get", "/approvals/?status=nonsense").status_code == 400

    no_reason = api(client, "post", f"/approvals/{approval.pk}/decide/", {"approve": False})
    assert no_reason.status_code == 400 and "comment" in no_reason.json()
    decided = api(client, "post", f"/approvals/{approval.pk}/decide/", {"approve": False, "comment": "wrong ticket"})
    assert decided.status_code == 200
    assert decided.json()["status"] == "rejected" and decided.json()["decided_by"] == "oscar"
    assert AuditEvent.objects.filter(action="approval.reject").exists()
    twice = api(client, "post", f"/approvals/{approval.pk}/decide/", {"approve": True})
    assert twice.status_code == 400 and "already decided" in twice.json()["detail"]
    assert api(client, "get", "/approvals/").json()["count"] == 0
    assert api(client, "get", "/approvals/?status=rejected").json()["count"] == 1
    assert api(client, "get", "/approvals/?status=all").json()["count"] == 1
    assert rt.drive(run).output == "Closed T-3."


def test_an_uncertain_call_takes_a_decision(client, world, rt):
    approval = Approval.objects.get(run=rt.run(approval_agent(rt), {"ticket": "T-3"}))
    Approval.objects.filter(pk=approval.pk).update(kind=ApprovalKind.UNCERTAIN)
    client.force_login(world["operator"])
    shown = api(client, "get", f"/approvals/{approval.pk}/").json()
    assert set(shown["choices"]) == {"retry", "assume_done", "fail"}
    bad = api(client, "post", f"/approvals/{approval.pk}/decide/", {"approve": True, "decision": "maybe"})
    assert bad.status_code == 400 and "decision" in bad.json()
    ok = api(client, "post", f"/approvals/{approval.pk}/decide/", {"approve": True, "decision": "assume_done"})
    assert ok.json()["decision"] == "assume_done" and ok.json()["status"] == ApprovalStatus.APPROVED


def test_webhooks_show_their_secret_only_when_created_or_rotated(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT)
    client.force_login(world["builder"])
    created = api(client, "post", f"/agents/{agent.pk}/webhooks/", {"name": "crm", "channel": "production"})
    assert created.status_code == 201
    body = created.json()
    webhook = Webhook.objects.get(pk=body["id"])
    assert body["secret"].startswith("whsec_") and body["url"] == f"http://testserver/hooks/{webhook.token}/"
    listed = api(client, "get", f"/agents/{agent.pk}/webhooks/").json()
    assert listed["count"] == 1 and "secret" not in listed["results"][0]
    read = api(client, "get", f"/webhooks/{webhook.pk}/")
    assert "secret" not in read.json() and body["secret"] not in read.content.decode()
    assert webhook.secret_ciphertext not in read.content.decode()
    rotated = api(client, "post", f"/webhooks/{webhook.pk}/rotate/").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != body["secret"]
    off = api(client, "patch", f"/webhooks/{webhook.pk}/enabled/", {"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    on = api(client, "post", f"/webhooks/{webhook.pk}/enabled/", {"enabled": True})
    assert on.json()["enabled"] is True
    duplicate = api(client, "post", f"/agents/{agent.pk}/webhooks/", {"name": "crm"})
    assert duplicate.status_code == 400 and "already has a webhook named crm" in duplicate.json()["name"][0]
    bad_name = api(client, "post", f"/agents/{agent.pk}/webhooks/", {"name": "Not OK!"})
    assert bad_name.status_code == 400 and "name" in bad_name.json()
    assert api(client, "delete", f"/webhooks/{webhook.pk}/").status_code == 204
    assert api(client, "get", f"/webhooks/{webhook.pk}/").status_code == 404


def test_schedules_are_created_changed_and_deleted(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT, input_schema=TICKET_SCHEMA)
    client.force_login(world["builder"])
    path = f"/agents/{agent.pk}/schedules/"
    data = {"name": "nightly", "cron": "0 3 * * *", "timezone": "Europe/Paris", "input": {"ticket": "daily"}}
    bad_cron = api(client, "post", path, {**data, "cron": "0 3 * *"})
    assert bad_cron.status_code == 400 and "five fields" in bad_cron.json()["cron"][0]
    bad_input = api(client, "post", path, {**data, "input": {}})
    assert bad_input.status_code == 400 and "input" in bad_input.json()
    created = api(client, "post", path, data)
    assert created.status_code == 201
    assert created.json()["timezone"] == "Europe/Paris" and created.json()["input"] == {"ticket": "daily"}
    pk = created.json()["id"]
    assert api(client, "get", path).json()["count"] == 1
    changed = api(client, "patch", f"/schedules/{pk}/", {"cron": "30 6 * * 1-5", "enabled": False, "timezone": "UTC"})
    assert changed.status_code == 200
    assert (changed.json()["cron"], changed.json()["enabled"], changed.json()["timezone"]) == (
        "30 6 * * 1-5",
        False,
        "UTC",
    )
    assert api(client, "patch", f"/schedules/{pk}/", {"timezone": "Nowhere/Land"}).status_code == 400
    assert api(client, "delete", f"/schedules/{pk}/").status_code == 204
    assert not Schedule.objects.exists()


def test_playground_runs_the_draft(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT)
    client.force_login(world["builder"])
    created = api(client, "post", f"/agents/{agent.pk}/playground/", {"input": {"ticket": "T-4"}})
    assert created.status_code == 201
    assert created.json()["is_draft"] is True and created.json()["version"] == "draft"
    assert created.json()["trigger"] == "playground"
    client.force_login(world["operator"])
    assert api(client, "post", f"/agents/{agent.pk}/playground/", {"input": {}}).status_code == 403


def test_runs_list_filters(client, world, rt):
    helper = rt.agent("helper", script=SIMPLE_SCRIPT)
    other = rt.agent("other", script=SIMPLE_SCRIPT)
    done = rt.run(helper, {"ticket": "T-1"})
    queued = rt.start(other, {"ticket": "T-2"})
    client.force_login(world["viewer"])
    assert [r["id"] for r in api(client, "get", "/runs/").json()["results"]] == [queued.pk, done.pk]
    assert [r["id"] for r in api(client, "get", "/runs/?status=succeeded").json()["results"]] == [done.pk]
    assert [r["id"] for r in api(client, "get", "/runs/?agent=other").json()["results"]] == [queued.pk]
    assert [r["id"] for r in api(client, "get", "/runs/?trigger=api&since=1h").json()["results"]] == [
        queued.pk,
        done.pk,
    ]
