"""The Celery app: configured for no lost work (STYLE.md 6, issue #2 part 8)."""

import os

from celery import Celery, bootsteps
from celery.signals import worker_process_shutdown, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")

app = Celery("fleetdeck")


def celery_config() -> dict:
    """Return the Celery configuration from Django's settings (loaded lazily, when first needed)."""
    from django.conf import settings

    from .schedules import BEAT_SCHEDULE

    transport_options = {"visibility_timeout": settings.CELERY_VISIBILITY_TIMEOUT}
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        # kombu's filesystem transport: one folder for messages, one for processed ones.
        queue_dir = settings.CELERY_BROKER_DIR / "queue"
        processed_dir = settings.CELERY_BROKER_DIR / "processed"
        control_dir = settings.CELERY_BROKER_DIR / "control"
        for folder in (queue_dir, processed_dir, control_dir):
            folder.mkdir(parents=True, exist_ok=True)
        transport_options.update(
            {
                "data_folder_in": str(queue_dir),
                "data_folder_out": str(queue_dir),
                "processed_folder": str(processed_dir),
                "store_processed": False,
                "control_folder": str(control_dir),
            }
        )
    return dict(
        broker_url=settings.CELERY_BROKER_URL,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.CELERY_TASK_HARD_TIME_LIMIT,
        task_soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue="fleetdeck",
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
        beat_schedule=BEAT_SCHEDULE,
        timezone=settings.TIME_ZONE,
    )


class WorkerHeartbeatStep(bootsteps.StartStopStep):
    """Record in the database, every few seconds, that this worker is alive (read by /readyz)."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None

    def start(self, worker):
        from django.conf import settings

        from apps.core.tasks import heartbeat_write

        heartbeat_write(hostname=worker.hostname)
        self.tref = worker.timer.call_repeatedly(
            settings.CELERY_WORKER_HEARTBEAT_SECONDS, heartbeat_write, kwargs={"hostname": worker.hostname}, priority=10
        )

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None


app.add_defaults(celery_config)
app.steps["worker"].add(WorkerHeartbeatStep)
app.autodiscover_tasks()


@worker_process_shutdown.connect
@worker_shutdown.connect
def _flush_spans(**kwargs):
    """Export the spans still in the batch before a worker process exits (a SIGKILL loses at most ~1 s of them)."""
    from apps.observability.tracing import flush

    flush(timeout_millis=5000)
