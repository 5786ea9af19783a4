"""What every tool executor shares: the call context it receives and the error it raises.

An executor is a function `execute(*, spec, arguments, ctx) -> JSON-able value`, where spec is the
published ToolVersion's spec (config, sandbox, secrets, ...) and arguments were already validated
against the tool's parameters. It raises ToolError for anything the model and the operator should
see as a failed step; the message says what went wrong and how to fix it, and never holds a secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field


class ToolError(Exception):
    """A tool call failed; the message is shown on the step and fed back to the model as data."""

    def __init__(self, message: str, *, code: str = "tool_error", retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable


def _no_secrets(name: str) -> str:
    raise ToolError(f"Secret '{name}' is not available to this tool call.", code="secret_unavailable")


@dataclass
class ToolCallContext:
    """Where a tool call happens: the run, the step, and what the call may use."""

    team_id: int
    run_id: int | None = None
    step_index: int = 0
    agent_id: int | None = None
    tool_version_id: int | None = None
    # "<run id>:<step index>": sent with side-effecting calls so a retried call can be recognised.
    idempotency_key: str = ""
    # time.monotonic() by which the run must end; executors shorten their own timeouts to it.
    deadline: float | None = None
    # Return the plaintext of a secret granted to the tool (audited read); raise ToolError otherwise.
    secret: Callable[[str], str] = field(default=_no_secrets)
    extra: dict = field(default_factory=dict)


def clip_text(text: str, limit: int) -> str:
    """Return text cut to limit characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [{len(text) - limit} more characters cut]"


def json_size(value) -> int:
    """Return the size in bytes of value written as JSON."""
    return len(json.dumps(value, default=str).encode())
