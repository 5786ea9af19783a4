"""Model providers: model_complete sends one request to a catalog model, whatever its provider's kind.

The provider modules and the governance app are imported when first needed: this package is
imported while Django loads its models (for base.py), and the SDKs are slow to import.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from .base import ModelRequest, ModelResponse, ProviderError

# An API key is read (and the read audited) at most once a minute per provider and process, not
# once per model call; a rotated or revoked key therefore takes up to this long to take effect.
KEY_CACHE_SECONDS = 60.0
# Sent to servers that need no key (vLLM, Ollama, llama.cpp): the SDKs refuse an empty one.
NO_KEY = "unused"
MIN_TIMEOUT_S = 0.1

_keys: dict[int, tuple[int, float, str]] = {}  # provider pk -> (secret pk, expires at (monotonic), plaintext)
_keys_lock = threading.Lock()


def provider_api_key(provider) -> str:
    """Return the provider's API key (an audited read of its secret, cached briefly), or NO_KEY if it has none."""
    secret_id = provider.api_key_secret_id
    if secret_id is None:
        return NO_KEY
    now = time.monotonic()
    with _keys_lock:
        cached = _keys.get(provider.pk)
    if cached is not None and cached[0] == secret_id and cached[1] > now:
        return cached[2]
    from apps.core.exceptions import ServiceError
    from apps.governance.models import GranteeType
    from apps.governance.services import secret_read_for_use

    try:
        value = secret_read_for_use(
            secret=provider.api_key_secret,
            grantee_type=GranteeType.PROVIDER,
            grantee_id=provider.pk,
            purpose="model call",
        )
    except ServiceError as exc:  # not granted, or not decryptable: the message names the secret, never its value
        raise ProviderError(f"Provider {provider.name} cannot read its API key: {exc.message}") from None
    with _keys_lock:
        _keys[provider.pk] = (secret_id, now + KEY_CACHE_SECONDS, value)
    return value


def provider_caches_clear() -> None:
    """Forget cached API keys and SDK clients (tests, or at once after a key was revoked)."""
    with _keys_lock:
        _keys.clear()
    from . import anthropic, openai_compat

    openai_compat.clients_clear()
    anthropic.clients_clear()


def model_complete(*, model, request: ModelRequest) -> ModelResponse:
    """Send request to the catalog model (an apps.catalog.models.Model) and return its answer.

    The provider's settings apply: its base URL, API key secret, max_retries, and timeout_seconds
    per attempt (shortened to request.timeout_s when that is smaller, e.g. the run's time left).
    request.model is set to the catalog model's name. Raise ProviderError when the call fails;
    its retryable flag says whether a later call may succeed.
    """
    provider = model.provider
    if not provider.enabled:
        raise ProviderError(
            f"Provider {provider.name} is disabled in the model catalog: ask a platform admin to enable it, "
            f"or move the agent to a model of another provider."
        )
    if model.status == "blocked":
        raise ProviderError(f"Model {model.ref} is blocked in the model catalog: move the agent to an approved model.")
    if request.model != model.name:
        request = dataclasses.replace(request, model=model.name)
    kind = provider.kind
    if kind == "simulated":
        from . import simulated

        return simulated.complete(request=request)
    timeout_s = float(provider.timeout_seconds)
    if request.timeout_s:
        timeout_s = min(timeout_s, request.timeout_s)
    timeout_s = max(timeout_s, MIN_TIMEOUT_S)
    settings = {
        "base_url": provider.base_url,
        "api_key": provider_api_key(provider),
        "timeout_s": timeout_s,
        "max_retries": provider.max_retries,
        "request": request,
    }
    if kind == "openai_compatible":
        from . import openai_compat

        return openai_compat.chat_complete(**settings)
    if kind == "anthropic":
        from . import anthropic

        return anthropic.messages_complete(**settings)
    raise ProviderError(
        f"Provider {provider.name} has kind '{kind}', which this runtime cannot call: pick openai_compatible, "
        "anthropic or simulated in the model catalog."
    )
