"""Prometheus metrics of the platform's own health at GET /metrics (text exposition format 0.0.4).

Who may scrape: when FLEETDECK_METRICS_TOKEN is set, a request must carry
`Authorization: Bearer <token>` (compared in constant time), else 401; when it is not set, only a
signed-in platform admin may read it: 401 for anonymous callers (a scraper cannot follow a
sign-in redirect, so it gets a plain answer), 403 for everyone else (audited).

Every number is one cheap query:
- fleetdeck_celery_queue_length{broker,queue}: messages waiting. Redis: LLEN of the app's queue
  ("fleetdeck", task_default_queue in platform_site/celery.py) and its priority lists; the
  filesystem broker: the message files of the queue in its folder.
- fleetdeck_runs{status}: runs by status, one GROUP BY.
- fleetdeck_spans_stored_total{source}: spans written, summed from the hourly rollups (so it counts
  spans past their retention too; it drops only when rollups themselves expire).
- fleetdeck_spans_ingested_last_minute{source}: spans written in the last 60 s. ingested_at has no
  index, but span ids grow with ingestion, so the first id ingested within the minute is found by a
  binary search over the primary key (a few dozen point reads), then the spans from that id on are
  counted by a primary-key range scan. Concurrent writers make the edge fuzzy by the length of one
  write transaction, nothing more.
- fleetdeck_alert_events_unacknowledged, fleetdeck_alert_rules_firing, fleetdeck_workers_alive.
"""

from __future__ import annotations

