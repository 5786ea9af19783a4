"""Writes for the runtime: start and cancel runs, decide approvals, webhooks, schedules, the reaper.

Every start goes through `_run_create`, which pins what the run executes (the channel's version,
or the draft resolved now for a playground run), validates the input against the agent's input
schema, and queues the engine after the transaction commits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets as pysecrets
import uuid
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from jsonschema import Draft202012Validator

from apps.accounts.permissions import has_perm, require
from apps.agents.models import Agent, AgentStatus, Channel, ChannelName
from apps.audit.services import audit_record
from apps.core.exceptions import ServiceError
from apps.core.models import WorkerHeartbeat
from apps.core.versioning import spec_hash
from apps.governance import crypto
from apps.observability.tracing import current_traceparent

from . import telemetry
from .models import (
    FINISHED,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Run,
    RunStatus,
    Schedule,
    Session,
    Trigger,
    UncertainChoice,
    Webhook,
    WebhookDelivery,
)

log = logging.getLogger(__name__)
MAX_INPUT_BYTES = 256 * 1024


def _enqueue(run_id: int) -> None:
    from .tasks import run_execute

    transaction.on_commit(lambda: run_execute.delay(run_id))


def _plan(*, agent: Agent, channel: str, draft: bool) -> dict:
    """Return what a run of the agent executes: spec, version, model, pinned tools and handoffs."""
    if agent.status == AgentStatus.RETIRED:
        raise ServiceError(f"Agent {agent.name} is retired: it can no longer run.", field="agent")
    if draft:
        from apps.agents.services import agent_spec_resolve

        try:
            resolved = agent_spec_resolve(team=agent.team, agent=agent, spec=agent.draft_spec)
        except ServiceError as exc:
            raise ServiceError(
                f"The draft cannot run yet: {exc.message} Fix it in the Studio and try again.",
                field=f"draft.{exc.field}" if exc.field else "draft",
            ) from None
        spec, version, model = resolved.spec, None, resolved.model
        tool_ids = [tv.pk for tv in resolved.tool_versions]
        handoff_ids = [a.pk for a in resolved.handoff_agents]
        prompt_version_id = resolved.prompt_version.pk if resolved.prompt_version else None
    else:
        if channel not in ChannelName.values:
            raise ServiceError(f"Channel must be one of {', '.join(ChannelName.values)}.", field="channel")
        pinned = Channel.objects.select_related("version__model__provider").filter(agent=agent, name=channel).first()
        if pinned is None:
            raise ServiceError(
                f"Agent {agent.name} has no version in {channel}: publish one and promote it, "
                "or run the draft from the Studio playground.",
                field="channel",
            )
        version = pinned.version
        spec, model = version.spec, version.model
        tool_ids = list(version.tool_versions.values_list("pk", flat=True))
        handoff_ids = list(version.handoff_agents.values_list("pk", flat=True))
        prompt_version_id = version.prompt_version_id
    if model.provider.kind != "simulated" and not model.provider.enabled:
        raise ServiceError(f"The provider of {model.ref} is disabled: a platform admin enables it in the catalog.")
    return {
        "spec": {
            **spec,
            "_version": version.version if version else "draft",
            "_tool_version_ids": tool_ids,
            "_handoff_agent_ids": handoff_ids,
            "_prompt_version_id": prompt_version_id,
        },
        "version": version,
        "model": model,
    }


def _check_input(spec: dict, value) -> None:
    if len(json.dumps(value, default=str).encode()) > MAX_INPUT_BYTES:
        raise ServiceError(f"The input is too large: at most {MAX_INPUT_BYTES // 1024} KB.", field="input")
    schema = spec.get("input_schema") or {"type": "object"}
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path)
        raise ServiceError(
            f"The input does not match the agent's input schema{' at ' + where if where else ''}: {errors[0].message}.",
            field="input",
        )


def _check_key(value: str | None, *, field: str, noun: str) -> str:
    value = (value or "").strip()
    if len(value) > 200:
        raise ServiceError(f"The {noun} is too long: at most 200 characters.", field=field)
    return value


def _run_create(
    *,
    agent: Agent,
    input,
    trigger: str,
    started_by=None,
    started_by_label: str,
    actor,
    channel: str = ChannelName.PRODUCTION,
    draft: bool = False,
    session_key: str | None = None,
    idempotency_key: str | None = None,
    trigger_ref: str = "",
    parent: Run | None = None,
    enqueue: bool = True,
) -> Run:
    idempotency_key = _check_key(idempotency_key, field="idempotency_key", noun="Idempotency-Key")
    session_key = _check_key(session_key, field="session", noun="session key")
    if idempotency_key:
        existing = Run.objects.filter(team=agent.team, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _same_request(existing, agent)
    plan = _plan(agent=agent, channel=channel, draft=draft)
    _check_input(plan["spec"], input)
    try:
        with transaction.atomic():
            session = None
            if session_key:
                session, _ = Session.objects.get_or_create(agent=agent, key=session_key, defaults={"team": agent.team})
                Session.objects.filter(pk=session.pk).update(updated_at=timezone.now())
            run = Run.objects.create(
                team=agent.team,
                agent=agent,
                agent_version=plan["version"],
                channel="" if draft else channel,
                is_draft=draft,
                spec=plan["spec"],
                spec_hash=plan["version"].content_hash if plan["version"] else spec_hash(plan["spec"]),
                model=plan["model"],
                trigger=trigger,
                trigger_ref=trigger_ref[:100],
                started_by=started_by,
                started_by_label=started_by_label[:200],
                input=input,
                trace_id=parent.trace_id if parent else uuid.uuid4().hex,
                origin_traceparent=current_traceparent(),
                session=session,
                parent=parent,
                depth=parent.depth + 1 if parent else 0,
                idempotency_key=idempotency_key,
                simulated=plan["model"].provider.kind == "simulated",
            )
            audit_record(
                actor=actor,
                action="run.start",
                obj=run,
                team=agent.team,
                after={
                    "agent": agent.name,
                    "version": plan["spec"]["_version"],
                    "channel": run.channel,
                    "trigger": trigger,
                    "parent_run": parent.pk if parent else None,
                },
            )
            if enqueue:
                _enqueue(run.pk)
    except IntegrityError:
        # The same Idempotency-Key raced in from a retry: answer with the run that won.
        existing = Run.objects.filter(team=agent.team, idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return _same_request(existing, agent)
    return run


def _same_request(existing: Run, agent: Agent) -> Run:
    if existing.agent_id != agent.pk:
        raise ServiceError(
            "This Idempotency-Key was already used to start a run of another agent: use a new key for a new request.",
            field="idempotency_key",
            code="idempotency_conflict",
        )
    return existing


def run_start(
    *,
    actor,
    agent: Agent,
    input,
    channel: str = ChannelName.PRODUCTION,
    trigger: str = Trigger.API,
    session_key: str | None = None,
    idempotency_key: str | None = None,
) -> Run:
    """Start a run of the agent's version in the channel, queued for a worker."""
    require(actor, "run.start", agent.team, obj=agent)
    token = getattr(actor, "_fleetdeck_token", None)
    return _run_create(
        agent=agent,
        input=input,
        trigger=trigger,
        started_by=actor,
        started_by_label=actor.username,
        actor=actor,
        channel=channel,
        session_key=session_key,
        idempotency_key=idempotency_key,
        trigger_ref=f"token {token.prefix}" if token is not None else "",
    )


