"""Write audit events: the one function every service calls inside its own transaction."""

from __future__ import annotations

import json
from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from apps.core import context

from .models import GENESIS_HASH, ActorType, AuditChainHead, AuditEvent, Outcome


def _jsonable(value):
    """Return value as plain JSON types, exactly as it will be stored and hashed."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def describe_actor(actor) -> tuple[str, str, str]:
    """Return (type, id, label) for a user, a user acting through an API token, or the system."""
    if actor is None:
        return ActorType.SYSTEM, "", "system"
    if isinstance(actor, str):
        kind, _, ident = actor.partition(":")
        if kind in ActorType.values:
            return kind, ident[:64], actor[:200]
        return ActorType.SYSTEM, "", actor[:200]
    if not getattr(actor, "is_authenticated", False):
        return ActorType.ANONYMOUS, "", "anonymous"
    token = getattr(actor, "_fleetdeck_token", None)
    if token is not None:
        return ActorType.TOKEN, str(token.pk), f"{actor.username} via token {token.prefix}"
    return ActorType.USER, str(actor.pk), actor.username


def audit_record(
    *,
    actor,
    action: str,
    obj=None,
    team=None,
    before: dict | None = None,
    after: dict | None = None,
    outcome: str = Outcome.SUCCESS,
    metadata: dict | None = None,
) -> AuditEvent:
    """Append one event to the chain; call it inside the transaction of the change it records."""
    actor_type, actor_id, actor_label = describe_actor(actor)
    ctx = context.current()
    if team is None and obj is not None:
        team = getattr(obj, "team", None)
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(
            id=1, defaults={"seq": 0, "hash": GENESIS_HASH}
        )
        event = AuditEvent(
            seq=head.seq + 1,
            created_at=timezone.now(),
            actor_type=actor_type,
            actor_id=actor_id,
            actor_label=actor_label,
            action=action,
            outcome=outcome,
            object_type=obj._meta.label_lower if obj is not None and hasattr(obj, "_meta") else "",
            object_id=str(obj.pk) if obj is not None and getattr(obj, "pk", None) is not None else "",
            object_repr=str(obj)[:200] if obj is not None else "",
            team_id=team.pk if team is not None else None,
            team_slug=team.slug if team is not None else "",
            before=_jsonable(before),
            after=_jsonable(after),
            metadata=_jsonable(metadata or {}),
            request_id=ctx.request_id,
            ip=ctx.ip,
            prev_hash=head.hash,
        )
        event.hash = event.compute_hash()
        event.save()
        head.seq = event.seq
        head.hash = event.hash
        head.save(update_fields=["seq", "hash"])
    return event


def audit_denial(*, actor, perm: str, team=None, obj=None, path: str = "") -> AuditEvent:
    """Record a refused action (outside the refused change's transaction, which rolled back)."""
    return audit_record(
        actor=actor,
        action="permission.denied",
        obj=obj,
        team=team if team is not None and not isinstance(team, int) else None,
        outcome=Outcome.DENIED,
        metadata={"permission": perm, "path": path},
    )


def snapshot(obj, fields: list[str]) -> dict:
    """Return the named fields of obj as a dict for an event's before/after, decimals as stored."""
    result = {}
    for name in fields:
        value = getattr(obj, name)
        field = obj._meta.get_field(name)
        if isinstance(value, Decimal) and getattr(field, "decimal_places", None) is not None:
            value = f"{value:.{field.decimal_places}f}"
        result[name] = value
    return result
