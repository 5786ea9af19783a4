"""Real Celery workers against the real Redis broker and the PostgreSQL test database.

Each worker is a subprocess (`celery -A platform_site worker`) pointed at the database pytest-django
created, so the tests use `transactional_db`: rows must be committed for another process to see them.
The workers use their own Redis database and a queue unique to this test run, so they never take,
or restore, anybody else's messages (a short visibility timeout would otherwise redeliver them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection
from django.db.models import F

from platform_site.celery import app

BASE_DIR = Path(__file__).resolve().parents[2]
CELERY = BASE_DIR / ".venv" / "bin" / "celery"
# A Redis database of its own: workers with a 3 s visibility timeout restore every unacked message
# in their database, so they must not share one with anybody else's workers.
BROKER_DB = 14
QUEUE = f"fleetdeck-test-{uuid.uuid4().hex[:12]}"
STARTUP_SECONDS = 30


def broker_url() -> str:
    """Return REDIS_URL with its database number replaced by the tests' own."""
    parts = urlsplit(os.environ["REDIS_URL"])
    return urlunsplit(parts._replace(path=f"/{BROKER_DB}"))


def wait_for(condition: Callable[[], object], *, timeout: float, what: str, logs: Callable[[], str] = str) -> object:
    """Poll the condition until it returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"Waited {timeout:.0f} s for {what}.\n{logs()}", pytrace=False)
        time.sleep(0.2)


class Worker:
    """One `celery worker` subprocess in its own process group, logging to a file."""

    def __init__(
        self, *, name: str, log_dir: Path, extra_env: dict[str, str], include: str | None = None, queue: str = QUEUE
    ):
        self.hostname = f"{name}-{uuid.uuid4().hex[:8]}@{os.uname().nodename}"
        self.log_path = log_dir / f"{name}.log"
        # The database pytest-django created (test_...), reached the way DATABASE_URL says.
        database_url = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{connection.settings_dict['NAME']}")
        env = {
            **os.environ,
            "DATABASE_URL": urlunsplit(database_url),
            "REDIS_URL": broker_url(),
            "CELERY_BROKER_URL": broker_url(),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(BASE_DIR), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        command = [
            str(CELERY),
            "-A",
            "platform_site",
            "worker",
            "--loglevel=INFO",
            "--concurrency=1",
            "--without-mingle",
            "--without-gossip",
            "-n",
            self.hostname,
            "-Q",
            queue,
        ]
        if include:
            command += ["--include", include]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def logs(self) -> str:
        """Return the end of the worker's log, to explain a failure."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- {self.hostname} log (last 4000 chars) ---\n{text[-4000:]}"

    def stop(self, timeout: float = 15) -> None:
        """Shut the worker down warmly (SIGTERM), killing its process group if it does not exit in time."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def pool_processes(self) -> list[int]:
        """Return the ids of the worker's pool processes (the children of its main process)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def kill(self) -> None:
        """Kill the worker and its pool processes at once, as the OOM killer or a lost machine would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


@pytest.fixture
def workers(transactional_db, tmp_path) -> Iterator[Callable[..., Worker]]:
    """Return a function starting workers; stop all of them (process groups) at teardown."""
    started: list[Worker] = []

    def start(name: str, *, include: str | None = None, queue: str = QUEUE, **extra_env: str) -> Worker:
        worker = Worker(name=name, log_dir=tmp_path, extra_env=extra_env, include=include, queue=queue)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop(timeout=5)
            # A warm shutdown leaves no stray pool child; the group kill makes sure of it either way.
            try:
                os.killpg(worker.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def redis_client():
    """Return a client for the tests' Redis database."""
    import redis

    return redis.Redis.from_url(broker_url())


def unacked_messages() -> dict[bytes, float]:
    """Return this run's delivered but unacknowledged messages: delivery tag -> time of delivery."""
    client = redis_client()
    return {
        tag: client.zscore("unacked_index", tag) or 0.0
        for tag, payload in client.hgetall("unacked").items()
        if json.loads(payload)[2] == QUEUE
    }


@pytest.fixture(scope="module", autouse=True)
def _clean_broker() -> Iterator[None]:
    """Remove this run's queue, bindings and unacknowledged messages from the tests' Redis database."""
    yield
    if not os.environ.get("REDIS_URL", "").startswith("redis"):
        return
    client = redis_client()
    client.delete(QUEUE, *client.keys(f"_kombu.binding*{QUEUE}*"))
    client.zrem("_kombu.binding_deadlines", QUEUE)
    for tag in unacked_messages():
        client.hdel("unacked", tag)
        client.zrem("unacked_index", tag)


def send(name: str, *args) -> None:
    """Send a task by name to this run's queue on the tests' Redis database."""
    with app.connection_for_write(broker_url()) as conn:
        app.send_task(name, args=args, queue=QUEUE, connection=conn)


def test_celery_config_loses_no_work():
    """Acknowledge late, requeue on a lost worker, take one message at a time, never redeliver a running task."""
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    visibility = conf.broker_transport_options["visibility_timeout"]
    assert visibility > conf.task_time_limit
    app.loader.import_default_modules()
    too_long = {
        name: task.time_limit
        for name, task in app.tasks.items()
        if not name.startswith("celery.") and (task.time_limit or conf.task_time_limit) >= visibility
    }
    assert not too_long, f"tasks whose time limit reaches the visibility timeout ({visibility} s): {too_long}"


