"""Encrypt secret values at rest with Fernet keys from FLEETDECK_SECRET_KEYS (newest first).

`settings.FLEETDECK_SECRET_KEYS` is a list of Fernet keys (from the comma-separated environment
variable). The first key encrypts; every key decrypts, so adding a new key in front and running
`manage.py rotate_secret_key` re-encrypts every secret without downtime, after which the old key
can be removed.

When the list is empty outside production, a development key is derived from SECRET_KEY (HKDF-SHA256)
so the embedded default works with nothing to configure; secrets then depend on SECRET_KEY staying
the same. In production the variable is required: the first encryption or decryption raises
ImproperlyConfigured naming FLEETDECK_SECRET_KEYS (never at import, so unrelated commands still run).

Nothing here logs, and no error message carries a value, a ciphertext or a key.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

GENERATE_HINT = (
    'generate one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


class SecretDecryptError(Exception):
    """Raise when no configured key decrypts a stored value (the key it was written with is missing)."""


@sensitive_variables("secret_key")
def development_key() -> bytes:
    """Return the Fernet key derived from SECRET_KEY, used only when no key is configured outside production."""
    secret_key = settings.SECRET_KEY.encode()
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"fleetdeck", info=b"secret values, development").derive(
        secret_key
    )
    return base64.urlsafe_b64encode(derived)


def configured_keys() -> tuple[bytes, ...]:
    """Return the keys to use, newest first; raise ImproperlyConfigured when production has none."""
    keys = tuple(k.strip().encode() for k in getattr(settings, "FLEETDECK_SECRET_KEYS", []) or [] if k.strip())
    if keys:
        return keys
    if getattr(settings, "PRODUCTION", False):
        raise ImproperlyConfigured(
            "The environment variable FLEETDECK_SECRET_KEYS is required in production: it holds the Fernet keys "
            f"that encrypt secrets at rest (comma-separated, newest first); {GENERATE_HINT}."
        )
    return (development_key(),)


@lru_cache(maxsize=8)
def _multi_fernet(keys: tuple[bytes, ...]) -> MultiFernet:
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"FLEETDECK_SECRET_KEYS item {position} is not a Fernet key (32 url-safe base64-encoded bytes); "
                f"{GENERATE_HINT}."
            ) from None
    return MultiFernet(fernets)


def fernet() -> MultiFernet:
    """Return the MultiFernet for the configured keys (the first one encrypts)."""
    return _multi_fernet(configured_keys())


@sensitive_variables("value")
def encrypt(value: str) -> str:
    """Return the ciphertext of value under the newest key."""
    return fernet().encrypt(value.encode("utf-8")).decode("ascii")


@sensitive_variables("plain")
def decrypt(ciphertext: str) -> str:
    """Return the plain value; raise SecretDecryptError when no configured key opens it."""
    try:
        plain = fernet().decrypt(ciphertext.encode("ascii"))
    except (InvalidToken, ValueError):
        raise SecretDecryptError(
            "No key in FLEETDECK_SECRET_KEYS decrypts this secret: put back the key it was encrypted with."
        ) from None
    return plain.decode("utf-8")


def rotate(ciphertext: str) -> str:
    """Return the ciphertext re-encrypted under the newest key (the value itself never leaves Fernet)."""
    try:
        return fernet().rotate(ciphertext.encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError):
        raise SecretDecryptError(
            "No key in FLEETDECK_SECRET_KEYS decrypts this secret: put back the key it was encrypted with."
        ) from None


def generate_key() -> str:
    """Return a new random Fernet key, for an operator to put in front of FLEETDECK_SECRET_KEYS."""
    return Fernet.generate_key().decode("ascii")
