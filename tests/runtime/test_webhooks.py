"""The public webhook endpoint over HTTP: signed calls start runs; everything else is refused with a reason."""

from __future__ import annotations

import json
import time

import pytest

from apps.runtime.models import Run, RunStatus
from apps.runtime.services import webhook_create, webhook_set_enabled, webhook_signature
from tests.runtime.matrix import SIMPLE_SCRIPT

pytestmark = pytest.mark.django_db

TICKET_SCHEMA = {"type": "object", "required": ["ticket"], "properties": {"ticket": {"type": "string"}}}


@pytest.fixture
def hook(rt):
    agent = rt.agent("helper", script=SIMPLE_SCRIPT, input_schema=TICKET_SCHEMA)
    webhook, secret = webhook_create(actor=rt.owner, agent=agent, name="crm")
    return webhook, secret


def signed(secret: str, body: bytes, *, timestamp: int | None = None, **headers) -> dict:
    """Return the headers of a request signed the way the trigger page tells callers to."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "HTTP_X_FLEETDECK_TIMESTAMP": ts,
        "HTTP_X_FLEETDECK_SIGNATURE": "sha256=" + webhook_signature(secret, ts, body),
        **headers,
    }


def post(client, webhook, body: bytes, headers: dict):
    return client.post(f"/hooks/{webhook.token}/", data=body, content_type="application/json", **headers)


def test_a_signed_call_starts_a_run_of_the_channel_version(client, hook, rt):
    webhook, secret = hook
    body = json.dumps({"ticket": "T-1"}).encode()
    response = post(client, webhook, body, signed(secret, body))
    assert response.status_code == 202
    answer = response.json()
    run = Run.objects.get(pk=answer["run"])
    assert answer["status"] == "queued" and answer["url"] == f"http://testserver/api/v1/runs/{run.pk}/"
    assert (run.trigger, run.input, run.channel, run.started_by_label) == (
        "webhook",
        {"ticket": "T-1"},
        "production",
        "webhook crm",
    )
    assert rt.drive(run).status == RunStatus.SUCCEEDED and run.output == "Done with T-1."
    webhook.refresh_from_db()
    assert webhook.last_used_at is not None


def test_a_bad_signature_is_401(client, hook):
    webhook, secret = hook
    body = b'{"ticket": "T-1"}'
    response = post(client, webhook, body, signed("whsec_wrong", body))
    assert response.status_code == 401 and response.json()["code"] == "bad_signature"
    tampered = post(client, webhook, b'{"ticket": "T-2"}', signed(secret, body))
    assert tampered.status_code == 401
    unsigned = post(client, webhook, body, {})
    assert unsigned.status_code == 401 and "X-Fleetdeck-Signature" in unsigned.json()["error"]
    assert not Run.objects.exists()


def test_a_replayed_request_is_409(client, hook):
    webhook, secret = hook
    body = b'{"ticket": "T-1"}'
    headers = signed(secret, body)
    assert post(client, webhook, body, headers).status_code == 202
    replay = post(client, webhook, body, headers)
    assert replay.status_code == 409 and replay.json()["code"] == "replay"
    assert Run.objects.count() == 1


def test_an_old_timestamp_is_401(client, hook, settings):
    webhook, secret = hook
    body = b'{"ticket": "T-1"}'
    old = int(time.time()) - settings.FLEETDECK_WEBHOOK_TOLERANCE_SECONDS - 60
    response = post(client, webhook, body, signed(secret, body, timestamp=old))
    assert response.status_code == 401 and response.json()["code"] == "stale_timestamp"
    not_a_number = post(client, webhook, body, {**signed(secret, body), "HTTP_X_FLEETDECK_TIMESTAMP": "yesterday"})
    assert not_a_number.status_code == 401


def test_the_same_idempotency_key_returns_the_same_run(client, hook):
    webhook, secret = hook
    body = b'{"ticket": "T-1"}'
    first = post(client, webhook, body, signed(secret, body, HTTP_IDEMPOTENCY_KEY="event-1"))
    # A retry is signed again (new timestamp), so it is not a replay, and the key makes it the same run.
    retry = post(
        client, webhook, body, signed(secret, body, timestamp=int(time.time()) - 1, HTTP_IDEMPOTENCY_KEY="event-1")
    )
    assert first.status_code == retry.status_code == 202
    assert first.json()["run"] == retry.json()["run"]
    other = post(
        client, webhook, body, signed(secret, body, timestamp=int(time.time()) - 2, HTTP_IDEMPOTENCY_KEY="event-2")
    )
    assert other.json()["run"] != first.json()["run"]


def test_input_that_does_not_fit_the_schema_or_is_not_json_is_400(client, hook):
    webhook, secret = hook
    wrong = b'{"ticket": 7}'
    response = post(client, webhook, wrong, signed(secret, wrong))
    assert response.status_code == 400 and "input schema" in response.json()["error"]
    garbage = b"not json"
    response = post(client, webhook, garbage, signed(secret, garbage))
    assert response.status_code == 400 and response.json()["code"] == "bad_json"
    assert not Run.objects.exists()


def test_disabled_unknown_and_get_are_refused(client, hook, rt):
    webhook, secret = hook
    body = b'{"ticket": "T-1"}'
    webhook_set_enabled(actor=rt.owner, webhook=webhook, enabled=False)
    assert post(client, webhook, body, signed(secret, body)).status_code == 404
    unknown = client.post(
        "/hooks/00000000-0000-4000-8000-000000000000/",
        data=body,
        content_type="application/json",
        **signed(secret, body),
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    got = client.get(f"/hooks/{webhook.token}/")
    assert got.status_code == 405 and got["Allow"] == "POST"
    assert client.get("/hooks/not-a-uuid/").status_code == 404


def test_the_endpoint_needs_no_csrf_token_and_no_sign_in(hook):
    from django.test import Client

    webhook, secret = hook
    body = b'{"ticket": "T-1"}'
    strict = Client(enforce_csrf_checks=True)
    assert post(strict, webhook, body, signed(secret, body)).status_code == 202


def test_a_secret_the_platform_can_no_longer_read_is_503_with_what_to_do(client, hook):
    from apps.runtime.models import Webhook

    webhook, secret = hook
    Webhook.objects.filter(pk=webhook.pk).update(secret_ciphertext="not-a-fernet-token")  # as after a lost key
    body = json.dumps({"ticket": "T-9"}).encode()
    response = post(client, webhook, body, signed(secret, body))
    assert response.status_code == 503
    assert response.json()["code"] == "secret_unavailable" and "rotate" in response.json()["error"]
    assert not Run.objects.exists()
