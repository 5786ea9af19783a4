"""Reads of the model catalog: organisation-wide, so every signed-in user sees all of it.

An API token still needs its `read` scope (checked by the API's default permission class).
"""

from __future__ import annotations

from django.db.models import Count, QuerySet
from django.http import Http404

from apps.core.exceptions import ServiceError

from .models import Model, ModelStatus, Provider


def _signed_in(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def provider_list(*, user) -> QuerySet[Provider]:
    """Return every provider, with its API key secret and number of models, for a signed-in user."""
    if not _signed_in(user):
        return Provider.objects.none()
    return Provider.objects.select_related("api_key_secret").annotate(model_count=Count("models")).order_by("name")


def provider_get(*, user, name: str) -> Provider:
    """Return the provider named name, else raise Http404."""
    try:
        return provider_list(user=user).get(name=name)
    except Provider.DoesNotExist:
        raise Http404("No such provider.") from None


def model_list(*, user, status: str | None = None, provider: str | None = None) -> QuerySet[Model]:
    """Return the catalog's models, narrowed by status and provider name when given."""
    if not _signed_in(user):
        return Model.objects.none()
    qs = Model.objects.select_related("provider").order_by("provider__name", "name")
    if status:
        if status not in ModelStatus.values:
            raise ServiceError(
                f"Unknown status '{status}': use one of {', '.join(ModelStatus.values)}.", field="status"
            )
        qs = qs.filter(status=status)
    if provider:
        qs = qs.filter(provider__name=provider)
    return qs


def model_get(*, user, pk: int) -> Model:
    """Return the model with this id, else raise Http404."""
    try:
        return model_list(user=user).get(pk=pk)
    except Model.DoesNotExist:
        raise Http404("No such model.") from None


def _approved_refs(provider: Provider | None = None, limit: int = 8) -> str:
    qs = Model.objects.filter(status=ModelStatus.APPROVED, provider__enabled=True).select_related("provider")
    if provider is not None:
        qs = qs.filter(provider=provider)
    refs = [m.ref for m in qs.order_by("provider__name", "name")[:limit]]
    return ", ".join(refs) if refs else "none yet: ask a platform admin to approve one"


def model_resolve(*, ref: str, field: str = "model") -> Model:
    """Return the catalog model a spec names as `<provider>/<model>`; raise ServiceError naming field.

    The model id may itself contain slashes (e.g. `vllm/meta-llama/Llama-3-8B`): the provider is
    everything before the first one.
    """
    text = (ref or "").strip() if isinstance(ref, str) else ""
    provider_name, _, model_name = text.partition("/")
    if not provider_name or not model_name:
        raise ServiceError(
            f"'{ref}' is not a model reference: write '<provider>/<model>', e.g. one of {_approved_refs()}.",
            field=field,
        )
    provider = Provider.objects.filter(name=provider_name).first()
    if provider is None:
        known = ", ".join(Provider.objects.order_by("name").values_list("name", flat=True)) or "none yet"
        raise ServiceError(
            f"There is no provider '{provider_name}' in the model catalog (providers: {known}).", field=field
        )
    model = Model.objects.select_related("provider").filter(provider=provider, name=model_name).first()
    if model is None:
        raise ServiceError(
            f"Provider '{provider_name}' has no model '{model_name}' in the catalog: "
            f"pick an approved one ({_approved_refs(provider)}).",
            field=field,
        )
    return model


def model_check_selectable(*, model: Model, field: str = "model") -> None:
    """Raise ServiceError unless the model may be chosen for a new agent version.

    Blocked models are refused. Deprecated models are refused too: a deprecation says "move off
    this model", so new versions must pick an approved one, while versions already published keep
    the model they were published with. A disabled provider's models are refused as well.
    """
    if model.status == ModelStatus.BLOCKED:
        raise ServiceError(
            f"Model {model.ref} is blocked: pick an approved model ({_approved_refs()}).", field=field, code="blocked"
        )
    if model.status == ModelStatus.DEPRECATED:
        raise ServiceError(
            f"Model {model.ref} is deprecated and cannot be used for new versions: "
            f"pick an approved model ({_approved_refs()}).",
            field=field,
            code="deprecated",
        )
    if not model.provider.enabled:
        raise ServiceError(
            f"Provider {model.provider.name} is disabled, so {model.ref} cannot be used: "
            f"pick an approved model ({_approved_refs()}).",
            field=field,
            code="provider_disabled",
        )