def run_start_draft(*, actor, agent: Agent, input, session_key: str | None = None) -> Run:
    """Run the agent's current draft (the Studio playground): only those who may edit it may."""
    require(actor, "registry.edit", agent.team, obj=agent)
    return _run_create(
        agent=agent,
        input=input,
        trigger=Trigger.PLAYGROUND,
        started_by=actor,
        started_by_label=actor.username,
        actor=actor,
        draft=True,
        session_key=session_key,
    )


def run_start_child(*, parent: Run, agent: Agent, input) -> Run:
    """Start a handoff: a child run of the agent's production version, executed by the caller's worker.

    The caller's permissions are checked: whoever started the parent must be allowed to run the
    target. Depth and cycles are checked by the engine before it gets here.
    """
    starter = parent.started_by
    if starter is None or not has_perm(starter, "run.start", agent.team, agent):
        raise ServiceError(
            f"{parent.started_by_label or 'The run starter'} may not run agent {agent.name}, so this run may not "
            "hand work to it.",
            code="handoff_denied",
        )
    return _run_create(
        agent=agent,
        input=input,
        trigger=Trigger.HANDOFF,
        started_by=starter,
        started_by_label=parent.started_by_label,
        actor=f"agent:{parent.agent.name}",
        trigger_ref=f"run {parent.pk}",
        parent=parent,
        enqueue=False,
    )


