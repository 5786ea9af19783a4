"""OpenAI-compatible chat completions (OpenAI, Azure, vLLM, Ollama, llama.cpp...) through the official SDK.

The SDK retries 408, 409, 429, 5xx, timeouts and connection errors itself, max_retries times, with
exponential backoff (0.5 s doubling, at most 8 s, minus up to 25 % jitter) or the server's
Retry-After / retry-after-ms when that is at most 2 minutes. What still fails becomes a ProviderError.

The request goes out through `client.post("/chat/completions", ...)` (the SDK's documented way to
send a body as it is) rather than `chat.completions.create`: create() runs every parameter through
the SDK's type-directed transform, which costs ~0.5 ms for a short conversation and ~3 ms for a run
with a dozen messages, against a budget of 3 ms of platform time per step. Our messages are already
in the wire format, so there is nothing to transform; retries, timeouts and errors are the same.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

import openai
from openai.types.chat import ChatCompletion

from .base import (
    ModelRequest,
    ModelResponse,
    ProviderError,
    ToolCall,
    as_tool_call,
    content_text,
    error_from_sdk,
    server_label,
    tool_name_for_model,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_MAX_CLIENTS = 64

# Building a client takes milliseconds and each one holds a connection pool: keep one per server and
# key. Timeouts and retry counts are given per call, so they need no client of their own.
_clients: OrderedDict[tuple[str, str], openai.OpenAI] = OrderedDict()
_clients_lock = threading.Lock()


def _client(base_url: str, api_key: str) -> openai.OpenAI:
    cache_key = (base_url, api_key)
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is not None:
            _clients.move_to_end(cache_key)
            return client
    client = openai.OpenAI(base_url=base_url, api_key=api_key)
    # The SDK reads OPENAI_ORG_ID / OPENAI_PROJECT_ID from the environment; a worker's variables must not
    # reach every server in the catalog (the catalog holds the provider's whole configuration).
    client.organization = None
    client.project = None
    with _clients_lock:
        client = _clients.setdefault(cache_key, client)
        while len(_clients) > _MAX_CLIENTS:
            _clients.popitem(last=False)  # a rotated key's client; dropped, its pool closes when collected
    return client


def clients_clear() -> None:
    """Forget the cached clients (tests, or after the provider settings changed in this process)."""
    with _clients_lock:
        _clients.clear()


def _wire_messages(messages: list[dict]) -> list[dict]:
    wire = []
    for message in messages:
        role = message.get("role")
        if role == "assistant":
            item: dict = {"role": "assistant", "content": message.get("content") or None}
            calls = [as_tool_call(c) for c in message.get("tool_calls") or []]
            if calls:
                item["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": tool_name_for_model(call.name),
                            "arguments": json.dumps(call.arguments, ensure_ascii=False),
                        },
                    }
                    for call in calls
                ]
            elif item["content"] is None:
                item["content"] = ""
            wire.append(item)
        elif role == "tool":
            wire.append(
                {
                    "role": "tool",
                    "tool_call_id": str(message.get("tool_call_id") or ""),
                    "content": content_text(message.get("content")),
                }
            )
        else:
            wire.append({"role": role, "content": content_text(message.get("content"))})
    return wire


def _arguments(raw) -> dict:
    # Models sometimes write broken JSON: keep what they wrote so the engine can tell them.
    if raw is None or raw == "":
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {"_raw": str(raw)}
    return value if isinstance(value, dict) else {"_raw": str(raw)}


def chat_complete(
    *, base_url: str, api_key: str, timeout_s: float, max_retries: int, request: ModelRequest
) -> ModelResponse:
    """Call the chat completions endpoint at base_url once (with the SDK's retries) and return the answer."""
    base_url = base_url or DEFAULT_BASE_URL
    server = server_label(base_url)
    body: dict = {
        "model": request.model,
        "messages": _wire_messages(request.messages),
        "max_tokens": request.max_tokens,
    }
    if request.tools:
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools
        ]
    try:
        completion = _client(base_url, api_key).post(
            "/chat/completions",
            cast_to=ChatCompletion,
            body=body,
            options={"timeout": timeout_s, "max_retries": max_retries},
        )
    except openai.OpenAIError as exc:
        raise error_from_sdk(
            exc, sdk=openai, server=server, model=request.model, secret=api_key, timeout_s=timeout_s
        ) from None
    choices = getattr(completion, "choices", None)
    if not choices:
        raise ProviderError(
            f"The model server at {server} answered without a choice: check that the provider's kind and base URL "
            "match the server (an OpenAI-compatible base URL usually ends in /v1).",
        )
    choice = choices[0]
    message = choice.message
    tool_calls = []
    for call in message.tool_calls or []:
        function = getattr(call, "function", None)
        if function is not None:
            tool_calls.append(ToolCall(id=call.id, name=function.name, arguments=_arguments(function.arguments)))
        else:  # a custom (free-text) tool call: no JSON arguments to read
            custom = getattr(call, "custom", None)
            tool_calls.append(
                ToolCall(
                    id=call.id,
                    name=getattr(custom, "name", ""),
                    arguments={"_raw": str(getattr(custom, "input", ""))},
                )
            )
    usage = completion.usage
    details = getattr(usage, "prompt_tokens_details", None) if usage is not None else None
    return ModelResponse(
        text=message.content,
        tool_calls=tool_calls,
        input_tokens=(usage.prompt_tokens or 0) if usage is not None else 0,
        output_tokens=(usage.completion_tokens or 0) if usage is not None else 0,
        cached_input_tokens=(getattr(details, "cached_tokens", None) or 0) if details is not None else 0,
        finish_reason=choice.finish_reason or ("tool_calls" if tool_calls else "stop"),
        model=completion.model or request.model,
    )
