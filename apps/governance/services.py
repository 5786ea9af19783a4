"""Writes for secrets: check permission once, change, and audit in one transaction.

A secret's value is write-only: it is encrypted on the way in (apps/governance/crypto.py) and is
decrypted in one place only, `secret_read_for_use`, for a grantee holding a grant. No audit event,
log line or error message carries the value.

Deleting a secret is refused while it is granted to anything: a running tool or agent would fail
on its next call. Revoke the grants first (the detail page lists them), then delete.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from apps.accounts.permissions import require
from apps.audit.models import Outcome
from apps.audit.services import audit_record
from apps.catalog.models import name_validator
from apps.core.exceptions import ServiceError

from . import crypto
from .models import GranteeType, Secret, SecretGrant
from .selectors import grantee_label, grantee_labels, grantee_model
from .selectors import secret_resolve as secret_resolve  # re-exported: spec validation calls it from here too

MAX_VALUE_BYTES = 64 * 1024
MAX_DESCRIPTION = 300


class SecretNotGranted(ServiceError):
    """Raise when something asks for a secret's value without a grant for it."""


def _describe(secret: Secret) -> dict:
    """Return what audit events record about a secret: its metadata, never its value."""
    return {
        "name": secret.name,
        "team": secret.team.slug if secret.team_id else None,
        "description": secret.description,
    }


def _check_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise ServiceError("Give the secret a name, e.g. 'crm-api-key'.", field="name")
    try:
        name_validator(name)
    except ValidationError:
        raise ServiceError(
            f"'{name[:80]}' is not a valid secret name: use 1 to 63 lowercase letters, digits, dots, dashes and "
            "underscores, starting with a letter or digit (e.g. 'crm-api-key').",
            field="name",
        ) from None
    return name


