"""Anthropic's Messages API through the official SDK.

Our OpenAI-style messages become Anthropic's: system messages move to the `system` parameter,
assistant tool calls become tool_use blocks, tool messages become tool_result blocks in a user
message (consecutive messages of one role are merged, as the API expects). The SDK retries 408,
409, 429, 5xx (529 overloaded included), timeouts and connection errors itself, like the openai SDK.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import anthropic

from .base import (
    ModelRequest,
    ModelResponse,
    ToolCall,
    as_tool_call,
    content_text,
    error_from_sdk,
    server_label,
    tool_name_for_model,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
_MAX_CLIENTS = 64
# Anthropic's stop reasons in the words the engine reads for every provider.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
}

_clients: OrderedDict[tuple[str, str, int], anthropic.Anthropic] = OrderedDict()
_clients_lock = threading.Lock()


def api_root(base_url: str) -> str:
    """Return the URL the SDK appends /v1/messages to: without a trailing /v1, which people often paste."""
    root = (base_url or DEFAULT_BASE_URL).rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _client(base_url: str, api_key: str, max_retries: int) -> anthropic.Anthropic:
    cache_key = (base_url, api_key, max_retries)
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is not None:
            _clients.move_to_end(cache_key)
            return client
    # The runtime writes the one span of a model call itself (DESIGN invariant 8): the SDK's own spans are off.
    client = anthropic.Anthropic(base_url=base_url, api_key=api_key, max_retries=max_retries, open_telemetry=False)
    with _clients_lock:
        client = _clients.setdefault(cache_key, client)
        while len(_clients) > _MAX_CLIENTS:
            _clients.popitem(last=False)
    return client


def clients_clear() -> None:
    """Forget the cached clients (tests, or after the provider settings changed in this process)."""
    with _clients_lock:
        _clients.clear()


def _wire(messages: list[dict]) -> tuple[str, list[dict]]:
    system_parts: list[str] = []
    wire: list[dict] = []
    for message in messages:
        role = message.get("role")
        if role == "system":
            text = content_text(message.get("content"))
            if text:
                system_parts.append(text)
            continue
        blocks: list[dict] = []
        if role == "tool":
            wire_role = "user"
            blocks.append(
                {
                    "type": "tool_result",
                    "tool_use_id": str(message.get("tool_call_id") or ""),
                    "content": content_text(message.get("content")),
                }
            )
        elif role == "assistant":
            wire_role = "assistant"
            text = content_text(message.get("content"))
            if text:
                blocks.append({"type": "text", "text": text})
            for call in (as_tool_call(c) for c in message.get("tool_calls") or []):
                blocks.append(
                    {"type": "tool_use", "id": call.id, "name": tool_name_for_model(call.name), "input": call.arguments}
                )
        else:
            wire_role = "user"
            text = content_text(message.get("content"))
            blocks.append({"type": "text", "text": text or "(empty message)"})
        if not blocks:
            continue  # an empty assistant turn: the API refuses empty content
        if wire and wire[-1]["role"] == wire_role:
            wire[-1]["content"].extend(blocks)
        else:
            wire.append({"role": wire_role, "content": blocks})
    return "\n\n".join(system_parts), wire


def messages_complete(
    *, base_url: str, api_key: str, timeout_s: float, max_retries: int, request: ModelRequest
) -> ModelResponse:
    """Call the Messages API at base_url once (with the SDK's retries) and return the answer."""
    root = api_root(base_url)
    server = server_label(root)
    system, messages = _wire(request.messages)
    params: dict = {
        "model": request.model,
        "messages": messages,
        "max_tokens": request.max_tokens,
        "timeout": timeout_s,
    }
    if system:
        params["system"] = system
    if request.tools:
        params["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
        ]
    try:
        message = _client(root, api_key, max_retries).messages.create(**params)
    except anthropic.AnthropicError as exc:
        raise error_from_sdk(
            exc, sdk=anthropic, server=server, model=request.model, secret=api_key, timeout_s=timeout_s
        ) from None
    texts: list[str] = []
    tool_calls: list[ToolCall] = []
    for block in message.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            texts.append(block.text)
        elif kind == "tool_use":
            arguments = block.input if isinstance(block.input, dict) else {"_raw": str(block.input)}
            tool_calls.append(ToolCall(id=block.id, name=block.name, arguments=arguments))
    usage = message.usage
    cache_read = (getattr(usage, "cache_read_input_tokens", None) or 0) if usage is not None else 0
    cache_write = (getattr(usage, "cache_creation_input_tokens", None) or 0) if usage is not None else 0
    stop = message.stop_reason or ("tool_use" if tool_calls else "end_turn")
    return ModelResponse(
        text="".join(texts) if texts else None,
        tool_calls=tool_calls,
        # Anthropic counts cached input apart; the engine prices input_tokens minus cached_input_tokens at full price.
        input_tokens=((usage.input_tokens or 0) + cache_read + cache_write) if usage is not None else 0,
        output_tokens=(usage.output_tokens or 0) if usage is not None else 0,
        cached_input_tokens=cache_read,
        finish_reason=_FINISH_REASONS.get(stop, stop),
        model=message.model or request.model,
    )
