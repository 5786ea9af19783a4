"""Platform housekeeping tasks."""

from django.db import close_old_connections
from django.utils import timezone

from platform_site.celery import app

from .models import WorkerHeartbeat


def heartbeat_write(*, hostname: str) -> None:
    """Record that the worker is alive now (called from the worker's timer, not queued)."""
    close_old_connections()
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": now}, create_defaults={"seen_at": now, "started_at": now}
    )


@app.task(name="core.ping", time_limit=30, soft_time_limit=20)
def ping(value: str = "pong") -> str:
    """Return the value: proves a message went through the broker to a worker and back."""
    return value