def run_finish(*, run: Run, status: str, output=None, error: str = "", error_code: str = "") -> Run:
    """Record the end of a run (the engine's last write for it)."""
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(
        status=status, output=output, error=error[:5000], error_code=error_code[:40], finished_at=now, worker=""
    )
    run.status, run.output, run.error, run.error_code, run.finished_at = status, output, error, error_code, now
    telemetry.run_span(run)
    if run.parent_id:
        parent_status = Run.objects.filter(pk=run.parent_id).values_list("status", flat=True).first()
        if parent_status == RunStatus.WAITING:
            # The parent waited for this child (it paused for an approval): wake it.
            _enqueue(run.parent_id)
    return run


def run_cancel(*, actor, run: Run, reason: str = "") -> Run:
    """Ask a run to stop; a queued or waiting run stops now, a running one between two steps."""
    require(actor, "run.start", run.team, obj=run.agent)
    if run.finished:
        raise ServiceError(f"This run already ended ({run.get_status_display().lower()}).", code="finished")
    reason = (reason or "").strip()[:500]
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        locked.cancel_requested = True
        locked.save(update_fields=["cancel_requested"])
        message = f"Cancelled by {actor.username}" + (f": {reason}" if reason else ".")
        if locked.status in {RunStatus.QUEUED, RunStatus.WAITING}:
            Approval.objects.filter(run=locked, status=ApprovalStatus.PENDING).update(
                status=ApprovalStatus.REJECTED, decided_by=actor, decided_at=timezone.now(), comment=message
            )
            run_finish(run=locked, status=RunStatus.CANCELLED, error=message, error_code="cancelled")
        audit_record(actor=actor, action="run.cancel", obj=locked, team=run.team, metadata={"reason": reason})
    run.refresh_from_db()
    for child in run.children.exclude(status__in=FINISHED):
        Run.objects.filter(pk=child.pk).update(cancel_requested=True)
    return run


def approval_decide(
    *, actor, approval: Approval, approve: bool, comment: str = "", decision: str | None = None
) -> Approval:
    """Approve or reject a paused tool call (or decide an uncertain one); the run resumes on any worker."""
    require(actor, "run.approve", approval.team, obj=approval.run.agent)
    comment = (comment or "").strip()
    if len(comment) > 2000:
        raise ServiceError("The reason is too long: at most 2000 characters.", field="comment")
    if not approve and not comment:
        raise ServiceError(
            "Say why you reject the call: the reason is shown to the agent and kept in the audit log.", field="comment"
        )
    if approval.kind == ApprovalKind.UNCERTAIN:
        decision = decision or (UncertainChoice.RETRY if approve else UncertainChoice.FAIL)
        if decision not in UncertainChoice.values:
            raise ServiceError(f"Decision must be one of {', '.join(UncertainChoice.values)}.", field="decision")
    else:
        decision = ""
    with transaction.atomic():
        locked = Approval.objects.select_for_update().get(pk=approval.pk)
        if locked.status != ApprovalStatus.PENDING:
            raise ServiceError(
                f"This approval was already decided ({locked.get_status_display().lower()}).", code="decided"
            )
        if locked.expires_at <= timezone.now():
            raise ServiceError("This approval has expired: the run was stopped.", code="expired")
        locked.status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        locked.decision = decision
        locked.decided_by = actor
        locked.decided_at = timezone.now()
        locked.comment = comment
        locked.save(update_fields=["status", "decision", "decided_by", "decided_at", "comment"])
        audit_record(
            actor=actor,
            action="approval.approve" if approve else "approval.reject",
            obj=locked,
            team=locked.team,
            after={"tool": locked.tool_name, "run": locked.run_id, "decision": decision, "comment": comment},
        )
        _enqueue(locked.run_id)
    return locked


