"""Keep secrets out of the span store: redact secret-looking attribute keys and secret-shaped values.

Applied by the single span-writing path to every span, internal or ingested (DESIGN.md
invariant 7), together with size caps so one chatty exporter cannot bloat the store.
"""

from __future__ import annotations

import functools
import re

REDACTED = "[redacted]"
MAX_ATTRIBUTES = 128
MAX_VALUE_CHARS = 2048
MAX_EVENTS = 32

_SECRET_WORDS = {
    "authorization",
    "password",
    "passwd",
    "pwd",
    "secret",
    "secrets",
    "token",
    "apikey",
    "cookie",
    "credential",
    "credentials",
    "signature",
    "bearer",
}
_SECRET_PAIRS = {("api", "key"), ("private", "key"), ("access", "key"), ("client", "secret"), ("set", "cookie")}
_SPLIT = re.compile(r"[._\-\s]+")
_SECRET_VALUE = re.compile(
    r"(?:fdk_[A-Za-z0-9_\-]{16,}"  # Fleetdeck API tokens
    r"|sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}"  # OpenAI / Anthropic keys
    r"|AKIA[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"  # Slack tokens
    r"|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"  # JWTs
    r"|(?i:bearer|basic)\s+[A-Za-z0-9._~+/\-]{12,}=*)"
)


@functools.lru_cache(maxsize=8192)  # attribute names repeat on every span; ingest asks thousands of times a second
def key_is_secret(key: str) -> bool:
    """Return whether an attribute's name says its value is a credential."""
    words = [w for w in _SPLIT.split(key.lower()) if w]
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:], strict=False))


def redact_text(text: str) -> str:
    """Return text with secret-shaped substrings replaced and capped in length."""
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "…"
    return _SECRET_VALUE.sub(REDACTED, text)


def _value(value):
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in list(value)[:MAX_ATTRIBUTES]]
    if isinstance(value, dict):
        return redact_attributes(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def redact_attributes(attributes: dict) -> dict:
    """Return a capped copy of attributes with credentials removed."""
    clean = {}
    for key, value in list(attributes.items())[:MAX_ATTRIBUTES]:
        key = str(key)[:200]
        clean[key] = REDACTED if key_is_secret(key) and value not in (None, "") else _value(value)
    return clean


def redact_events(events: list[dict]) -> list[dict]:
    """Return at most MAX_EVENTS events, each with its attributes redacted."""
    return [
        {
            "name": redact_text(str(e.get("name", "")))[:200],
            "time": e.get("time"),
            "attributes": redact_attributes(e.get("attributes") or {}),
        }
        for e in events[:MAX_EVENTS]
    ]