@pytest.mark.server
def test_readyz_follows_the_worker_heartbeat(workers, client, settings):
    """Report 503 without a worker, 200 while one beats, and 503 again once its heartbeat is stale."""
    from apps.core.models import WorkerHeartbeat

    settings.CELERY_WORKER_HEARTBEAT_STALE_SECONDS = 3

    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] and checks["broker"]["ok"]
    assert checks["worker"]["ok"] is False
    assert "no worker has ever reported" in checks["worker"]["error"]

    worker = workers("ready", FLEETDECK_WORKER_HEARTBEAT_SECONDS="1")
    ready = wait_for(
        lambda: (r := client.get("/readyz")).status_code == 200 and r.json(),
        timeout=STARTUP_SECONDS,
        what="/readyz to answer 200 once the worker started",
        logs=worker.logs,
    )
    assert ready["status"] == "ok"
    assert {name: check["ok"] for name, check in ready["checks"].items()} == {
        "database": True,
        "broker": True,
        "worker": True,
    }
    assert ready["checks"]["worker"]["hostname"] == worker.hostname
    # Still ready after several heartbeat intervals: the worker keeps beating, not only as it starts.
    wait_for(
        lambda: WorkerHeartbeat.objects.filter(
            hostname=worker.hostname, seen_at__gte=F("started_at") + timedelta(seconds=3)
        ).exists(),
        timeout=10,
        what="the worker to keep writing its heartbeat",
        logs=worker.logs,
    )
    assert client.get("/readyz").status_code == 200, worker.logs()

    worker.stop()
    assert worker.process.returncode is not None
    stale = wait_for(
        lambda: (r := client.get("/readyz")).status_code == 503 and r.json(),
        timeout=10,
        what="/readyz to answer 503 after the worker stopped",
        logs=worker.logs,
    )
    assert stale["checks"]["worker"]["ok"] is False
    assert "older than 3 s" in stale["checks"]["worker"]["error"]
    assert stale["checks"]["database"]["ok"] and stale["checks"]["broker"]["ok"]


@pytest.mark.server
def test_task_sent_through_the_broker_runs_on_the_worker(workers):
    """Run audit.chain_verify on a real worker and find its audit event in the database."""
    from apps.audit.models import AuditEvent

    worker = workers("verify")
    send("audit.chain_verify")
    event = wait_for(
        lambda: AuditEvent.objects.filter(action="audit.verify").first(),
        timeout=STARTUP_SECONDS,
        what="the worker to record an audit.verify event",
        logs=worker.logs,
    )
    assert event.outcome == "success"
    assert event.metadata["message"], event.metadata


@pytest.mark.server
def test_task_of_a_killed_worker_is_redelivered_to_another(workers, tmp_path):
    """Kill a worker mid-task with SIGKILL and see another worker run the task to the end."""
    marker = tmp_path / "probe.txt"
    fast_redelivery = {"CELERY_VISIBILITY_TIMEOUT": "3", "FLEETDECK_WORKER_HEARTBEAT_SECONDS": "1"}
    first = workers("doomed", include="tests.core.celery_probe", **fast_redelivery)
    send("tests.probe_slow", str(marker))
    wait_for(
        lambda: marker.exists() and "started" in marker.read_text(),
        timeout=STARTUP_SECONDS,
        what="the first worker to start the slow task",
        logs=first.logs,
    )

    first.kill()
    assert marker.read_text().split() == ["started"]
    # Acknowledged late: the killed worker's message is still in Redis, waiting to be redelivered.
    delivered_at = wait_for(unacked_messages, timeout=5, what="the killed worker's message to be unacknowledged")
    assert len(delivered_at) == 1
    # Redis hands the message out again once it has been invisible for the visibility timeout; a new
    # worker sweeps for such messages as it starts (and only every 100 s after that, kombu's default).
    wait_for(
        lambda: time.time() > max(delivered_at.values()) + int(fast_redelivery["CELERY_VISIBILITY_TIMEOUT"]) + 0.5,
        timeout=10,
        what="the visibility timeout to pass",
    )

    second = workers("rescuer", include="tests.core.celery_probe", **fast_redelivery)
    wait_for(
        lambda: "finished" in marker.read_text(),
        timeout=30,
        what="a second worker to receive the unacknowledged task again and finish it",
        logs=lambda: f"probe file: {marker.read_text()!r}\n{first.logs()}\n{second.logs()}",
    )
    assert marker.read_text().split() == ["started", "started", "finished"]


@pytest.mark.server
def test_task_of_a_killed_pool_process_is_requeued(workers, tmp_path):
    """Kill only the pool process running a task and see the surviving worker requeue it and run it again."""
    marker = tmp_path / "probe.txt"
    worker = workers("survivor", include="tests.core.celery_probe")
    send("tests.probe_slow", str(marker))
    wait_for(
        lambda: marker.exists() and "started" in marker.read_text(),
        timeout=STARTUP_SECONDS,
        what="the worker to start the slow task",
        logs=worker.logs,
    )
    (pool_process,) = worker.pool_processes()
    os.kill(pool_process, signal.SIGKILL)

    # task_reject_on_worker_lost: the main process requeues the message at once instead of failing it.
    wait_for(
        lambda: "finished" in marker.read_text(),
        timeout=30,
        what="the worker to requeue the task of its lost pool process and finish it",
        logs=lambda: f"probe file: {marker.read_text()!r}\n{worker.logs()}",
    )
    assert marker.read_text().split() == ["started", "started", "finished"]
    assert worker.process.poll() is None, worker.logs()