def approvals_expire() -> int:
    """Expire pending approvals past their time and wake their runs, which then stop. Return how many."""
    count = 0
    for approval in Approval.objects.filter(status=ApprovalStatus.PENDING, expires_at__lte=timezone.now()):
        with transaction.atomic():
            updated = Approval.objects.filter(pk=approval.pk, status=ApprovalStatus.PENDING).update(
                status=ApprovalStatus.EXPIRED, decided_at=timezone.now()
            )
            if updated:
                audit_record(actor="system:approvals", action="approval.expire", obj=approval, team=approval.team)
                _enqueue(approval.run_id)
                count += 1
    return count


def approval_expiry():
    return timezone.now() + timedelta(seconds=settings.FLEETDECK_APPROVAL_TTL_SECONDS)


# --- Workers and the reaper ---------------------------------------------------------------------


def worker_alive(worker: str) -> bool:
    """Return whether the worker that claimed a run ("host:pid") still runs."""
    hostname, _, pid = worker.rpartition(":")
    if hostname == _this_host() and pid.isdigit():
        # Same worker host: the pool process either exists or not (a killed child is gone at once).
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    stale = timezone.now() - timedelta(seconds=settings.CELERY_WORKER_HEARTBEAT_STALE_SECONDS)
    return WorkerHeartbeat.objects.filter(hostname=hostname, seen_at__gte=stale).exists()


_HOST: list[str] = []


def _this_host() -> str:
    return _HOST[0] if _HOST else ""


def set_this_host(hostname: str) -> None:
    """Remember the Celery hostname of this process (the engine names its claims after it)."""
    _HOST[:] = [hostname]


def run_reap() -> int:
    """Find runs whose worker vanished (or whose task was lost) and queue them again. Return how many.

    A running run whose worker stopped heartbeating is recovered from its last committed step by
    any worker; a side-effecting tool call that may have run is not repeated but put to an
    operator (the engine does that when it resumes).
    """
    count = 0
    lost_queue = timezone.now() - timedelta(minutes=5)
    for run in Run.objects.filter(status=RunStatus.RUNNING).exclude(worker=""):
        if not worker_alive(run.worker):
            with transaction.atomic():
                updated = Run.objects.filter(pk=run.pk, worker=run.worker, status=RunStatus.RUNNING).update(
                    worker="", recoveries=F("recoveries") + 1
                )
                if updated:
                    audit_record(
                        actor="system:reaper", action="run.recover", obj=run, metadata={"lost_worker": run.worker}
                    )
                    _enqueue(run.pk)
                    count += 1
    # A run waiting on a child whose end could not wake it (the two raced): wake it now.
    orphaned = (
        Run.objects.filter(status=RunStatus.WAITING, worker="")
        .exclude(approvals__status=ApprovalStatus.PENDING)
        .exclude(children__status__in=[s for s in RunStatus.values if s not in FINISHED])
        .values_list("pk", flat=True)[:500]
    )
    for run_id in orphaned:
        with transaction.atomic():
            _enqueue(run_id)
            count += 1
    # A queued run nobody claimed for minutes lost its task (e.g. the broker was reset): queue it again.
    for run_id in Run.objects.filter(status=RunStatus.QUEUED, worker="", created_at__lt=lost_queue).values_list(
        "pk", flat=True
    )[:500]:
        with transaction.atomic():
            _enqueue(run_id)
            count += 1
    return count


# --- Webhooks -----------------------------------------------------------------------------------

SIGNATURE_HEADER = "X-Fleetdeck-Signature"
TIMESTAMP_HEADER = "X-Fleetdeck-Timestamp"


def _trigger_name(value: str, *, noun: str) -> str:
    from apps.core.drafts import NAME_RE

    value = (value or "").strip()
    if not NAME_RE.match(value):
        raise ServiceError(
            f"The {noun} name must be lowercase letters, digits, dots, dashes or underscores (e.g. nightly).",
            field="name",
        )
    return value


