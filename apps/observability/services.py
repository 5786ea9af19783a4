"""Writes of the observability area: alert rules and events, their evaluation and delivery, span retention.

Rule changes and acknowledgements check one permission, validate, write and audit in one
transaction. Evaluation runs on the schedule (observability.alerts_evaluate, every minute): a rule
fires once when its condition starts holding, records an AlertEvent and the audit event
"alert.fire", and clears when the value drops back, so it can fire again later; run_cost rules
fire once per run. An event of a rule with a webhook is posted to it by a task queued after the
commit, guarded against SSRF like the runtime's HTTP tools.

The webhook POST carries JSON (see `webhook_payload`) and the headers X-Fleetdeck-Event
("alert.fired") and X-Fleetdeck-Delivery (the event id: the same on every retry, so a receiver can
drop duplicates). The body is not signed: rules hold no shared secret. Put a hard-to-guess token
in the webhook URL's path (as Slack-style incoming webhooks do); the URL is shown in full only to
those who may manage alert rules.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.accounts.permissions import require
from apps.audit.services import audit_record
from apps.core.exceptions import ServiceError
from apps.runtime.executors import netguard
from apps.runtime.executors.base import ToolError, clip_text
from apps.runtime.executors.http import open_pinned_connection

from . import alerts
from .models import AlertEvent, AlertKind, AlertRule, DeliveryStatus, Span, SpanLatency, SpanRollup

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:alerts"
MAX_WINDOW_MINUTES = 30 * 24 * 60
MAX_THRESHOLD = Decimal("9999999999")
RULE_FIELDS = ("name", "kind", "threshold", "agent", "window_minutes", "webhook_url", "enabled")

MAX_DELIVERY_ATTEMPTS = 4
DELIVERY_TIMEOUT_SECONDS = 10
DELIVERY_RETRY_STATUSES = {408, 425, 429}
USER_AGENT = "Fleetdeck-Alerts/1.0"

CLEANUP_CHUNK = 10_000


# --- Rules ---------------------------------------------------------------------------------------


def webhook_origin(url: str) -> str:
    """Return what may be shown of a webhook URL to anyone: its scheme and host ("https://hooks.example.com/…")."""
    if not url:
        return ""
    parsed = urlsplit(url)
    rest = "/…" if (parsed.path not in ("", "/") or parsed.query) else ""
    return f"{parsed.scheme}://{parsed.netloc.rsplit('@', 1)[-1]}{rest}"


def webhook_url_check(url: str) -> str:
    """Return the webhook URL if alerts may be posted to it; raise ServiceError saying why not.

    The same guard as the runtime's HTTP tools: http or https only, no credentials, no ambiguous
    host spellings, and a host whose addresses are all public (unless a platform admin allowed it
    in FLEETDECK_ALLOWED_INTERNAL_HOSTS). A host the DNS cannot answer for right now is accepted:
    every delivery is guarded again.
    """
    url = (url or "").strip()
    if not url:
        return ""
    if len(url) > 500:
        raise ServiceError("The webhook URL is longer than 500 characters; use a shorter one.", field="webhook_url")
    try:
        _parsed, host, port = netguard.check_url(url)
        netguard.resolve_addresses(host, port, url=url)
    except ToolError as exc:
        if exc.retryable:
            return url
        message = exc.message.replace("Refused to call", "Alerts cannot be posted to").replace(
            "Tools may only reach", "Webhooks may only reach"
        )
        message = message.replace("the tool's URL", "the webhook URL").replace("by tools", "by alert webhooks")
        raise ServiceError(message, field="webhook_url", code=exc.code) from None
    return url


def _clean_threshold(kind: str, value) -> Decimal:
    try:
        threshold = Decimal(str(value)).quantize(Decimal("0.0001"))
    except (InvalidOperation, ValueError, TypeError):
        raise ServiceError("The threshold must be a number, e.g. 25 or 1.50.", field="threshold") from None
    if not threshold.is_finite() or threshold < 0 or threshold > MAX_THRESHOLD:
        raise ServiceError(f"The threshold must be between 0 and {MAX_THRESHOLD}.", field="threshold")
    if kind == AlertKind.FAILURE_RATE and threshold >= 100:
        raise ServiceError(
            "A failure rate threshold is a percentage below 100 (the rule fires when the rate is above it).",
            field="threshold",
        )
    if kind == AlertKind.RUN_COST and threshold <= 0:
        raise ServiceError("A run cost threshold is an amount in USD above 0, e.g. 1.00.", field="threshold")
    return threshold


def _clean_rule(team, data: dict) -> dict:
    """Return the rule's fields checked and normalised; raise ServiceError naming the field at fault."""
    name = (data.get("name") or "").strip()
    if not name or len(name) > 100:
        raise ServiceError("Give the rule a name of 1 to 100 characters, e.g. 'Payments failure rate'.", field="name")
    kind = data.get("kind")
    if kind not in AlertKind.values:
        raise ServiceError(f"The kind must be one of {', '.join(AlertKind.values)}.", field="kind")
    agent = data.get("agent")
    if agent is not None and agent.team_id != team.pk:
        raise ServiceError(f"Agent {agent.name} is not in team {team.name}.", field="agent")
    try:
        window = int(60 if data.get("window_minutes") in (None, "") else data["window_minutes"])
    except (TypeError, ValueError):
        raise ServiceError("The window is a whole number of minutes, e.g. 60.", field="window_minutes") from None
    if not 1 <= window <= MAX_WINDOW_MINUTES:
        raise ServiceError(
            f"The window must be between 1 and {MAX_WINDOW_MINUTES} minutes (30 days).", field="window_minutes"
        )
    return {
        "name": name,
        "kind": kind,
        "threshold": _clean_threshold(kind, data.get("threshold")),
        "agent": agent,
        "window_minutes": window,
        "webhook_url": webhook_url_check(data.get("webhook_url") or ""),
        "enabled": bool(data.get("enabled", True)),
    }


