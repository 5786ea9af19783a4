"""GET /metrics: the Prometheus text format, parsed back; who may scrape it; numbers that match the database."""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta

import pytest
from django.utils import timezone
from kombu import Connection

from apps.audit.models import AuditEvent
from apps.core.models import WorkerHeartbeat
from apps.observability.models import Span
from apps.observability.store import spans_write
from apps.runtime.models import RunStatus
from tests.observability.test_alerts import FAIL_SCRIPT, OK_SCRIPT, external_span

pytestmark = pytest.mark.django_db

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE_RE = re.compile(rf"^({NAME})(?:\{{(.*)\}})? (-?[0-9.e+-]+|NaN|[+-]Inf)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse(text: str) -> dict:
    """Parse the exposition format 0.0.4: {name: {"type", "help", "samples": {labels tuple: value}}}; fail on anything malformed."""
    assert text.endswith("\n"), "the exposition ends with a line feed"
    families: dict[str, dict] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in families, f"{name} described twice"
            families[name] = {"help": help_text, "type": None, "samples": {}}
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in {"counter", "gauge", "histogram", "summary", "untyped"}, line
            assert families[name]["type"] is None and not families[name]["samples"], "TYPE comes before samples"
            families[name]["type"] = kind
        else:
            match = SAMPLE_RE.match(line)
            assert match, f"not a sample line: {line!r}"
            name, labels, value = match.groups()
            labels = labels or ""
            pairs = LABEL_RE.findall(labels)
            assert "".join(f'{k}="{v}"{sep}' for k, v, sep in pairs) == labels, f"bad labels: {labels!r}"
            key = tuple(sorted((k, v) for k, v, _ in pairs))
            assert key not in families[name]["samples"], f"duplicate sample {line!r}"
            families[name]["samples"][key] = float(value)
    return families


def value(families, name, **labels) -> float:
    return families[name]["samples"][tuple(sorted(labels.items()))]


def scrape(client, **headers):
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.content.decode())


def test_only_platform_admins_read_it_without_a_token(client, world):
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert "FLEETDECK_METRICS_TOKEN" in anonymous.content.decode()
    client.force_login(world["auditor"])
    denied = client.get("/metrics")
    assert denied.status_code == 403 and "platform admins" in denied.content.decode()
    assert AuditEvent.objects.filter(action="permission.denied", actor_label="sam").count() == 1
    client.force_login(world["admin"])
    families = scrape(client)
    assert families["fleetdeck_runs"]["type"] == "gauge"


def test_with_a_token_a_scraper_needs_exactly_that_bearer_token(client, world, settings):
    settings.FLEETDECK_METRICS_TOKEN = "m3trics-" + "x" * 24
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic " + "x" * 24).status_code == 401
    client.force_login(world["admin"])
    assert client.get("/metrics").status_code == 401, "with a token set, the token is the only way in"
    client.logout()
    scrape(client, HTTP_AUTHORIZATION=f"Bearer {settings.FLEETDECK_METRICS_TOKEN}")


