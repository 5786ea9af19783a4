"""What every model provider shares: one request and one response shape, OpenAI-style messages.

messages are dicts: {"role": "system"|"user"|"assistant"|"tool", "content": str,
"tool_calls": [ToolCall...] on assistant messages, "tool_call_id": str on tool messages}.
A provider turns them into its wire format, calls the model with timeouts and retries on
retryable errors, and reads the token usage from the response.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit


class ProviderError(Exception):
    """A model call failed; retryable says whether trying again later might succeed."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status


@dataclass
class ToolSchema:
    name: str  # what the model calls it: letters, digits, _ and - only (providers refuse dots)
    description: str
    parameters: dict


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict


@dataclass
class ModelRequest:
    model: str  # the provider's model id, e.g. gpt-4o-mini
    messages: list[dict]
    tools: list[ToolSchema] = field(default_factory=list)
    max_tokens: int = 1024
    timeout_s: float = 60.0
    max_retries: int = 2
    # For the simulated provider only: the agent spec's `simulation` block and the run's input.
    simulation: dict | None = None
    run_input: object = None


@dataclass
class ModelResponse:
    text: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0  # all input tokens, cached ones included
    output_tokens: int = 0
    finish_reason: str = "stop"  # stop | tool_calls | length | content_filter (Anthropic's reasons mapped to these)
    model: str = ""
    simulated: bool = False
    cached_input_tokens: int = 0  # the part of input_tokens read from the provider's prompt cache


def tool_name_for_model(name: str) -> str:
    """Return the name a model sees for a registry tool: kb.search -> kb_search (providers refuse dots)."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64]


def as_tool_call(value) -> ToolCall:
    """Return a ToolCall from a ToolCall or its dict form ({"id", "name", "arguments"}) as stored in a run."""
    if isinstance(value, ToolCall):
        return value
    arguments = value.get("arguments")
    return ToolCall(id=str(value.get("id") or ""), name=str(value.get("name") or ""), arguments=arguments or {})


def content_text(content) -> str:
    """Return a message content as text: strings as they are, other JSON values as JSON, None as ""."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, default=str)


def server_label(base_url: str) -> str:
    """Return base_url without user, password, query or fragment, to name the server in messages."""
    try:
        parts = urlsplit(base_url)
    except ValueError:
        return "(an invalid URL)"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


_KEY_LIKE = re.compile(r"\b(sk|pk|rk|key)[-_][A-Za-z0-9*._-]{6,}")


def clean_server_detail(text, *, secret: str = "", limit: int = 300) -> str:
    """Return what a server said about an error, safe to show: no API key (even a masked one), one line, clipped."""
    text = " ".join(str(text or "").split())
    if secret and len(secret) >= 4:
        text = text.replace(secret, "[redacted]")
    text = _KEY_LIKE.sub("[redacted]", text)
    return text if len(text) <= limit else text[:limit] + "..."


def status_is_retryable(status: int) -> bool:
    """Return whether a call that got this HTTP status may succeed later (as the SDKs decide their retries)."""
    return status in (408, 409, 429) or status >= 500


_STATUS_HINTS = {
    400: "it refused the request: check the model name, max_tokens and the tool schemas.",
    401: "check the provider's API key secret.",
    403: "the API key may not use this model: check the key's permissions at the provider.",
    404: "check the provider's base URL and that the model '{model}' exists there.",
    408: "the server gave up waiting for the request; try again later.",
    413: "the request is too large: shorten the conversation or the tool results.",
    422: "it refused the request: check the model name, max_tokens and the tool schemas.",
    429: "the server is rate-limiting: lower the load or raise the provider's limits; later calls may succeed.",
}


def error_for_status(*, status: int, server: str, model: str, detail: str, attempts: int) -> ProviderError:
    """Return the ProviderError for an HTTP error answer, saying what to fix and whether a retry may help."""
    retryable = status_is_retryable(status)
    hint = _STATUS_HINTS.get(status)
    if hint is None:
        hint = "the server failed; later calls may succeed." if status >= 500 else "the server refused the request."
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    message = f"The model server at {server} answered {status}{tried}: {hint.format(model=model)}"
    if detail:
        message += f" The server said: {detail}"
    return ProviderError(message, retryable=retryable, status=status)


def _attempts(exc) -> int:
    # The SDKs send how many retries they had taken with every request; the failed request's is the last one.
    request = getattr(exc, "request", None)
    try:
        return int(request.headers.get("x-stainless-retry-count", "0")) + 1
    except (AttributeError, RuntimeError, ValueError):
        return 1


def error_from_sdk(exc, *, sdk, server: str, model: str, secret: str, timeout_s: float) -> ProviderError:
    """Return the ProviderError for an exception of the openai or anthropic SDK (the module given as sdk).

    Both SDKs have the same error classes; they already retried what may pass (408, 409, 429, 5xx,
    timeouts, connection errors), so a retryable error here means the retries ran out.
    """
    attempts = _attempts(exc)
    tried = f" (after {attempts} attempts)" if attempts > 1 else ""
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderError(
            f"The model server at {server} did not answer within {timeout_s:g} s{tried}: check that it is running "
            "and not overloaded, or raise the provider's timeout.",
            retryable=True,
        )
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__
        reason = clean_server_detail(f"{type(cause).__name__}: {cause}" if cause else "", secret=secret)
        return ProviderError(
            f"The model server at {server} cannot be reached{tried}"
            + (f" ({reason})" if reason else "")
            + ": check the provider's base URL and that the server is running.",
            retryable=True,
        )
    if isinstance(exc, sdk.APIStatusError):
        body = getattr(exc, "body", None)
        if isinstance(body, dict):
            detail = body.get("message") or body.get("error") or ""
        else:
            detail = body or ""
        detail = clean_server_detail(detail, secret=secret)
        return error_for_status(status=exc.status_code, server=server, model=model, detail=detail, attempts=attempts)
    if isinstance(exc, sdk.APIResponseValidationError):
        return ProviderError(
            f"The model server at {server} answered with something that is not a valid response: check that the "
            "provider's kind and base URL match the server.",
            status=getattr(exc, "status_code", None),
        )
    return ProviderError(
        f"The call to the model server at {server} failed: {clean_server_detail(str(exc), secret=secret)}"
    )
