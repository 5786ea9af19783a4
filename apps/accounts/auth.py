"""Sign-in and sign-out events, and throttling of password guesses (read from the audit log)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.audit.models import AuditEvent, Outcome
from apps.audit.services import audit_record
from apps.core import context

LOGIN_FAILED = "auth.login_failed"


def login_throttled(*, username: str) -> bool:
    """Return whether password login is locked for this username or client address.

    Failed logins are audit events already, so the log is the counter: it is shared by every web
    process and survives restarts, with no cache to configure.
    """
    since = timezone.now() - timedelta(seconds=settings.FLEETDECK_LOGIN_WINDOW_SECONDS)
    ip = context.current().ip
    who = Q(metadata__username=username.lower()[:150])
    if ip:
        who |= Q(ip=ip)
    # Only password guesses count: failed SSO callbacks must not lock out the break-glass account.
    failures = (
        AuditEvent.objects.filter(action=LOGIN_FAILED, created_at__gte=since, metadata__method="password")
        .filter(who)
        .count()
    )
    return failures >= settings.FLEETDECK_LOGIN_MAX_FAILURES


def auth_login_succeeded(*, user, method: str) -> None:
    audit_record(actor=user, action="auth.login", obj=user, metadata={"method": method})


def auth_login_failed(*, username: str, method: str, reason: str) -> None:
    audit_record(
        actor=None if not username else f"anonymous:{username[:60]}",
        action=LOGIN_FAILED,
        outcome=Outcome.FAILURE,
        metadata={"method": method, "username": username.lower()[:150], "reason": reason},
    )


def auth_logout(*, user) -> None:
    if user is not None and user.is_authenticated:
        audit_record(actor=user, action="auth.logout", obj=user)