def _trigger_channel(channel: str) -> str:
    if channel not in ChannelName.values:
        raise ServiceError(f"Channel must be one of {', '.join(ChannelName.values)}.", field="channel")
    return channel


def webhook_create(*, actor, agent: Agent, name: str, channel: str = ChannelName.PRODUCTION) -> tuple[Webhook, str]:
    """Create a webhook for the agent; return it and its signing secret, which is shown only now."""
    require(actor, "trigger.manage", agent.team, obj=agent)
    name = _trigger_name(name, noun="webhook")
    channel = _trigger_channel(channel)
    if Webhook.objects.filter(agent=agent, name=name).exists():
        raise ServiceError(f"Agent {agent.name} already has a webhook named {name}.", field="name")
    secret = "whsec_" + pysecrets.token_urlsafe(32)
    with transaction.atomic():
        webhook = Webhook.objects.create(
            team=agent.team,
            agent=agent,
            name=name,
            channel=channel,
            secret_ciphertext=crypto.encrypt(secret),
            created_by=actor,
        )
        audit_record(
            actor=actor,
            action="webhook.create",
            obj=webhook,
            team=agent.team,
            after={"agent": agent.name, "name": name, "channel": channel},
        )
    return webhook, secret


def webhook_rotate_secret(*, actor, webhook: Webhook) -> str:
    """Give the webhook a new signing secret (the old one stops working now); return it once."""
    require(actor, "trigger.manage", webhook.team, obj=webhook.agent)
    secret = "whsec_" + pysecrets.token_urlsafe(32)
    with transaction.atomic():
        webhook.secret_ciphertext = crypto.encrypt(secret)
        webhook.save(update_fields=["secret_ciphertext"])
        audit_record(actor=actor, action="webhook.rotate_secret", obj=webhook, team=webhook.team)
    return secret


def webhook_set_enabled(*, actor, webhook: Webhook, enabled: bool) -> Webhook:
    """Turn the webhook on or off."""
    require(actor, "trigger.manage", webhook.team, obj=webhook.agent)
    with transaction.atomic():
        webhook.enabled = bool(enabled)
        webhook.save(update_fields=["enabled"])
        audit_record(
            actor=actor, action="webhook.enable" if enabled else "webhook.disable", obj=webhook, team=webhook.team
        )
    return webhook