def test_numbers_match_runs_spans_alerts_and_workers(client, rt, world):
    from apps.observability import services

    flaky = rt.agent("flaky", script=FAIL_SCRIPT)
    steady = rt.agent("steady", script=OK_SCRIPT)
    for _ in range(5):
        rt.run(flaky)
    rt.run(steady)
    rt.start(steady)  # stays queued: nobody drives it
    services.alert_rule_create(actor=world["builder"], team=world.team, name="f", kind="failure_rate", threshold=10)
    services.alerts_evaluate()
    now = timezone.now()
    spans_write([external_span(world.team, start=now - timedelta(days=2)) for _ in range(7)])
    WorkerHeartbeat.objects.create(hostname="alive@a", seen_at=now, started_at=now - timedelta(hours=1))
    WorkerHeartbeat.objects.create(
        hostname="gone@b", seen_at=now - timedelta(hours=1), started_at=now - timedelta(days=1)
    )

    client.force_login(world["admin"])
    families = scrape(client)
    assert value(families, "fleetdeck_runs", status=RunStatus.FAILED) == 5
    assert value(families, "fleetdeck_runs", status=RunStatus.SUCCEEDED) == 1
    assert value(families, "fleetdeck_runs", status=RunStatus.QUEUED) == 1
    assert value(families, "fleetdeck_runs", status=RunStatus.CANCELLED) == 0
    runtime_spans = Span.objects.filter(source="runtime").count()
    assert families["fleetdeck_spans_stored_total"]["type"] == "counter"
    assert value(families, "fleetdeck_spans_stored_total", source="runtime") == runtime_spans > 0
    assert value(families, "fleetdeck_spans_stored_total", source="otlp") == 7
    assert value(families, "fleetdeck_spans_stored_total", source="gateway") == 0
    assert value(families, "fleetdeck_spans_ingested_last_minute", source="otlp") == 7
    assert value(families, "fleetdeck_alert_events_unacknowledged") == 1
    assert value(families, "fleetdeck_alert_rules_firing") == 1
    assert value(families, "fleetdeck_workers_alive") == 1


def test_ingested_last_minute_counts_by_ingestion_time_not_span_time(client, world):
    now = timezone.now()
    spans_write([external_span(world.team, start=now) for _ in range(50)])
    ids = list(Span.objects.order_by("pk").values_list("pk", flat=True))
    # The first 37 were ingested five minutes ago (ids grow with ingestion time).
    Span.objects.filter(pk__in=ids[:37]).update(ingested_at=now - timedelta(minutes=5))
    client.force_login(world["admin"])
    assert value(scrape(client), "fleetdeck_spans_ingested_last_minute", source="otlp") == 13
    Span.objects.update(ingested_at=now - timedelta(minutes=5))
    assert value(scrape(client), "fleetdeck_spans_ingested_last_minute", source="otlp") == 0
    Span.objects.update(ingested_at=now)
    assert value(scrape(client), "fleetdeck_spans_ingested_last_minute", source="otlp") == 50


def test_queue_length_of_the_filesystem_broker(client, world, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_DIR = tmp_path
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(tmp_path / "control"),  # not ./control in the checkout
    }
    with Connection("filesystem://", transport_options=options) as connection:
        app_queue, other = connection.SimpleQueue("fleetdeck"), connection.SimpleQueue("elsewhere")
        for i in range(3):
            app_queue.put({"n": i})
        other.put({"n": 9})
        app_queue.close()
        other.close()
    client.force_login(world["admin"])
    families = scrape(client)
    assert value(families, "fleetdeck_celery_queue_length", broker="filesystem", queue="fleetdeck") == 3
    assert value(families, "fleetdeck_celery_broker_up", broker="filesystem") == 1


@pytest.mark.server
def test_queue_length_of_the_redis_broker(client, world, settings):
    # A database of its own on the test Redis, so the app's real queue (db 0) is left alone.
    url = re.sub(r"/\d*$", "", os.environ["REDIS_URL"]) + "/11"
    settings.CELERY_BROKER_URL = url
    with Connection(url) as connection:
        queue = connection.SimpleQueue("fleetdeck")
        queue.clear()
        for i in range(4):
            queue.put({"n": i}, priority=0)
        queue.put({"n": 5}, priority=9)
        try:
            client.force_login(world["admin"])
            families = scrape(client)
            assert value(families, "fleetdeck_celery_queue_length", broker="redis", queue="fleetdeck") == 5
            assert value(families, "fleetdeck_celery_broker_up", broker="redis") == 1
        finally:
            queue.clear()
            queue.close()


def test_an_unreachable_redis_broker_is_reported_not_a_500(client, world, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:1/{secrets.randbelow(10)}"
    client.force_login(world["admin"])
    families = scrape(client)
    assert value(families, "fleetdeck_celery_broker_up", broker="redis") == 0
    assert families["fleetdeck_celery_queue_length"]["samples"] == {}