import hmac
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ..models import AlertEvent, AlertRule, Span, SpanRollup, SpanSource

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
APP_QUEUES = ("fleetdeck",)
# kombu's Redis transport keeps one list per priority step: the name, then name + "\x06\x16" + step.
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Collect metric families and write them in the text format, each with its HELP and TYPE once."""

    def __init__(self):
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: list[tuple[dict, float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
            number = repr(float(value)) if isinstance(value, float) and value != int(value) else str(int(value))
            self.lines.append(f"{name}{{{label_text}}} {number}" if label_text else f"{name} {number}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def queue_lengths() -> tuple[str, list[tuple[str, int | None]]]:
    """Return (broker kind, [(queue, messages waiting or None when the broker did not answer)])."""
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://", "unix://")):
        import redis

        try:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            pipe = client.pipeline(transaction=False)
            for queue in APP_QUEUES:
                pipe.llen(queue)
                for step in REDIS_PRIORITY_STEPS:
                    pipe.llen(f"{queue}{REDIS_PRIORITY_SEPARATOR}{step}")
            counts = pipe.execute()
        except redis.RedisError:
            return "redis", [(queue, None) for queue in APP_QUEUES]
        per_queue = 1 + len(REDIS_PRIORITY_STEPS)
        return "redis", [
            (queue, sum(counts[i * per_queue : (i + 1) * per_queue])) for i, queue in enumerate(APP_QUEUES)
        ]
    if url.startswith("filesystem"):
        folder = Path(settings.CELERY_BROKER_DIR) / "queue"
        names = [entry.name for entry in folder.iterdir()] if folder.is_dir() else []
        return "filesystem", [(queue, sum(name.endswith(f".{queue}.msg") for name in names)) for queue in APP_QUEUES]
    return url.split(":", 1)[0], [(queue, None) for queue in APP_QUEUES]


def first_span_id_since(moment) -> int | None:
    """Return the smallest span id ingested at or after moment (ids grow with ingestion), or None.

    Bisect over the id range: P(x) = "the first span with id >= x was ingested at or after
    moment" is false up to the answer and true from it on; each probe is one primary-key read.
    """
    spans = Span.objects.order_by("pk").values_list("pk", "ingested_at")
    newest = Span.objects.order_by("-pk").values_list("pk", "ingested_at").first()
    if newest is None or newest[1] < moment:
        return None
    oldest = spans.first()
    if oldest[1] >= moment:
        return oldest[0]
    low, high, answer = oldest[0], newest[0], newest[0]  # P(low) is false, P(high) true
    while high - low > 1:
        middle = (low + high) // 2
        pk, ingested_at = spans.filter(pk__gte=middle).first()
        if ingested_at >= moment:
            high, answer = middle, pk
        else:
            low = pk  # P is false up to this existing id as well
    return answer


def collect() -> str:
    """Return the metrics text."""
    started = time.monotonic()
    now = timezone.now()
    out = Exposition()

    broker, queues = queue_lengths()
    out.family(
        "fleetdeck_celery_queue_length",
        "gauge",
        "Celery messages waiting in the broker, by queue.",
        [({"broker": broker, "queue": queue}, count) for queue, count in queues if count is not None],
    )
    out.family(
        "fleetdeck_celery_broker_up",
        "gauge",
        "1 when the broker answered the queue-length query.",
        [({"broker": broker}, int(all(count is not None for _, count in queues)))],
    )

    from apps.runtime.models import Run, RunStatus

    by_status = dict(Run.objects.order_by().values_list("status").annotate(n=Count("id")))
    out.family(
        "fleetdeck_runs",
        "gauge",
        "Runs by status.",
        [({"status": status}, by_status.get(status, 0)) for status in RunStatus.values],
    )

    stored = dict(SpanRollup.objects.order_by().values_list("source").annotate(n=Sum("span_count")))
    out.family(
        "fleetdeck_spans_stored_total",
        "counter",
        "Spans written to the span store, by source (from the hourly rollups).",
        [({"source": source}, stored.get(source) or 0) for source in SpanSource.values],
    )

    first = first_span_id_since(now - timedelta(seconds=60))
    recent = {}
    if first is not None:
        recent = dict(Span.objects.filter(pk__gte=first).order_by().values_list("source").annotate(n=Count("id")))
    out.family(
        "fleetdeck_spans_ingested_last_minute",
        "gauge",
        "Spans written in the last 60 seconds, by source.",
        [({"source": source}, recent.get(source, 0)) for source in SpanSource.values],
    )

    out.family(
        "fleetdeck_alert_events_unacknowledged",
        "gauge",
        "Alert events nobody acknowledged yet.",
        [({}, AlertEvent.objects.filter(acknowledged_at__isnull=True).count())],
    )
    out.family(
        "fleetdeck_alert_rules_firing",
        "gauge",
        "Enabled alert rules whose condition holds now.",
        [({}, AlertRule.objects.filter(enabled=True, firing=True).count())],
    )

    from apps.core.models import WorkerHeartbeat

    stale = now - timedelta(seconds=settings.CELERY_WORKER_HEARTBEAT_STALE_SECONDS)
    out.family(
        "fleetdeck_workers_alive",
        "gauge",
        "Celery workers whose heartbeat is fresh.",
        [({}, WorkerHeartbeat.objects.filter(seen_at__gte=stale).count())],
    )
    out.family(
        "fleetdeck_metrics_scrape_duration_seconds",
        "gauge",
        "Time taken to collect these metrics.",
        [({}, round(time.monotonic() - started, 6) or 0.000001)],
    )
    return out.text()


def _plain(status: int, text: str, **headers) -> HttpResponse:
    response = HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


@never_cache
@require_GET
def metrics_view(request):
    """Answer the platform's health metrics to a scraper holding the metrics token, or to a platform admin."""
    token = settings.FLEETDECK_METRICS_TOKEN
    if token:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return _plain(
                401,
                "Send the metrics token as 'Authorization: Bearer <FLEETDECK_METRICS_TOKEN>'.",
                WWW_Authenticate='Bearer realm="metrics"',
            )
    else:
        user = request.user
        if not user.is_authenticated:
            return _plain(
                401,
                "Sign in as a platform admin, or set FLEETDECK_METRICS_TOKEN and send it as a bearer token.",
                WWW_Authenticate='Bearer realm="metrics"',
            )
        if not user.is_platform_admin:
            from apps.audit.services import audit_denial

            audit_denial(actor=user, perm="metrics.view (platform admin)", path=request.path)
            return _plain(403, "Only platform admins may read /metrics (or a scraper with FLEETDECK_METRICS_TOKEN).")
    return HttpResponse(collect(), content_type=CONTENT_TYPE)