def webhook_delete(*, actor, webhook: Webhook) -> None:
    """Delete the webhook; its URL stops answering at once."""
    require(actor, "trigger.manage", webhook.team, obj=webhook.agent)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="webhook.delete",
            obj=webhook,
            team=webhook.team,
            before={"agent": webhook.agent.name, "name": webhook.name},
        )
        webhook.delete()


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 a caller sends: over "<timestamp>.<raw body>" with the webhook's secret."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookRefused(ServiceError):
    """Raise when a webhook call is refused; status is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int, code: str):
        super().__init__(message, code=code)
        self.status = status


def webhook_receive(*, token, body: bytes, headers, now: float | None = None) -> Run:
    """Start a run from a signed webhook call, or raise WebhookRefused saying why not.

    The caller signs "<timestamp>.<raw body>" with HMAC-SHA256 and the webhook's secret and sends
    `X-Fleetdeck-Timestamp: <unix seconds>` and `X-Fleetdeck-Signature: sha256=<hex>`. A timestamp
    outside the tolerance window is refused, and so is a signature seen before (a replay).
    The JSON body is the run's input; an `Idempotency-Key` header makes retries return the same run.
    """
    try:
        webhook = Webhook.objects.select_related("agent__team", "created_by").get(token=token, enabled=True)
    except (Webhook.DoesNotExist, ValueError, TypeError):
        raise WebhookRefused("No such webhook, or it is disabled.", status=404, code="not_found") from None
    timestamp = (headers.get(TIMESTAMP_HEADER) or "").strip()
    signature = (headers.get(SIGNATURE_HEADER) or "").strip()
    if not timestamp or not signature:
        raise WebhookRefused(
            f"Sign the request: send {TIMESTAMP_HEADER} (unix seconds) and {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 "
            'of "<timestamp>.<body>" with the webhook secret>.',
            status=401,
            code="unsigned",
        )
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookRefused(f"{TIMESTAMP_HEADER} must be unix seconds.", status=401, code="bad_timestamp") from None
    now = now if now is not None else timezone.now().timestamp()
    tolerance = settings.FLEETDECK_WEBHOOK_TOLERANCE_SECONDS
    if abs(now - sent_at) > tolerance:
        raise WebhookRefused(
            f"The timestamp is more than {tolerance} s away from the server's clock: sign each request when you send it.",
            status=401,
            code="stale_timestamp",
        )
    try:
        expected = webhook_signature(crypto.decrypt(webhook.secret_ciphertext), timestamp, body)
    except crypto.SecretDecryptError:
        raise WebhookRefused(
            "The webhook's secret cannot be read (the platform's encryption keys changed): rotate it on the "
            "agent's Triggers page.",
            status=503,
            code="secret_unavailable",
        ) from None
    given = signature.removeprefix("sha256=")
    if not hmac.compare_digest(expected, given):
        raise WebhookRefused(
            "The signature does not match: check the webhook secret and what you sign.",
            status=401,
            code="bad_signature",
        )
    try:
        payload = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WebhookRefused(
            "The body must be JSON: it becomes the run's input.", status=400, code="bad_json"
        ) from None
    idempotency_key = headers.get("Idempotency-Key")
    with transaction.atomic():
        try:
            with transaction.atomic():
                delivery = WebhookDelivery.objects.create(webhook=webhook, signature=given[:64])
        except IntegrityError:
            raise WebhookRefused(
                "This signed request was already received (a replay): sign a new request with a new timestamp.",
                status=409,
                code="replay",
            ) from None
        run = _run_create(
            agent=webhook.agent,
            input=payload,
            trigger=Trigger.WEBHOOK,
            started_by=webhook.created_by,
            started_by_label=f"webhook {webhook.name}",
            actor=f"system:webhook {webhook.pk}",
            channel=webhook.channel,
            idempotency_key=f"webhook:{webhook.pk}:{idempotency_key}" if idempotency_key else None,
            trigger_ref=f"webhook {webhook.pk}",
        )
        delivery.run = run
        delivery.save(update_fields=["run"])
        Webhook.objects.filter(pk=webhook.pk).update(last_used_at=timezone.now())
    return run


# --- Schedules ----------------------------------------------------------------------------------


def _cron_fields(cron: str) -> list[str]:
    from celery.schedules import crontab

    parts = (cron or "").split()
    if len(parts) != 5:
        raise ServiceError(
            "A schedule is a cron expression of five fields: minute hour day-of-month month day-of-week, "
            "e.g. '0 7 * * 1-5' for 07:00 on weekdays.",
            field="cron",
        )
    try:
        crontab(minute=parts[0], hour=parts[1], day_of_month=parts[2], month_of_year=parts[3], day_of_week=parts[4])
    except (ValueError, TypeError, KeyError) as exc:
        raise ServiceError(f"The cron expression '{cron}' is not valid: {exc}.", field="cron") from None
    return parts


def _timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ServiceError(
            f"Unknown time zone '{name[:60]}': use a name like UTC or Europe/Paris.", field="timezone"
        ) from None
    return name


def _sync_periodic_task(schedule: Schedule, parts: list[str]) -> None:
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    cron, _ = CrontabSchedule.objects.get_or_create(
        minute=parts[0],
        hour=parts[1],
        day_of_month=parts[2],
        month_of_year=parts[3],
        day_of_week=parts[4],
        timezone=schedule.timezone_name,
    )
    task = schedule.periodic_task or PeriodicTask(name=f"fleetdeck-schedule-{schedule.pk}")
    task.task = "runtime.schedule_fire"
    task.crontab = cron
    task.args = json.dumps([schedule.pk])
    task.enabled = schedule.enabled
    task.expire_seconds = 300  # a missed firing does not pile up behind a stopped beat
    task.save()
    if schedule.periodic_task_id != task.pk:
        schedule.periodic_task = task
        schedule.save(update_fields=["periodic_task"])


def schedule_create(
    *,
    actor,
    agent: Agent,
    name: str,
    cron: str,
    input=None,
    timezone_name: str = "UTC",
    channel: str = ChannelName.PRODUCTION,
) -> Schedule:
    """Create a schedule that starts a run of the agent's channel version with the given input."""
    require(actor, "trigger.manage", agent.team, obj=agent)
    name = _trigger_name(name, noun="schedule")
    parts = _cron_fields(cron)
    timezone_name = _timezone(timezone_name or "UTC")
    channel = _trigger_channel(channel)
    input = {} if input is None else input
    _check_input(_plan(agent=agent, channel=channel, draft=False)["spec"], input)
    if Schedule.objects.filter(agent=agent, name=name).exists():
        raise ServiceError(f"Agent {agent.name} already has a schedule named {name}.", field="name")
    with transaction.atomic():
        schedule = Schedule.objects.create(
            team=agent.team,
            agent=agent,
            name=name,
            cron=" ".join(parts),
            timezone_name=timezone_name,
            input=input,
            channel=channel,
            created_by=actor,
        )
        _sync_periodic_task(schedule, parts)
        audit_record(
            actor=actor,
            action="schedule.create",
            obj=schedule,
            team=agent.team,
            after={"agent": agent.name, "cron": schedule.cron, "timezone": timezone_name, "channel": channel},
        )
    return schedule