@sensitive_variables("value")
def _check_value(value) -> None:
    """Refuse an empty or oversized value; the message gives sizes, never the value."""
    if not isinstance(value, str) or not value.strip():
        raise ServiceError("The value is empty: paste the secret's value.", field="value")
    size = len(value.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise ServiceError(
            f"The value is {size:,} bytes: a secret holds at most {MAX_VALUE_BYTES:,} bytes (64 KiB).", field="value"
        )


def _check_description(description) -> str:
    description = (description or "").strip() if isinstance(description, str) else ""
    if len(description) > MAX_DESCRIPTION:
        raise ServiceError(
            f"The description is too long: use at most {MAX_DESCRIPTION} characters.", field="description"
        )
    return description


def _duplicate(team, name: str) -> ServiceError:
    where = f"team {team.slug}" if team is not None else "the organisation"
    return ServiceError(
        f"{where[0].upper()}{where[1:]} already has a secret named '{name}': pick another name, "
        "or set a new value on the existing one.",
        field="name",
    )


@sensitive_variables("value")
def secret_create(*, actor, team, name: str, value: str, description: str = "") -> Secret:
    """Create a secret in the team (team None: an organisation secret, platform admins only).

    The value is encrypted at once and never shown again.
    """
    require(actor, "secret.manage", team)
    name = _check_name(name)
    description = _check_description(description)
    _check_value(value)
    if Secret.objects.filter(team=team, name=name).exists():
        raise _duplicate(team, name)
    now = timezone.now()
    secret = Secret(
        team=team,
        name=name,
        description=description,
        ciphertext=crypto.encrypt(value),
        created_at=now,
        rotated_at=now,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    try:
        with transaction.atomic():
            secret.save()
            audit_record(actor=actor, action="secret.create", obj=secret, team=team, after=_describe(secret))
    except IntegrityError:
        raise _duplicate(team, name) from None
    return secret


def secret_update(*, actor, secret: Secret, description: str) -> Secret:
    """Change a secret's description (its name is how specs refer to it, so it stays)."""
    require(actor, "secret.manage", secret.team)
    description = _check_description(description)
    before = _describe(secret)
    with transaction.atomic():
        secret.description = description
        secret.save(update_fields=["description"])
        audit_record(
            actor=actor, action="secret.update", obj=secret, team=secret.team, before=before, after=_describe(secret)
        )
    return secret


@sensitive_variables("value")
def secret_set_value(*, actor, secret: Secret, value: str) -> Secret:
    """Replace a secret's value (rotate it at the source first); grants stay as they are."""
    require(actor, "secret.manage", secret.team)
    _check_value(value)
    before = {"rotated_at": secret.rotated_at}
    with transaction.atomic():
        secret.ciphertext = crypto.encrypt(value)
        secret.rotated_at = timezone.now()
        secret.save(update_fields=["ciphertext", "rotated_at"])
        audit_record(
            actor=actor,
            action="secret.set_value",
            obj=secret,
            team=secret.team,
            before=before,
            after={"rotated_at": secret.rotated_at},
        )
    return secret


def secret_delete(*, actor, secret: Secret) -> None:
    """Delete a secret that nothing is granted to any more."""
    require(actor, "secret.manage", secret.team)
    grants = list(secret.grants.all())
    if grants:
        labels = grantee_labels(grants)
        used_by = ", ".join(sorted(labels.values()))
        raise ServiceError(
            f"Secret {secret.name} is still granted to {used_by}: revoke those grants first, then delete it.",
            code="in_use",
        )
    team = secret.team
    with transaction.atomic():
        audit_record(actor=actor, action="secret.delete", obj=secret, team=team, before=_describe(secret))
        secret.delete()


def secret_grant(*, actor, secret: Secret, grantee_type: str, grantee) -> SecretGrant:
    """Allow one provider, tool or agent to use the secret.

    Team secrets go to the team's own tools and agents; a provider's API key must be an
    organisation secret.
    """
    require(actor, "secret.manage", secret.team)
    model = grantee_model(grantee_type)
    if not isinstance(grantee, model):
        raise ServiceError(f"The grantee is not a {grantee_type}: pick a {grantee_type}.", field="grantee_type")
    if grantee_type == GranteeType.PROVIDER and secret.team_id is not None:
        raise ServiceError(
            "A provider's API key must be an organisation secret: team secrets go to the team's tools and agents.",
            field="grantee_type",
        )
    if secret.team_id is not None and grantee.team_id != secret.team_id:
        raise ServiceError(
            f"{grantee_type.capitalize()} {grantee.name} belongs to another team: a team secret is granted only "
            "within its own team.",
            field="grantee_id",
        )
    if SecretGrant.objects.filter(secret=secret, grantee_type=grantee_type, grantee_id=grantee.pk).exists():
        raise ServiceError(f"Secret {secret.name} is already granted to this {grantee_type}.", field="grantee_id")
    grant = SecretGrant(
        secret=secret,
        grantee_type=grantee_type,
        grantee_id=grantee.pk,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    with transaction.atomic():
        grant.save()
        audit_record(
            actor=actor,
            action="secret.grant",
            obj=secret,
            team=secret.team,
            after={"grantee_type": grantee_type, "grantee_id": grantee.pk, "grantee": grantee_label(grant)},
        )
    return grant


def secret_revoke_grant(*, actor, grant: SecretGrant) -> None:
    """Take back a grant: the grantee can no longer read the secret."""
    secret = grant.secret
    require(actor, "secret.manage", secret.team)
    if grant.grantee_type == GranteeType.PROVIDER:
        provider = (
            grantee_model(GranteeType.PROVIDER).objects.filter(pk=grant.grantee_id, api_key_secret=secret).first()
        )
        if provider is not None:
            raise ServiceError(
                f"Provider {provider.name} uses this secret as its API key: pick another key on the provider first.",
                code="in_use",
            )
    detail = {"grantee_type": grant.grantee_type, "grantee_id": grant.grantee_id, "grantee": grantee_label(grant)}
    with transaction.atomic():
        audit_record(actor=actor, action="secret.revoke_grant", obj=secret, team=secret.team, before=detail)
        grant.delete()


def secret_read_for_use(*, secret: Secret, grantee_type: str, grantee_id: int, purpose: str, actor=None) -> str:
    """Return the decrypted value for a grantee that holds a grant; audit the read, never the value.

    The runtime and the gateway call this right before they use the value. Without a grant the
    refusal is audited and SecretNotGranted raised. The actor defaults to the grantee itself.
    """
    actor = actor if actor is not None else f"{grantee_type}:{grantee_id}"
    purpose = (purpose or "")[:200]
    detail = {"grantee_type": grantee_type, "grantee_id": grantee_id, "purpose": purpose}
    grant = SecretGrant.objects.filter(secret=secret, grantee_type=grantee_type, grantee_id=grantee_id).first()
    if grant is None:
        audit_record(
            actor=actor, action="secret.read", obj=secret, team=secret.team, outcome=Outcome.DENIED, metadata=detail
        )
        raise SecretNotGranted(
            f"Secret {secret.name} is not granted to this {grantee_type}: ask an owner of the secret to grant it.",
            field="secret",
            code="not_granted",
        )
    # The stored value, not the caller's copy: a long-lived worker may hold the secret from before a new value was set.
    ciphertext = Secret.objects.filter(pk=secret.pk).values_list("ciphertext", flat=True).first()
    try:
        plain = crypto.decrypt(ciphertext or "")
    except crypto.SecretDecryptError as exc:
        audit_record(
            actor=actor, action="secret.read", obj=secret, team=secret.team, outcome=Outcome.FAILURE, metadata=detail
        )
        raise ServiceError(
            f"Secret {secret.name} cannot be read. {exc}", field="secret", code="undecryptable"
        ) from None
    label = grantee_label(grant)
    now = timezone.now()
    with transaction.atomic():
        Secret.objects.filter(pk=secret.pk).update(last_used_at=now, last_used_by=label[:200])
        audit_record(
            actor=actor, action="secret.read", obj=secret, team=secret.team, metadata={**detail, "grantee": label}
        )
    secret.last_used_at, secret.last_used_by = now, label[:200]
    return plain


def secret_rotate_key(*, actor="system:rotate_secret_key") -> int:
    """Re-encrypt every secret under the newest key of FLEETDECK_SECRET_KEYS, all or nothing; return the count.

    Run after putting a new key in front of the list; afterwards the old keys may be removed.
    """
    with transaction.atomic():
        secrets = list(Secret.objects.select_for_update(of=("self",)).select_related("team").order_by("pk"))
        for secret in secrets:
            try:
                secret.ciphertext = crypto.rotate(secret.ciphertext)
            except crypto.SecretDecryptError as exc:
                raise ServiceError(f"Secret {secret} cannot be re-encrypted; nothing was changed. {exc}") from None
        Secret.objects.bulk_update(secrets, ["ciphertext"], batch_size=500)
        audit_record(
            actor=actor,
            action="secret.rotate_key",
            metadata={"count": len(secrets), "keys_configured": len(crypto.configured_keys())},
        )
    return len(secrets)