def _unique_name(team, name: str, exclude_pk: int | None = None) -> None:
    clash = AlertRule.objects.filter(team=team, name=name)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ServiceError(f"Team {team.name} already has an alert rule named {name!r}.", field="name")


def _snapshot(rule: AlertRule) -> dict:
    return {
        "name": rule.name,
        "kind": rule.kind,
        "threshold": str(rule.threshold),
        "agent": rule.agent.name if rule.agent_id else None,
        "window_minutes": rule.window_minutes,
        "webhook": webhook_origin(rule.webhook_url),
        "enabled": rule.enabled,
    }


def alert_rule_create(
    *,
    actor,
    team,
    name: str,
    kind: str,
    threshold,
    agent=None,
    window_minutes: int = 60,
    webhook_url: str = "",
    enabled: bool = True,
) -> AlertRule:
    """Create an alert rule in the team; it is evaluated from the next minute on."""
    require(actor, "alert.manage", team)
    data = _clean_rule(
        team,
        {
            "name": name,
            "kind": kind,
            "threshold": threshold,
            "agent": agent,
            "window_minutes": window_minutes,
            "webhook_url": webhook_url,
            "enabled": enabled,
        },
    )
    _unique_name(team, data["name"])
    with transaction.atomic():
        rule = AlertRule.objects.create(team=team, created_by=actor if getattr(actor, "pk", None) else None, **data)
        audit_record(actor=actor, action="alert_rule.create", obj=rule, team=team, after=_snapshot(rule))
    return rule


