from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker said it was alive (written by the worker's heartbeat step)."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField(db_index=True)
    started_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.seen_at:%H:%M:%S}"
