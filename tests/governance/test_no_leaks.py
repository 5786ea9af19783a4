"""Invariant 7: a secret's value never appears in a page, an API answer, an audit event, a log line or an error."""

import json
import logging

from apps.audit.models import AuditEvent
from apps.catalog.models import Provider
from apps.core.exceptions import ServiceError
from apps.governance.models import Secret
from apps.governance.services import secret_create, secret_read_for_use
from tests.governance.conftest import VALUE

NEW_VALUE = "sk-LEAKCANARY-second-0c0ffee0-ba5e-4bad-8bad-decafbad0001"
CANARIES = (VALUE, NEW_VALUE, "LEAKCANARY")


def _assert_clean(text: str, where: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"the secret value leaked into {where}"


def test_the_value_is_nowhere_but_in_the_ciphertext(client, world, tool, caplog):
    caplog.set_level(logging.DEBUG)
    owner, admin = world["owner"], world["admin"]
    seen: list[tuple[str, str]] = []

    client.force_login(owner)
    response = client.post(
        "/api/v1/secrets/",
        {"team": "payments", "name": "crm-api-key", "description": "CRM", "value": VALUE},
        content_type="application/json",
    )
    seen.append(("API create", response.content.decode()))
    secret = Secret.objects.get(name="crm-api-key")
    # Refusals of every kind, by page and by API, each carrying the value.
    for data in (
        {"scope": "team", "name": "Bad Name", "value": VALUE},
        {"scope": "team", "name": "crm-api-key", "value": VALUE},
    ):
        seen.append(("page create refused", client.post("/secrets/new/", data).content.decode()))
    for data in (
        {"team": "payments", "name": "crm-api-key", "value": VALUE},
        {"team": "support", "name": "x", "value": VALUE},
    ):
        seen.append(
            (
                "API create refused",
                client.post("/api/v1/secrets/", data, content_type="application/json").content.decode(),
            )
        )
    seen.append(
        (
            "page set value",
            client.post(f"/secrets/{secret.pk}/value/", {"value": NEW_VALUE}, follow=True).content.decode(),
        )
    )
    seen.append(
        (
            "API set value refused",
            client.post(
                f"/api/v1/secrets/{secret.pk}/set-value/", {"value": VALUE * 2000}, content_type="application/json"
            ).content.decode(),
        )
    )
    client.force_login(world["builder"])
    seen.append(
        ("page set value denied", client.post(f"/secrets/{secret.pk}/value/", {"value": VALUE}).content.decode())
    )
    seen.append(
        (
            "API set value denied",
            client.post(
                f"/api/v1/secrets/{secret.pk}/set-value/", {"value": VALUE}, content_type="application/json"
            ).content.decode(),
        )
    )
    client.force_login(owner)
    client.post(f"/secrets/{secret.pk}/grants/", {"grantee": f"tool:{tool.pk}"})
    assert secret_read_for_use(secret=secret, grantee_type="tool", grantee_id=tool.pk, purpose="run 1") == NEW_VALUE
    try:
        secret_read_for_use(secret=secret, grantee_type="agent", grantee_id=1, purpose="run 2")
    except ServiceError as exc:
        seen.append(("refused read", str(exc)))

    # An organisation secret used as a provider key.
    org = secret_create(actor=admin, team=None, name="openai-key", value=VALUE)
    provider = Provider.objects.create(
        name="openai", display_name="OpenAI", kind="openai_compatible", base_url="http://x"
    )
    client.force_login(admin)
    client.post(
        "/catalog/providers/openai/edit/",
        {
            "kind": "openai_compatible",
            "base_url": "http://x",
            "api_key_secret": "openai-key",
            "timeout_seconds": 60,
            "max_retries": 2,
        },
    )
    assert Provider.objects.get(pk=provider.pk).api_key_secret == org

    for role in ("owner", "auditor", "admin"):
        client.force_login(world[role])
        for path in (
            "/secrets/",
            f"/secrets/{secret.pk}/",
            f"/secrets/{org.pk}/",
            f"/secrets/{secret.pk}/delete/",
            "/catalog/providers/",
            "/api/v1/secrets/",
            f"/api/v1/secrets/{secret.pk}/",
            "/api/v1/secret-grants/",
            "/api/v1/providers/",
            "/audit/",
            "/audit/export.csv",
            "/audit/export.jsonl",
            "/api/v1/audit-events/",
        ):
            response = client.get(path)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            seen.append((f"{role} GET {path}", body.decode()))

    for where, text in seen:
        _assert_clean(text, where)
    assert any("crm-api-key" in text for _, text in seen)  # the pages did show the secret's metadata
    for event in AuditEvent.objects.all():
        _assert_clean(
            json.dumps({f: str(getattr(event, f)) for f in [f.name for f in event._meta.fields]}),
            f"audit event {event.action}",
        )
    assert AuditEvent.objects.filter(action="secret.read").count() == 2
    for record in caplog.records:
        _assert_clean(record.getMessage() + str(record.args), f"log record {record.name}")
    for stored in Secret.objects.values_list("ciphertext", "description", "name", "last_used_by"):
        _assert_clean(" ".join(stored), "the secrets table")


def test_a_crash_while_storing_a_value_keeps_it_out_of_the_error_report(world, settings):
    import sys

    from django.views.debug import ExceptionReporter

    settings.FLEETDECK_SECRET_KEYS = ["not-a-key"]  # encryption fails deep inside secret_create
    try:
        secret_create(actor=world["owner"], team=world.team, name="k", value=VALUE)
    except Exception:  # noqa: BLE001 - the point is to inspect whatever was raised
        exc_info = sys.exc_info()
    frames = ExceptionReporter(None, *exc_info).get_traceback_frames()
    assert [f["function"] for f in frames][-2:] == ["fernet", "_multi_fernet"]
    for frame in frames[1:]:  # the test's own frame holds the literal
        _assert_clean(repr(frame["vars"]), f"the error report's frame {frame['function']}")
