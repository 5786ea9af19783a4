"""The built-in simulated model: deterministic, offline, scripted per agent (apps/catalog/simulation.py).

Which script entry answers = how many assistant messages follow the last user message (the
run's own model calls so far; earlier turns of a session do not count). The same request always
gets the same response, so a retried call that hit an `error` entry fails again.
"""

from __future__ import annotations

import json
import math
import re
import time

from apps.catalog.simulation import simulation_entry_check
from apps.core.exceptions import ServiceError
from apps.runtime.fencing import unfence

from .base import (
    ModelRequest,
    ModelResponse,
    ProviderError,
    ToolCall,
    as_tool_call,
    content_text,
    status_is_retryable,
    tool_name_for_model,
)

PLACEHOLDER = re.compile(r"\{(input|result)((?:\.[A-Za-z0-9_-]+)*)\}")
ECHO_LIMIT = 200
_MISSING = object()


def _tokens(chars: int) -> int:
    return math.ceil(chars / 4)


def _as_text(value) -> str:
    if value is _MISSING or value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _as_json(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _lookup(value, path: str):
    if not path:
        return value
    value = _as_json(value)
    for key in path.strip(".").split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return _MISSING
    return value


class _Context:
    """What placeholders refer to: the run input and the run's last tool result."""

    def __init__(self, *, run_input, result):
        self.run_input = run_input
        self.result = result

    def value(self, root: str, path: str, *, typed: bool):
        base = self.run_input if root == "input" else self.result
        if path:
            return _lookup(base, path)
        if base is None:
            return _MISSING
        # A whole {result} argument is the tool's JSON when it is JSON; {input} is the input as given.
        return _as_json(base) if typed and root == "result" else base

    def fill_text(self, text: str) -> str:
        return PLACEHOLDER.sub(lambda m: _as_text(self.value(m.group(1), m.group(2), typed=False)), text)

    def fill(self, value):
        if isinstance(value, str):
            whole = PLACEHOLDER.fullmatch(value)
            if whole:
                found = self.value(whole.group(1), whole.group(2), typed=True)
                return None if found is _MISSING else found
            return self.fill_text(value)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value


def _message_chars(message: dict) -> int:
    chars = len(content_text(message.get("content")))
    for call in message.get("tool_calls") or []:
        call = as_tool_call(call)
        chars += len(call.name) + len(json.dumps(call.arguments, ensure_ascii=False, default=str))
    return chars


def complete(*, request: ModelRequest) -> ModelResponse:
    """Return the scripted (or default) answer for the request; raise ProviderError for a scripted error."""
    messages = request.messages
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    run_messages = messages[last_user + 1 :]
    position = sum(1 for m in run_messages if m.get("role") == "assistant")
    call_number = sum(1 for m in messages if m.get("role") == "assistant") + 1
    run_input = request.run_input
    if run_input is None and last_user >= 0:
        run_input = unfence(messages[last_user].get("content"))  # the engine fences untrusted text
    result = unfence(next((m.get("content") for m in reversed(run_messages) if m.get("role") == "tool"), None))
    context = _Context(run_input=run_input, result=result)

    simulation = request.simulation or {}
    script = simulation.get("script") or []
    entry = None
    if position < len(script):
        try:
            entry = simulation_entry_check(script[position], position)
        except ServiceError as exc:
            raise ProviderError(
                f"The agent's simulation block is invalid: simulation.script: {exc.message} Fix it in the agent spec."
            ) from None
    if entry and entry.get("sleep_ms"):
        time.sleep(entry["sleep_ms"] / 1000)

    model = request.model or "simulated"
    input_tokens = _tokens(sum(_message_chars(m) for m in messages))
    if entry and "error" in entry:
        status = entry["error"]["status"]
        raise ProviderError(
            f"The simulated model answered {status} (scripted in the agent's simulation block): "
            f"{entry['error']['message']}",
            retryable=status_is_retryable(status),
            status=status,
        )
    if entry and "call" in entry:
        calls = [
            ToolCall(
                id=f"call_{call_number}_{i}",
                name=tool_name_for_model(item["tool"]),
                arguments=context.fill(item.get("arguments") or {}),
            )
            for i, item in enumerate(entry["call"], start=1)
        ]
        out_chars = sum(len(c.name) + len(json.dumps(c.arguments, ensure_ascii=False, default=str)) for c in calls)
        return ModelResponse(
            text=None,
            tool_calls=calls,
            input_tokens=input_tokens,
            output_tokens=max(1, _tokens(out_chars)),
            finish_reason="tool_calls",
            model=model,
            simulated=True,
        )
    if entry:
        text = context.fill_text(entry["answer"])
    elif isinstance(simulation.get("default_answer"), str):
        text = context.fill_text(simulation["default_answer"])
    else:
        echo = " ".join(_as_text(run_input).split())
        if len(echo) > ECHO_LIMIT:
            echo = echo[:ECHO_LIMIT] + "..."
        text = f"[simulated] I received: {echo}"
    return ModelResponse(
        text=text,
        input_tokens=input_tokens,
        output_tokens=max(1, _tokens(len(text))),
        finish_reason="stop",
        model=model,
        simulated=True,
    )
