"""Make and recognise API tokens. Only the SHA-256 of a token is ever stored."""

import hashlib
import secrets

TOKEN_PREFIX = "fdk_"


def token_generate() -> tuple[str, str, str]:
    """Return (token, prefix, hash) for a new random token."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token[: len(TOKEN_PREFIX) + 8], token_hash(token)


def token_hash(token: str) -> str:
    """Return the stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()
