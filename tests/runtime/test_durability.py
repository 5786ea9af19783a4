"""Runs survive dead workers: real Celery workers on Redis and PostgreSQL, killed with SIGKILL.

A ledger HTTP server on loopback stands for a payment API: it records each charge by its
Idempotency-Key. The run's worker is killed while the charge is in flight (the ledger has it);
a new worker recovers the run from its last committed step, finds the side-effecting call
uncertain and puts it to an operator instead of repeating it; the operator's "retry with the same
key" lets the ledger recognise the retry, so the charge happens once.
"""

from __future__ import annotations

import os
import threading

import pytest

from apps.runtime.models import Approval, ApprovalKind, Run, RunStatus, StepKind, StepStatus
from apps.runtime.services import approval_decide, run_reap
from tests.core.test_celery_worker import STARTUP_SECONDS, wait_for, workers  # noqa: F401 - fixture
from tests.runtime.loopback import loopback_server

pytestmark = pytest.mark.server
APP_QUEUE = "fleetdeck"  # the app's default queue, where run_start's on_commit sends run_execute


def _redis():
    import redis

    return redis.Redis.from_url(os.environ["REDIS_URL"])


@pytest.fixture
def app_queue():
    """Empty the app's queue on the test Redis before and after (messages of earlier tests)."""
    client = _redis()
    client.delete(APP_QUEUE)
    yield
    client.delete(APP_QUEUE)
    for tag, payload in client.hgetall("unacked").items():
        if f'"{APP_QUEUE}"'.encode() in payload:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


class Ledger:
    """Charges by Idempotency-Key; the first request is held open (the worker dies during it)."""

    def __init__(self):
        self.charges: dict[str, int] = {}
        self.deliveries: list[str] = []
        self.release = threading.Event()

    def __call__(self, request):
        key = request.headers.get("Idempotency-Key", "")
        self.deliveries.append(key)
        first = key not in self.charges
        if first:
            self.charges[key] = len(self.charges) + 1
        if len(self.deliveries) == 1:
            self.release.wait(20)  # in flight when the worker is killed
        request.reply(200, {"charge": self.charges[key], "replayed": not first})


def test_worker_killed_during_a_side_effect_loses_nothing_and_repeats_nothing(
    rt,
    workers,  # noqa: F811 - the fixture imported above
    app_queue,
    settings,
):
    settings.CELERY_WORKER_HEARTBEAT_STALE_SECONDS = 3
    env = dict(
        REDIS_URL=os.environ["REDIS_URL"],
        CELERY_BROKER_URL=os.environ["REDIS_URL"],
        FLEETDECK_ALLOWED_INTERNAL_HOSTS="127.0.0.1",
        FLEETDECK_WORKER_HEARTBEAT_SECONDS="1",
        FLEETDECK_WORKER_HEARTBEAT_STALE_SECONDS="3",
    )
    ledger = Ledger()
    with loopback_server(ledger) as server:
        rt.http_tool("payments.charge", f"{server.url}/charge", method="POST", side_effect="write")
        agent = rt.agent(
            "biller",
            tools=["payments.charge"],
            script=[
                {"call": [{"tool": "payments.charge", "arguments": {"q": "order-7"}}]},
                {"answer": "charge {result.body.charge}"},
            ],
        )
        first = workers("first", queue=APP_QUEUE, **env)
        run = rt.start(agent, {"order": 7})
        wait_for(
            lambda: ledger.deliveries, timeout=STARTUP_SECONDS, what="the charge to reach the ledger", logs=first.logs
        )
        run.refresh_from_db()
        assert run.status == RunStatus.RUNNING and run.worker.startswith(first.hostname)
        step = run.steps.get(kind=StepKind.TOOL)
        assert step.status == StepStatus.STARTED and step.idempotency_key == f"{run.pk}:1"

        first.kill()  # SIGKILL to the worker and its pool, mid-call
        ledger.release.set()
        second = workers("second", queue=APP_QUEUE, **env)

        def recovered():
            run_reap()  # what beat runs every 15 s: the first worker's heartbeat goes stale after 3 s
            return Run.objects.filter(pk=run.pk, status=RunStatus.WAITING).exists()

        wait_for(recovered, timeout=STARTUP_SECONDS, what="the new worker to recover the run", logs=second.logs)
        step.refresh_from_db()
        assert step.status == StepStatus.UNCERTAIN
        approval = Approval.objects.get(step=step)
        assert approval.kind == ApprovalKind.UNCERTAIN
        assert len(ledger.deliveries) == 1, "the uncertain call must not be repeated without a decision"

        approval_decide(actor=rt.operator, approval=approval, approve=True, decision="retry", comment="check ledger")
        wait_for(
            lambda: Run.objects.filter(pk=run.pk, status=RunStatus.SUCCEEDED).exists(),
            timeout=STARTUP_SECONDS,
            what="the run to finish on the new worker",
            logs=second.logs,
        )
    run.refresh_from_db()
    assert run.output == "charge 1"
    assert run.recoveries >= 1
    assert ledger.deliveries == [f"{run.pk}:1", f"{run.pk}:1"]  # the retry carried the same key
    assert ledger.charges == {f"{run.pk}:1": 1}  # so the money moved once
    assert run.steps.get(kind=StepKind.TOOL).status == StepStatus.SUCCEEDED

    # Every step has its span in the store, though the first worker died with its export batch unsent.
    from apps.observability.models import Span

    def spans_complete():
        stored = set(Span.objects.filter(trace_id=run.trace_id).values_list("span_id", flat=True))
        return set(run.steps.values_list("span_id", flat=True)) <= stored and (
            Span.objects.filter(trace_id=run.trace_id, operation="invoke_agent").count() == 1
        )

    wait_for(spans_complete, timeout=STARTUP_SECONDS, what="every step's span to reach the store", logs=second.logs)
    assert Span.objects.filter(trace_id=run.trace_id).count() == run.steps.count() + 1


def test_approval_survives_a_worker_restart(rt, workers, app_queue):  # noqa: F811
    env = dict(
        REDIS_URL=os.environ["REDIS_URL"],
        CELERY_BROKER_URL=os.environ["REDIS_URL"],
        FLEETDECK_ALLOWED_INTERNAL_HOSTS="127.0.0.1",
    )

    def handler(request):
        request.reply(200, {"sent": True})

    with loopback_server(handler) as server:
        rt.http_tool("mail.send", f"{server.url}/send", method="POST", side_effect="write", requires_approval=True)
        agent = rt.agent(
            "mailer",
            tools=["mail.send"],
            script=[{"call": [{"tool": "mail.send", "arguments": {"q": "hi"}}]}, {"answer": "sent={result.body.sent}"}],
        )
        first = workers("before", queue=APP_QUEUE, **env)
        run = rt.start(agent, {})
        wait_for(
            lambda: Run.objects.filter(pk=run.pk, status=RunStatus.WAITING).exists(),
            timeout=STARTUP_SECONDS,
            what="the run to wait for approval",
            logs=first.logs,
        )
        first.stop()
        second = workers("after", queue=APP_QUEUE, **env)
        approval_decide(actor=rt.operator, approval=Approval.objects.get(run=run), approve=True, comment="ok")
        wait_for(
            lambda: Run.objects.filter(pk=run.pk, status=RunStatus.SUCCEEDED).exists(),
            timeout=STARTUP_SECONDS,
            what="the run to resume on the restarted worker",
            logs=second.logs,
        )
        assert len(server.requests) == 1
    run.refresh_from_db()
    assert run.output == "sent=true"
