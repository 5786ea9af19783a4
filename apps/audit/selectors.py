"""Reads of the audit log: for platform admins and security auditors only."""

from __future__ import annotations

from datetime import datetime, time

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.permissions import require

from .models import AuditEvent

FILTERS = ("action", "actor", "team", "outcome", "object_type", "since", "until", "q")


def audit_event_list(*, user, filters: dict | None = None) -> QuerySet[AuditEvent]:
    """Return audit events, newest first, narrowed by the given filters; refuse other readers."""
    require(user, "audit.view")
    qs = AuditEvent.objects.all().order_by("-seq")
    f = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    if "action" in f:
        qs = qs.filter(action__startswith=f["action"])
    if "actor" in f:
        qs = qs.filter(actor_label__icontains=f["actor"])
    if "team" in f:
        qs = qs.filter(team_slug=f["team"])
    if "outcome" in f:
        qs = qs.filter(outcome=f["outcome"])
    if "object_type" in f:
        qs = qs.filter(object_type=f["object_type"])
    if "since" in f:
        since = f["since"]
        qs = qs.filter(
            created_at__gte=since
            if isinstance(since, datetime)
            else timezone.make_aware(datetime.combine(since, time.min))
        )
    if "until" in f:
        until = f["until"]
        qs = qs.filter(
            created_at__lte=until
            if isinstance(until, datetime)
            else timezone.make_aware(datetime.combine(until, time.max))
        )
    if "q" in f:
        text = f["q"]
        qs = qs.filter(
            Q(object_repr__icontains=text)
            | Q(action__icontains=text)
            | Q(actor_label__icontains=text)
            | Q(request_id=text)
        )
    return qs
