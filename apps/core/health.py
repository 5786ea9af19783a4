"""Readiness checks: the database answers, the broker accepts a connection, a worker is alive."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import WorkerHeartbeat


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; the message says which
        return {"ok": False, "error": type(exc).__name__}


def _check_broker() -> dict:
    from platform_site.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "transport": conn.transport_cls if isinstance(conn.transport_cls, str) else "connected"}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__}


def _check_worker() -> dict:
    stale = timedelta(seconds=settings.CELERY_WORKER_HEARTBEAT_STALE_SECONDS)
    try:
        beat = WorkerHeartbeat.objects.order_by("-seen_at").first()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": type(exc).__name__}
    if beat is None:
        return {
            "ok": False,
            "error": "no worker has ever reported; start one with 'make worker' or 'celery -A platform_site worker'",
        }
    age = (timezone.now() - beat.seen_at).total_seconds()
    ok = age <= stale.total_seconds()
    result = {"ok": ok, "hostname": beat.hostname, "seconds_since_heartbeat": round(age, 1)}
    if not ok:
        result["error"] = f"the last worker heartbeat is older than {int(stale.total_seconds())} s"
    return result


def readiness() -> dict:
    """Return each check's result and an overall status."""
    checks = {"database": _check_database(), "broker": _check_broker(), "worker": _check_worker()}
    return {"status": "ok" if all(c["ok"] for c in checks.values()) else "unavailable", "checks": checks}
