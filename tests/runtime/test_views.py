"""The runtime pages as people use them: start a run, watch it, cancel it, decide approvals, set up triggers."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from apps.audit.models import AuditEvent
from apps.runtime.models import Approval, ApprovalKind, ApprovalStatus, Run, RunStatus, Schedule, StepStatus, Webhook
from apps.runtime.services import approval_decide, run_start_draft
from tests.runtime.matrix import SIMPLE_SCRIPT, approval_agent

pytestmark = pytest.mark.django_db

TICKET_SCHEMA = {
    "type": "object",
    "required": ["ticket"],
    "properties": {"ticket": {"type": "string"}},
    "examples": [{"ticket": "T-42"}],
}


def steps_json(client, run, after=None) -> dict:
    url = f"/runs/{run.pk}/steps.json" + (f"?after={after}" if after is not None else "")
    response = client.get(url)
    assert response.status_code == 200
    return response.json()


def test_run_form_starts_a_run_and_its_page_shows_the_steps_and_the_output(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT, input_schema=TICKET_SCHEMA)
    client.force_login(world["operator"])
    form = client.get(f"/agents/{agent.pk}/run/").content.decode()
    assert "T-42" in form  # the input starts from the schema's example
    response = client.post(
        f"/agents/{agent.pk}/run/", {"input": '{"ticket": "T-7"}', "channel": "production", "session": "chat-1"}
    )
    run = Run.objects.get(agent=agent)
    assert response["Location"] == f"/runs/{run.pk}/"
    assert (run.trigger, run.started_by, run.session.key, run.status) == ("ui", world["operator"], "chat-1", "queued")
    queued = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="cancel-form"' in queued and "run_detail.js" in queued

    rt.drive(run)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "Done with T-7." in page
    assert "simulated/sim-small" in page and ">simulated<" in page and "Succeeded" in page
    assert 'id="cancel-form"' not in page  # a finished run cannot be cancelled
    assert f'href="/agents/{agent.pk}/versions/1.0.0/"' in page


def test_run_form_shows_what_is_wrong_with_the_input(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT, input_schema=TICKET_SCHEMA)
    client.force_login(world["operator"])
    bad_json = client.post(f"/agents/{agent.pk}/run/", {"input": "{oops", "channel": "production"})
    assert bad_json.status_code == 400 and "Not valid JSON" in bad_json.content.decode()
    bad_shape = client.post(f"/agents/{agent.pk}/run/", {"input": '{"ticket": 7}', "channel": "production"})
    assert bad_shape.status_code == 400
    assert "does not match the agent&#x27;s input schema" in bad_shape.content.decode()
    no_staging = client.post(f"/agents/{agent.pk}/run/", {"input": '{"ticket": "T"}', "channel": "staging"})
    assert no_staging.status_code == 400 and "has no version in staging" in no_staging.content.decode()
    assert not Run.objects.exists()


def test_viewer_sees_runs_but_gets_no_run_form(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT)
    run = rt.run(agent, {"ticket": "T-1"})
    client.force_login(world["viewer"])
    assert 'id="run-form"' not in client.get(f"/agents/{agent.pk}/run/").content.decode()
    assert client.post(f"/agents/{agent.pk}/run/", {"input": "{}", "channel": "production"}).status_code == 403
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "Done with T-1." in page and 'id="cancel-form"' not in page


def test_runs_list_shows_columns_and_filters(client, world, rt):
    helper = rt.agent("helper", script=SIMPLE_SCRIPT)
    other = rt.agent("other", script=[{"answer": "hi"}])
    done = rt.run(helper, {"ticket": "T-1"})
    queued = rt.start(other, {"ticket": "T-2"})
    draft = run_start_draft(actor=world["builder"], agent=helper, input={"ticket": "T-3"})
    client.force_login(world["viewer"])
    page = client.get("/runs/").content.decode()
    rows = re.findall(r'<tr data-run="(\d+)">', page)
    assert rows == [str(draft.pk), str(queued.pk), str(done.pk)]  # newest first
    assert ">draft<" in page and "1.0.0" in page and "Studio playground" in page and "oscar" in page
    filtered = client.get("/runs/?status=succeeded").content.decode()
    assert re.findall(r'<tr data-run="(\d+)">', filtered) == [str(done.pk)]
    by_agent = client.get("/runs/?agent=other&since=24h").content.decode()
    assert re.findall(r'<tr data-run="(\d+)">', by_agent) == [str(queued.pk)]
    by_trigger = client.get("/runs/?trigger=playground").content.decode()
    assert re.findall(r'<tr data-run="(\d+)">', by_trigger) == [str(draft.pk)]


def test_steps_json_returns_the_new_and_the_changed_steps(client, world, rt):
    run = rt.run(approval_agent(rt), {"ticket": "T-5"})
    assert run.status == RunStatus.WAITING
    client.force_login(world["viewer"])
    everything = steps_json(client, run)
    assert everything["run"]["status"] == "waiting_for_approval" and not everything["run"]["finished"]
    model, tool = everything["steps"]
    assert (model["kind"], tool["kind"], tool["status"], tool["name"]) == (
        "model_call",
        "tool_call",
        "waiting",
        "ticket.close",
    )
    approval = Approval.objects.get(run=run)
    assert tool["approval_url"] == f"/approvals/{approval.pk}/" and tool["input"] == {"q": "T-5"}
    assert [s["index"] for s in steps_json(client, run, after=0)["steps"]] == [1]
    assert steps_json(client, run, after=1)["steps"] == []

    approval_decide(actor=world["operator"], approval=approval, approve=False, comment="not today")
    rt.drive(run)
    # The page asks again from before the step that was waiting: it sees the change and what came after.
    later = steps_json(client, run, after=0)
    # The rejected call, the person's decision as its own step, then the model's answer.
    assert [(s["index"], s["kind"], s["status"]) for s in later["steps"]] == [
        (1, "tool_call", "rejected"),
        (2, "approval", "rejected"),
        (3, "model_call", "succeeded"),
    ]
    assert "not today" in later["steps"][0]["error"]
    assert later["run"]["finished"] and later["run"]["output"] == "Closed T-5."
    assert later["run"]["tokens_in"] > 0 and Decimal(later["run"]["cost_usd"]) > 0


def test_untrusted_text_is_escaped_on_the_pages(client, world, rt):
    agent = rt.agent("echo", script=[{"answer": "You said {input.ticket}"}])
    run = rt.run(agent, {"ticket": "<script>alert(1)</script>"})
    client.force_login(world["viewer"])
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # The live updates hand the text to the script as JSON data, which draws it with textContent.
    assert steps_json(client, run)["run"]["output"] == "You said <script>alert(1)</script>"


def test_cancel_button_stops_a_queued_run(client, world, rt):
    run = rt.start(rt.agent("helper", script=SIMPLE_SCRIPT), {"ticket": "T-1"})
    client.force_login(world["operator"])
    response = client.post(f"/runs/{run.pk}/cancel/", {"reason": "wrong ticket"}, follow=True)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and "wrong ticket" in run.error
    page = response.content.decode()
    assert "was asked to stop" in page and 'id="cancel-form"' not in page and "Cancelled" in page
    again = client.post(f"/runs/{run.pk}/cancel/", follow=True).content.decode()
    assert "already ended" in again


def test_approvals_inbox_lists_a_pending_call_and_approving_records_the_decision(client, world, rt):
    run = rt.run(approval_agent(rt), {"ticket": "T-8"})
    approval = Approval.objects.get(run=run)
    client.force_login(world["operator"])
    inbox = client.get("/approvals/").content.decode()
    assert f'data-approval="{approval.pk}"' in inbox
    assert "ticket.close" in inbox and "careful-bot" in inbox and f'href="/runs/{run.pk}/"' in inbox
    assert "&quot;q&quot;: &quot;T-8&quot;" in inbox  # the arguments, pretty and escaped
    assert "high risk" in inbox  # why a person must decide
    assert 'name="action" value="approve"' in inbox

    detail = client.get(f"/approvals/{approval.pk}/").content.decode()
    assert "Waiting for approval" in detail and "simulated/sim-small" in detail  # the run so far

    response = client.post(f"/approvals/{approval.pk}/decide/", {"action": "approve", "comment": "looks right"})
    assert response["Location"] == "/approvals/"
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED and approval.decided_by == world["operator"]
    event = AuditEvent.objects.get(action="approval.approve")
    assert event.actor_label == "oscar" and event.after["comment"] == "looks right"
    assert f'data-approval="{approval.pk}"' not in client.get("/approvals/").content.decode()
    decided = client.get("/approvals/?status=decided").content.decode()
    assert f'data-approval="{approval.pk}"' in decided and "looks right" in decided


def test_rejecting_needs_a_reason_and_a_viewer_cannot_decide(client, world, rt):
    approval = Approval.objects.get(run=rt.run(approval_agent(rt), {"ticket": "T-8"}))
    client.force_login(world["viewer"])
    page = client.get(f"/approvals/{approval.pk}/").content.decode()
    assert 'name="action"' not in page
    assert client.post(f"/approvals/{approval.pk}/decide/", {"action": "approve"}).status_code == 403
    client.force_login(world["operator"])
    response = client.post(f"/approvals/{approval.pk}/decide/", {"action": "reject", "comment": ""}, follow=True)
    assert "Say why you reject the call" in response.content.decode()
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


def test_an_uncertain_call_offers_the_three_choices(client, world, rt):
    approval = Approval.objects.get(run=rt.run(approval_agent(rt), {"ticket": "T-8"}))
    # As the engine leaves it when a worker died during a side-effecting call.
    Approval.objects.filter(pk=approval.pk).update(kind=ApprovalKind.UNCERTAIN)
    approval.step.status = StepStatus.UNCERTAIN
    approval.step.save(update_fields=["status"])
    client.force_login(world["operator"])
    page = client.get(f"/approvals/{approval.pk}/").content.decode()
    for value, label in [
        ("retry", "Run it again with the same idempotency key"),
        ("assume_done", "It ran: go on without running it again"),
        ("fail", "Stop the run"),
    ]:
        assert f'name="decision" value="{value}">{label}<' in page
    client.post(f"/approvals/{approval.pk}/decide/", {"decision": "assume_done", "comment": "CRM shows it closed"})
    approval.refresh_from_db()
    assert (approval.status, approval.decision) == (ApprovalStatus.APPROVED, "assume_done")


def test_playground_runs_the_draft_with_and_without_javascript(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT)
    client.force_login(world["builder"])
    studio = client.get(f"/agents/{agent.pk}/studio/").content.decode()
    assert 'id="playground-form"' in studio and "runtime/playground.js" in studio and "runtime/timeline.js" in studio

    plain = client.post(f"/agents/{agent.pk}/playground/", {"input": '{"ticket": "T-3"}'})
    run = Run.objects.get(agent=agent)
    assert plain["Location"] == f"/runs/{run.pk}/" and run.is_draft and run.trigger == "playground"

    fetched = client.post(
        f"/agents/{agent.pk}/playground/", {"input": '{"ticket": "T-4"}'}, HTTP_ACCEPT="application/json"
    )
    assert fetched.status_code == 201
    body = fetched.json()
    assert body["steps_url"] == f"/runs/{body['id']}/steps.json" and body["status"] == "queued"
    rt.drive(Run.objects.get(pk=body["id"]))
    assert steps_json(client, Run.objects.get(pk=body["id"]))["run"]["output"] == "Done with T-4."

    bad = client.post(f"/agents/{agent.pk}/playground/", {"input": "[1,"}, HTTP_ACCEPT="application/json")
    assert bad.status_code == 400 and "Not valid JSON" in bad.json()["error"]
    no_js_bad = client.post(f"/agents/{agent.pk}/playground/", {"input": "[1,"}, follow=True)
    assert "Not valid JSON" in no_js_bad.content.decode()


def test_operator_sees_no_playground_form(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT)
    client.force_login(world["operator"])
    assert 'id="playground-form"' not in client.get(f"/agents/{agent.pk}/studio/").content.decode()
    assert client.post(f"/agents/{agent.pk}/playground/", {"input": "{}"}).status_code == 403


def test_webhook_secret_is_shown_once_with_how_to_sign(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT)
    client.force_login(world["builder"])
    created = client.post(f"/agents/{agent.pk}/triggers/webhooks/", {"name": "crm", "channel": "production"})
    assert created.status_code == 200
    page = created.content.decode()
    webhook = Webhook.objects.get(agent=agent)
    secret = re.search(r'data-testid="webhook-secret">(whsec_[^<]+)<', page).group(1)
    url = f"http://testserver/hooks/{webhook.token}/"
    assert url in page and "X-Fleetdeck-Signature: sha256=$SIG" in page and "X-Fleetdeck-Timestamp" in page
    again = client.get(f"/agents/{agent.pk}/triggers/").content.decode()
    assert url in again and secret not in again

    rotated = client.post(f"/webhooks/{webhook.pk}/rotate/").content.decode()
    new_secret = re.search(r'data-testid="webhook-secret">(whsec_[^<]+)<', rotated).group(1)
    assert new_secret != secret
    client.post(f"/webhooks/{webhook.pk}/enabled/", {"enabled": "0"})
    webhook.refresh_from_db()
    assert not webhook.enabled
    duplicate = client.post(f"/agents/{agent.pk}/triggers/webhooks/", {"name": "crm", "channel": "production"})
    assert duplicate.status_code == 400 and "already has a webhook named crm" in duplicate.content.decode()
    client.post(f"/webhooks/{webhook.pk}/delete/")
    assert not Webhook.objects.exists()
    assert {"webhook.create", "webhook.rotate_secret", "webhook.disable", "webhook.delete"} <= set(
        AuditEvent.objects.values_list("action", flat=True)
    )


def test_schedules_are_created_turned_off_and_deleted_from_the_page(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT)
    client.force_login(world["builder"])
    form = {
        "name": "nightly",
        "cron": "0 3 * * *",
        "timezone_name": "Europe/Paris",
        "input": "",
        "channel": "production",
    }
    bad = client.post(f"/agents/{agent.pk}/triggers/schedules/", {**form, "cron": "every night"})
    assert bad.status_code == 400 and "cron expression of five fields" in bad.content.decode()
    bad_zone = client.post(f"/agents/{agent.pk}/triggers/schedules/", {**form, "timezone_name": "Mars/Olympus"})
    assert bad_zone.status_code == 400 and "Unknown time zone" in bad_zone.content.decode()
    assert client.post(f"/agents/{agent.pk}/triggers/schedules/", form).status_code == 302
    schedule = Schedule.objects.get(agent=agent)
    page = client.get(f"/agents/{agent.pk}/triggers/").content.decode()
    assert "0 3 * * *" in page and "Europe/Paris" in page
    client.post(f"/schedules/{schedule.pk}/enabled/", {"enabled": "0"})
    schedule.refresh_from_db()
    assert not schedule.enabled and not schedule.periodic_task.enabled
    client.post(f"/schedules/{schedule.pk}/delete/")
    assert not Schedule.objects.exists()


def test_agent_page_shows_runs_triggers_and_the_budget(client, world, rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT)
    run = rt.run(agent, {"ticket": "T-1"})
    client.force_login(world["owner"])
    page = client.get(f"/agents/{agent.pk}/").content.decode()
    assert f'href="/agents/{agent.pk}/run/"' in page and f'href="/agents/{agent.pk}/triggers/"' in page
    assert f'href="/runs/{run.pk}/"' in page and 'id="budget-form"' in page
    response = client.post(f"/agents/{agent.pk}/budget/", {"daily_budget_usd": "12.50"})
    assert response["Location"] == f"/agents/{agent.pk}/#runtime"
    agent.refresh_from_db()
    assert agent.daily_budget_usd == Decimal("12.50")
    assert "12.50 USD a day" in client.get(f"/agents/{agent.pk}/").content.decode()
    refused = client.post(f"/agents/{agent.pk}/budget/", {"daily_budget_usd": "-1"}, follow=True)
    assert "Not saved" in refused.content.decode()
    client.force_login(world["builder"])
    assert 'id="budget-form"' not in client.get(f"/agents/{agent.pk}/").content.decode()


def test_navigation_links_runs_and_approvals(client, world):
    client.force_login(world["viewer"])
    page = client.get("/").content.decode()
    assert 'href="/runs/"' in page and 'href="/approvals/"' in page


def test_steps_json_is_plain_data(client, world, rt):
    run = rt.run(rt.agent("helper", script=SIMPLE_SCRIPT), {"ticket": "T-1"})
    client.force_login(world["viewer"])
    response = client.get(f"/runs/{run.pk}/steps.json?after=nonsense")
    assert response["Content-Type"] == "application/json"
    data = json.loads(response.content)
    assert [s["index"] for s in data["steps"]] == [0]  # a bad `after` reads as "all steps"
