"""Writes for the model catalog (platform admins only): check, change and audit in one transaction.

A provider's API key is an organisation secret: choosing it grants the secret to the provider,
and replacing it takes the old grant back, in the same transaction. A provider's name and a
model's provider and name are how agent specs refer to them (`<provider>/<model>`), so they do
not change after creation: retire a model by deprecating or blocking it instead.
"""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from apps.accounts.permissions import require
from apps.audit.services import audit_record, snapshot
from apps.core.exceptions import ServiceError
from apps.core.validation import full_clean_or_error

from .models import Model, ModelPrice, ModelStatus, Provider, ProviderKind

PROVIDER_FIELDS = ["name", "display_name", "kind", "base_url", "timeout_seconds", "max_retries", "enabled"]
PROVIDER_CHANGEABLE = {
    "display_name",
    "kind",
    "base_url",
    "api_key_secret",
    "timeout_seconds",
    "max_retries",
    "enabled",
}
MODEL_FIELDS = [
    "name",
    "display_name",
    "status",
    "input_price_per_mtok",
    "output_price_per_mtok",
    "cached_input_price_per_mtok",
    "context_window",
    "max_output_tokens",
    "supports_tools",
    "notes",
]
MODEL_CHANGEABLE = set(MODEL_FIELDS) - {"name"}
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}$")
MAX_TIMEOUT_SECONDS = 3600
MAX_RETRIES = 10


def _provider_snapshot(provider: Provider) -> dict:
    data = snapshot(provider, PROVIDER_FIELDS)
    data["api_key_secret"] = provider.api_key_secret.name if provider.api_key_secret_id else None
    return data