def schedule_update(*, actor, schedule: Schedule, **changes) -> Schedule:
    """Change a schedule's cron, time zone, input, channel or whether it is enabled."""
    require(actor, "trigger.manage", schedule.team, obj=schedule.agent)
    unknown = set(changes) - {"cron", "timezone_name", "input", "channel", "enabled"}
    if unknown:
        raise ServiceError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    before = {"cron": schedule.cron, "timezone": schedule.timezone_name, "enabled": schedule.enabled}
    parts = _cron_fields(changes.get("cron", schedule.cron))
    schedule.cron = " ".join(parts)
    schedule.timezone_name = _timezone(changes.get("timezone_name", schedule.timezone_name))
    schedule.channel = _trigger_channel(changes.get("channel", schedule.channel))
    if "input" in changes:
        _check_input(_plan(agent=schedule.agent, channel=schedule.channel, draft=False)["spec"], changes["input"])
        schedule.input = changes["input"]
    if "enabled" in changes:
        schedule.enabled = bool(changes["enabled"])
    with transaction.atomic():
        schedule.save()
        _sync_periodic_task(schedule, parts)
        audit_record(
            actor=actor,
            action="schedule.update",
            obj=schedule,
            team=schedule.team,
            before=before,
            after={"cron": schedule.cron, "timezone": schedule.timezone_name, "enabled": schedule.enabled},
        )
    return schedule


def schedule_delete(*, actor, schedule: Schedule) -> None:
    """Delete the schedule and its beat entry."""
    require(actor, "trigger.manage", schedule.team, obj=schedule.agent)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="schedule.delete",
            obj=schedule,
            team=schedule.team,
            before={"agent": schedule.agent.name, "name": schedule.name, "cron": schedule.cron},
        )
        task = schedule.periodic_task
        schedule.delete()
        if task is not None:
            task.delete()


def schedule_fire(*, schedule_id: int) -> Run | None:
    """Start the scheduled run (called by beat through the runtime.schedule_fire task)."""
    schedule = Schedule.objects.select_related("agent__team", "created_by").filter(pk=schedule_id).first()
    if schedule is None or not schedule.enabled:
        return None
    minute = timezone.now().replace(second=0, microsecond=0)
    run = _run_create(
        agent=schedule.agent,
        input=schedule.input,
        trigger=Trigger.SCHEDULE,
        started_by=schedule.created_by,
        started_by_label=f"schedule {schedule.name}",
        actor=f"system:schedule {schedule.pk}",
        channel=schedule.channel,
        # One run per schedule and minute, however many times beat delivers the firing.
        idempotency_key=f"schedule:{schedule.pk}:{minute:%Y%m%dT%H%M}",
        trigger_ref=f"schedule {schedule.pk}",
    )
    Schedule.objects.filter(pk=schedule.pk).update(last_run_at=timezone.now())
    return run
