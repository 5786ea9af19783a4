"""Thin Celery tasks for the runtime: each takes ids and calls one engine or service function."""

import os

from django.conf import settings

from platform_site.celery import app


def worker_id(task) -> str:
    """Return "<celery hostname>:<pid>": the name a run's claim carries (the reaper checks it is alive)."""
    from .services import set_this_host

    hostname = task.request.hostname or f"local@{os.uname().nodename}"
    set_this_host(hostname)
    return f"{hostname}:{os.getpid()}"


@app.task(
    bind=True,
    name="runtime.run_execute",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=settings.CELERY_TASK_HARD_TIME_LIMIT,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
)
def run_execute(self, run_id: int) -> str | None:
    """Execute or resume one run (a duplicate delivery finds the run claimed and does nothing)."""
    from .engine import run_execute as execute

    return execute(run_id=run_id, worker=worker_id(self))


@app.task(bind=True, name="runtime.run_reap", time_limit=300, soft_time_limit=240, expires=60)
def run_reap(self) -> int:
    """Queue again the runs whose worker vanished."""
    from .services import run_reap as reap

    worker_id(self)
    return reap()


@app.task(name="runtime.approvals_expire", time_limit=300, soft_time_limit=240, expires=300)
def approvals_expire() -> int:
    """Expire approvals nobody decided in time; their runs stop."""
    from .services import approvals_expire as expire

    return expire()


@app.task(name="runtime.schedule_fire", time_limit=120, soft_time_limit=100, expires=300)
def schedule_fire(schedule_id: int) -> int | None:
    """Start the run of one schedule (beat calls this at the schedule's cron times)."""
    from .services import schedule_fire as fire

    run = fire(schedule_id=schedule_id)
    return run.pk if run else None