def _check_base_url(url: str) -> None:
    """Accept http(s) URLs with a host, including in-cluster names like http://vllm:8000/v1."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname or " " in url:
        raise ServiceError(
            "Enter the endpoint as an http(s) URL, e.g. https://api.openai.com/v1 or http://vllm:8000/v1.",
            field="base_url",
        )


def _check_provider(provider: Provider) -> None:
    _check_base_url(provider.base_url)
    full_clean_or_error(provider, exclude=["base_url"], validate_unique=False)
    if provider.kind == ProviderKind.OPENAI_COMPATIBLE and not provider.base_url:
        raise ServiceError(
            "An OpenAI-compatible provider needs its base URL, e.g. https://api.openai.com/v1.", field="base_url"
        )
    if provider.kind == ProviderKind.SIMULATED:
        if provider.base_url:
            raise ServiceError("The simulated provider runs built in: leave the base URL empty.", field="base_url")
        if provider.api_key_secret_id:
            raise ServiceError("The simulated provider needs no API key: leave the key empty.", field="api_key_secret")
    secret = provider.api_key_secret
    if secret is not None and secret.team_id is not None:
        raise ServiceError(
            f"Secret {secret.name} belongs to team {secret.team.slug}: a provider's API key must be an organisation "
            "secret (create it under Secrets with the organisation scope).",
            field="api_key_secret",
        )
    if provider.timeout_seconds < 1 or provider.timeout_seconds > MAX_TIMEOUT_SECONDS:
        raise ServiceError(f"Use a timeout between 1 and {MAX_TIMEOUT_SECONDS} seconds.", field="timeout_seconds")
    if provider.max_retries > MAX_RETRIES:
        raise ServiceError(f"Use at most {MAX_RETRIES} retries.", field="max_retries")


def _sync_key_grant(*, actor, provider: Provider, old_secret) -> None:
    """Grant the provider its key secret and take the grant of a replaced key back (inside the caller's transaction)."""
    from apps.governance.models import GranteeType, SecretGrant
    from apps.governance.services import secret_grant, secret_revoke_grant

    new_secret = provider.api_key_secret
    if (
        new_secret is not None
        and not SecretGrant.objects.filter(
            secret=new_secret, grantee_type=GranteeType.PROVIDER, grantee_id=provider.pk
        ).exists()
    ):
        secret_grant(actor=actor, secret=new_secret, grantee_type=GranteeType.PROVIDER, grantee=provider)
    if old_secret is not None and old_secret != new_secret:
        old_grant = SecretGrant.objects.filter(
            secret=old_secret, grantee_type=GranteeType.PROVIDER, grantee_id=provider.pk
        ).first()
        if old_grant is not None:
            secret_revoke_grant(actor=actor, grant=old_grant)


def provider_create(
    *,
    actor,
    name: str,
    kind: str,
    display_name: str = "",
    base_url: str = "",
    api_key_secret=None,
    timeout_seconds: int = 60,
    max_retries: int = 2,
    enabled: bool = True,
) -> Provider:
    """Add a provider to the catalog; its API key secret, if any, is granted to it."""
    require(actor, "catalog.manage")
    name = (name or "").strip()
    provider = Provider(
        name=name,
        display_name=(display_name or "").strip() or name,
        kind=kind,
        base_url=(base_url or "").strip(),
        api_key_secret=api_key_secret,
        timeout_seconds=timeout_seconds,
        max_retries=max_retries,
        enabled=enabled,
    )
    _check_provider(provider)
    if Provider.objects.filter(name=name).exists():
        raise ServiceError(f"A provider named '{name}' already exists: pick another name or edit it.", field="name")
    with transaction.atomic():
        provider.save()
        _sync_key_grant(actor=actor, provider=provider, old_secret=None)
        audit_record(actor=actor, action="provider.create", obj=provider, after=_provider_snapshot(provider))
    return provider


def provider_update(*, actor, provider: Provider, **changes) -> Provider:
    """Change a provider's display name, kind, endpoint, API key secret, timeout, retries or enabled flag."""
    require(actor, "catalog.manage")
    unknown = set(changes) - PROVIDER_CHANGEABLE
    if unknown:
        field = sorted(unknown)[0]
        raise ServiceError(
            f"'{field}' cannot be changed: a provider's name is how specs refer to it. "
            "Create another provider instead.",
            field=field,
        )
    before = _provider_snapshot(provider)
    old_secret = provider.api_key_secret
    for key, value in changes.items():
        setattr(provider, key, value.strip() if isinstance(value, str) else value)
    if "display_name" in changes and not provider.display_name:
        provider.display_name = provider.name
    try:
        _check_provider(provider)
    except ServiceError:
        provider.refresh_from_db()
        raise
    with transaction.atomic():
        provider.save()
        _sync_key_grant(actor=actor, provider=provider, old_secret=old_secret)
        audit_record(
            actor=actor, action="provider.update", obj=provider, before=before, after=_provider_snapshot(provider)
        )
    return provider


def _check_model(model: Model) -> None:
    if not MODEL_NAME_RE.match(model.name or ""):
        raise ServiceError(
            "Use the provider's model id, e.g. 'gpt-4o-mini': letters, digits and . _ : / @ + -, no spaces, "
            "at most 100 characters.",
            field="name",
        )
    full_clean_or_error(model, validate_unique=False)
    if model.max_output_tokens > model.context_window:
        raise ServiceError(
            f"The maximum output ({model.max_output_tokens} tokens) cannot exceed the context window "
            f"({model.context_window} tokens).",
            field="max_output_tokens",
        )
    if model.context_window < 1:
        raise ServiceError("The context window must be at least 1 token.", field="context_window")


def model_create(
    *,
    actor,
    provider: Provider,
    name: str,
    display_name: str = "",
    status: str = ModelStatus.APPROVED,
    input_price_per_mtok: Decimal | int | str = 0,
    output_price_per_mtok: Decimal | int | str = 0,
    cached_input_price_per_mtok: Decimal | int | str = 0,
    context_window: int = 8192,
    max_output_tokens: int = 4096,
    supports_tools: bool = True,
    notes: str = "",
) -> Model:
    """Add a model of a provider to the catalog, with its status and prices per million tokens (USD)."""
    require(actor, "catalog.manage")
    name = (name or "").strip()
    now = timezone.now()
    model = Model(
        provider=provider,
        name=name,
        display_name=(display_name or "").strip(),
        status=status,
        input_price_per_mtok=input_price_per_mtok,
        output_price_per_mtok=output_price_per_mtok,
        cached_input_price_per_mtok=cached_input_price_per_mtok,
        context_window=context_window,
        max_output_tokens=max_output_tokens,
        supports_tools=supports_tools,
        notes=(notes or "").strip(),
        created_at=now,
        updated_at=now,
    )
    _check_model(model)
    if Model.objects.filter(provider=provider, name=name).exists():
        raise ServiceError(
            f"Provider {provider.name} already has a model '{name}': edit it instead.", field="name", code="duplicate"
        )
    with transaction.atomic():
        model.save()
        model.refresh_from_db()  # decimals as stored, for the audit snapshot
        audit_record(
            actor=actor,
            action="model.create",
            obj=model,
            after={"provider": provider.name, **snapshot(model, MODEL_FIELDS)},
        )
    return model


def model_update(*, actor, model: Model, **changes) -> Model:
    """Change a model's status, prices, limits or notes (deprecate or block it to retire it)."""
    require(actor, "catalog.manage")
    unknown = set(changes) - MODEL_CHANGEABLE
    if unknown:
        field = sorted(unknown)[0]
        raise ServiceError(
            f"'{field}' cannot be changed: a model's provider and name are how specs refer to it. "
            "Add a new model and deprecate this one instead.",
            field=field,
        )
    before = snapshot(model, MODEL_FIELDS)
    for key, value in changes.items():
        setattr(model, key, value.strip() if isinstance(value, str) and key in {"display_name", "notes"} else value)
    try:
        _check_model(model)
    except ServiceError:
        model.refresh_from_db()
        raise
    with transaction.atomic():
        model.updated_at = timezone.now()
        _record_price_change(model, before)
        model.save()
        model.refresh_from_db()
        audit_record(actor=actor, action="model.update", obj=model, before=before, after=snapshot(model, MODEL_FIELDS))
    return model


PRICE_FIELDS = ("input_price_per_mtok", "output_price_per_mtok", "cached_input_price_per_mtok")


def _record_price_change(model: Model, before: dict) -> None:
    """Keep the prices a change replaces, so calls made before it are still priced as they were."""
    if all(Decimal(str(before[f])) == Decimal(str(getattr(model, f))) for f in PRICE_FIELDS):
        return
    last = ModelPrice.objects.filter(model=model).order_by("-effective_until").first()
    ModelPrice.objects.create(
        model=model,
        **{f: Decimal(str(before[f])) for f in PRICE_FIELDS},
        effective_from=last.effective_until if last else model.created_at,
        effective_until=model.updated_at,
    )


# The defaults every installation starts with (prices in USD per million tokens, public list prices).
SEED_PROVIDERS = [
    {"name": "simulated", "display_name": "Simulated", "kind": ProviderKind.SIMULATED, "base_url": ""},
    {
        "name": "openai",
        "display_name": "OpenAI",
        "kind": ProviderKind.OPENAI_COMPATIBLE,
        "base_url": "https://api.openai.com/v1",
    },
    {"name": "anthropic", "display_name": "Anthropic", "kind": ProviderKind.ANTHROPIC, "base_url": ""},
]
_SIM_NOTE = "Simulated: the built-in deterministic model (no network, no key). Prices are illustrative."
SEED_MODELS = [
    ("simulated", "sim-small", "Simulated small", "approved", "0.50", "1.50", "0.25", 32768, 4096, _SIM_NOTE),
    ("simulated", "sim-large", "Simulated large", "approved", "3", "15", "1.50", 200000, 8192, _SIM_NOTE),
    ("openai", "gpt-4o-mini", "GPT-4o mini", "approved", "0.15", "0.60", "0.075", 128000, 16384, ""),
    ("openai", "gpt-4o", "GPT-4o", "approved", "2.50", "10", "1.25", 128000, 16384, ""),
    (
        "openai",
        "gpt-3.5-turbo",
        "GPT-3.5 Turbo",
        "deprecated",
        "0.50",
        "1.50",
        "0",
        16385,
        4096,
        "Deprecated: move agents to gpt-4o-mini.",
    ),
    ("anthropic", "claude-3-5-sonnet", "Claude 3.5 Sonnet", "approved", "3", "15", "0.30", 200000, 8192, ""),
    (
        "anthropic",
        "claude-2",
        "Claude 2",
        "blocked",
        "8",
        "24",
        "0",
        100000,
        4096,
        "Blocked: retired by the provider; use claude-3-5-sonnet.",
    ),
]


def catalog_seed_defaults() -> dict:
    """Create the default providers and models that are missing (idempotent); return what was created.

    Existing rows are left exactly as they are, so an admin's changes survive a re-run. Acts as
    the system (no permission check): it is called by the seed commands, not by a person.
    """
    actor = "system:seed_catalog"
    created: dict[str, list[str]] = {"providers": [], "models": []}
    with transaction.atomic():
        providers = {}
        for spec in SEED_PROVIDERS:
            provider = Provider.objects.filter(name=spec["name"]).first()
            if provider is None:
                provider = Provider.objects.create(**spec)
                audit_record(actor=actor, action="provider.create", obj=provider, after=_provider_snapshot(provider))
                created["providers"].append(provider.name)
            providers[spec["name"]] = provider
        for (
            provider_name,
            name,
            display,
            status,
            price_in,
            price_out,
            price_cached,
            window,
            max_out,
            notes,
        ) in SEED_MODELS:
            provider = providers[provider_name]
            if Model.objects.filter(provider=provider, name=name).exists():
                continue
            model = Model.objects.create(
                provider=provider,
                name=name,
                display_name=display,
                status=status,
                input_price_per_mtok=Decimal(price_in),
                output_price_per_mtok=Decimal(price_out),
                cached_input_price_per_mtok=Decimal(price_cached),
                context_window=window,
                max_output_tokens=max_out,
                supports_tools=True,
                notes=notes,
            )
            model.refresh_from_db()
            audit_record(
                actor=actor,
                action="model.create",
                obj=model,
                after={"provider": provider.name, **snapshot(model, MODEL_FIELDS)},
            )
            created["models"].append(model.ref)
    return created