def alert_rule_update(*, actor, rule: AlertRule, **changes) -> AlertRule:
    """Change a rule's name, kind, threshold, agent, window, webhook or whether it is enabled.

    A rule whose kind or agent changes measures something else: it starts again as not firing.
    """
    require(actor, "alert.manage", rule.team)
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ServiceError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    before = _snapshot(rule)
    current = {f: getattr(rule, f) for f in RULE_FIELDS}
    data = _clean_rule(rule.team, {**current, **changes})
    _unique_name(rule.team, data["name"], exclude_pk=rule.pk)
    if data["kind"] != rule.kind or (data["agent"].pk if data["agent"] else None) != rule.agent_id:
        rule.firing = False
        rule.last_value = None
    for field, value in data.items():
        setattr(rule, field, value)
    with transaction.atomic():
        rule.save()
        audit_record(
            actor=actor, action="alert_rule.update", obj=rule, team=rule.team, before=before, after=_snapshot(rule)
        )
    return rule


def alert_rule_delete(*, actor, rule: AlertRule) -> None:
    """Delete the rule and its events."""
    require(actor, "alert.manage", rule.team)
    with transaction.atomic():
        audit_record(actor=actor, action="alert_rule.delete", obj=rule, team=rule.team, before=_snapshot(rule))
        rule.delete()


def alert_event_acknowledge(*, actor, event: AlertEvent) -> AlertEvent:
    """Record that the actor saw the event and is on it (once; a second acknowledgement is refused)."""
    require(actor, "alert.acknowledge", event.team)
    with transaction.atomic():
        locked = AlertEvent.objects.select_for_update(of=("self",)).select_related("acknowledged_by").get(pk=event.pk)
        if locked.acknowledged_at is not None:
            who = locked.acknowledged_by.username if locked.acknowledged_by else "someone"
            raise ServiceError(
                f"This alert was already acknowledged by {who} at {locked.acknowledged_at:%Y-%m-%d %H:%M} UTC.",
                code="already_acknowledged",
            )
        locked.acknowledged_by = actor
        locked.acknowledged_at = timezone.now()
        locked.save(update_fields=["acknowledged_by", "acknowledged_at"])
        audit_record(
            actor=actor,
            action="alert.acknowledge",
            obj=locked,
            team=event.team,
            metadata={"rule": event.rule.name, "message": event.message},
        )
    event.acknowledged_by, event.acknowledged_at = locked.acknowledged_by, locked.acknowledged_at
    return event


# --- Evaluation ----------------------------------------------------------------------------------


def _enqueue_delivery(event_id: int) -> None:
    from .tasks import alert_deliver

    transaction.on_commit(lambda: alert_deliver.delay(event_id))


def _fire(
    rule: AlertRule, *, now: datetime, value: float, message: str, run_id: int | None = None, trace_id: str = ""
) -> AlertEvent:
    event = AlertEvent.objects.create(
        team=rule.team,
        rule=rule,
        fired_at=now,
        value=value,
        threshold=float(rule.threshold),
        message=clip_text(message, 480),
        run_id=run_id,
        trace_id=trace_id,
        delivery_status=DeliveryStatus.PENDING if rule.webhook_url else DeliveryStatus.NONE,
    )
    audit_record(
        actor=SYSTEM_ACTOR,
        action="alert.fire",
        obj=event,
        team=rule.team,
        metadata={"rule": rule.name, "kind": rule.kind, "value": value, "threshold": str(rule.threshold)},
    )
    if rule.webhook_url:
        _enqueue_delivery(event.pk)
    return event


def alert_rule_evaluate(*, rule_id: int, now: datetime | None = None) -> list[AlertEvent]:
    """Measure one enabled rule, fire or clear it; return the events it fired."""
    now = now or timezone.now()
    with transaction.atomic():
        rule = (
            AlertRule.objects.select_for_update(of=("self",))
            .select_related("team", "agent")
            .filter(pk=rule_id, enabled=True)
            .first()
        )
        if rule is None:
            return []
        fired: list[AlertEvent] = []
        rule.last_evaluated_at = now
        if rule.kind == AlertKind.RUN_COST:
            # Each run fires on its own; the rule itself has no state between evaluations.
            offenders = alerts.run_cost_offenders(rule, now)
            for offender in offenders:
                fired.append(
                    _fire(
                        rule,
                        now=now,
                        value=offender.cost,
                        message=offender.message,
                        run_id=offender.run_id,
                        trace_id=offender.trace_id,
                    )
                )
            rule.last_value = max((o.cost for o in offenders), default=rule.last_value)
            rule.save(update_fields=["last_evaluated_at", "last_value"])
            return fired
        measured = alerts.measure(rule, now)
        if measured is None:  # too little data to judge: the rule keeps its state
            rule.last_value = None
            rule.save(update_fields=["last_evaluated_at", "last_value"])
            return fired
        rule.last_value = measured.value
        above = Decimal(str(measured.value)) > rule.threshold
        if above and not rule.firing:
            rule.firing = True
            fired.append(_fire(rule, now=now, value=measured.value, message=measured.message))
        elif not above and rule.firing:
            rule.firing = False
            audit_record(
                actor=SYSTEM_ACTOR,
                action="alert.clear",
                obj=rule,
                team=rule.team,
                metadata={"value": measured.value, "threshold": str(rule.threshold)},
            )
        rule.save(update_fields=["last_evaluated_at", "last_value", "firing"])
    return fired


def alerts_evaluate(now: datetime | None = None) -> int:
    """Evaluate every enabled rule (each in its own transaction); return how many events fired.

    A rule whose measure fails is logged and skipped, so one broken rule never silences the others.
    """
    now = now or timezone.now()
    count = 0
    for rule_id in AlertRule.objects.filter(enabled=True).order_by("pk").values_list("pk", flat=True):
        try:
            count += len(alert_rule_evaluate(rule_id=rule_id, now=now))
        except Exception:  # noqa: BLE001 - one failing rule must not stop the evaluation of the others
            log.exception("Alert rule %s could not be evaluated", rule_id)
    return count


# --- Delivery ------------------------------------------------------------------------------------


def event_url(event: AlertEvent) -> str:
    """Return the link to the event's page: absolute when FLEETDECK_BASE_URL is set, else a path."""
    path = reverse("observability:alert_event_detail", args=[event.pk])
    base = settings.FLEETDECK_BASE_URL
    return base + path


def webhook_payload(event: AlertEvent) -> dict:
    """Return the JSON a webhook receives for an event."""
    rule = event.rule
    return {
        "id": event.pk,
        "event": "alert.fired",
        "rule": {"id": rule.pk, "name": rule.name, "agent": rule.agent.name if rule.agent_id else None},
        "team": event.team.slug,
        "kind": rule.kind,
        "value": event.value,
        "threshold": event.threshold,
        "message": event.message,
        "run_id": event.run_id,
        "fired_at": event.fired_at.isoformat(),
        "url": event_url(event),
    }


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


def _post(url: str, body: bytes, headers: dict) -> None:
    """POST body to url through the SSRF guard, pinned to the checked address; raise DeliveryFailed."""
    where = webhook_origin(url)
    try:
        parsed, addresses = netguard.guard_url_addresses(url)
    except ToolError as exc:
        message = exc.message.replace(clip_text(url, 200), where)  # the full URL may hold a token
        raise DeliveryFailed(message, retryable=exc.retryable) from None
    connection = open_pinned_connection(parsed, addresses, timeout=DELIVERY_TIMEOUT_SECONDS)
    target = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(300).decode("utf-8", errors="replace").strip()
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryFailed(
            f"The TLS certificate of {parsed.hostname} could not be verified ({exc.verify_message}).", retryable=False
        ) from None
    except TimeoutError:
        raise DeliveryFailed(f"{where} did not answer within {DELIVERY_TIMEOUT_SECONDS} s.", retryable=True) from None
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise DeliveryFailed(f"The connection to {where} failed: {reason}.", retryable=True) from None
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return
    retryable = response.status >= 500 or response.status in DELIVERY_RETRY_STATUSES
    hint = " The receiver failed; it is tried again." if retryable else " Check the webhook URL of the rule."
    detail = f" Body: {clip_text(excerpt, 200)}" if excerpt else ""
    raise DeliveryFailed(
        f"{where} answered HTTP {response.status} {response.reason}.{hint}{detail}", retryable=retryable
    )


def alert_event_deliver(event_id: int) -> str:
    """Post the event to its rule's webhook once; return "delivered", "retry", "failed" or "none".

    Each attempt is counted on the event. A connection error, a timeout or an HTTP 5xx/429 answer
    may pass, so it returns "retry" (the task tries again with backoff) until MAX_DELIVERY_ATTEMPTS;
    anything else, or the last attempt, marks the delivery failed with the reason.
    """
    event = AlertEvent.objects.select_related("rule__agent", "team").filter(pk=event_id).first()
    if event is None or event.delivery_status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED):
        return event.delivery_status if event else "none"
    url = event.rule.webhook_url
    if not url:
        AlertEvent.objects.filter(pk=event.pk).update(delivery_status=DeliveryStatus.NONE)
        return "none"
    body = json.dumps(webhook_payload(event), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Fleetdeck-Event": "alert.fired",
        "X-Fleetdeck-Delivery": str(event.pk),
    }
    attempts = event.delivery_attempts + 1
    try:
        _post(url, body, headers)
    except DeliveryFailed as exc:
        again = exc.retryable and attempts < MAX_DELIVERY_ATTEMPTS
        status = DeliveryStatus.PENDING if again else DeliveryStatus.FAILED
        error = f"Attempt {attempts}: {exc.message}"
        if not again and exc.retryable:
            error += f" Gave up after {attempts} attempts."
        AlertEvent.objects.filter(pk=event.pk).update(
            delivery_status=status, delivery_attempts=attempts, delivery_error=clip_text(error, 480)
        )
        log.warning("Alert event %s not delivered: %s", event.pk, error)
        return "retry" if again else "failed"
    AlertEvent.objects.filter(pk=event.pk).update(
        delivery_status=DeliveryStatus.DELIVERED, delivery_attempts=attempts, delivery_error=""
    )
    return "delivered"


# --- Retention -----------------------------------------------------------------------------------


def _delete_in_chunks(model, team_ids, time_field: str, cutoff: datetime) -> int:
    """Delete rows older than cutoff, team by team (the (team, time) index finds them) and CLEANUP_CHUNK ids at a time."""
    deleted = 0
    for team_id in team_ids:
        old = model.objects.filter(team_id=team_id, **{f"{time_field}__lt": cutoff})
        while True:
            ids = list(old.order_by().values_list("pk", flat=True)[:CLEANUP_CHUNK])
            if not ids:
                break
            with transaction.atomic():
                deleted += model.objects.filter(pk__in=ids).delete()[0]
    return deleted


def spans_cleanup(now: datetime | None = None) -> dict[str, int]:
    """Delete spans older than FLEETDECK_SPAN_RETENTION_DAYS and rollups older than FLEETDECK_ROLLUP_RETENTION_DAYS.

    Each statement deletes at most CLEANUP_CHUNK rows, so a large backlog never holds locks for
    long. Rollups outlive spans on purpose: dashboards of past months stay, traces do not.
    Return the rows deleted per table.
    """
    from apps.accounts.models import Team

    now = now or timezone.now()
    span_cutoff = now - timedelta(days=settings.FLEETDECK_SPAN_RETENTION_DAYS)
    rollup_cutoff = now - timedelta(days=settings.FLEETDECK_ROLLUP_RETENTION_DAYS)
    team_ids = list(Team.objects.order_by("pk").values_list("pk", flat=True))
    return {
        "spans": _delete_in_chunks(Span, team_ids, "start_time", span_cutoff),
        "rollups": _delete_in_chunks(SpanRollup, team_ids, "hour", rollup_cutoff),
        "latency": _delete_in_chunks(SpanLatency, team_ids, "hour", rollup_cutoff),
    }
