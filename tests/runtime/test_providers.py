"""Model providers through the real SDKs against loopback servers speaking the OpenAI and Anthropic wire formats."""

from __future__ import annotations

import json
import socket
import time

import pytest

from apps.audit.models import AuditEvent
from apps.catalog.models import Model, Provider
from apps.governance.services import secret_create, secret_grant
from apps.runtime.providers import model_complete, provider_caches_clear
from apps.runtime.providers.base import ModelRequest, ProviderError, ToolCall, ToolSchema
from tests.runtime.model_servers import (
    AnthropicWireServer,
    OpenAIWireServer,
    reply_error,
    reply_text,
    reply_tool_calls,
)

pytestmark = pytest.mark.django_db

KEY = "sk-test-PROVIDERKEY-0123456789abcdef"
SEARCH = ToolSchema(
    name="kb_search",
    description="Search the knowledge base.",
    parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)


@pytest.fixture(autouse=True)
def _fresh_caches():
    # Primary keys repeat between tests (rolled back), so cached keys and clients must not.
    provider_caches_clear()
    yield
    provider_caches_clear()


def catalog_model(kind: str, base_url: str = "", *, name: str = "fake-model", **provider_fields) -> Model:
    provider = Provider.objects.create(
        name=f"p-{kind.replace('_', '-')}", display_name=kind, kind=kind, base_url=base_url, **provider_fields
    )
    return Model.objects.create(provider=provider, name=name)


def ask(text: str = "hi", **fields) -> ModelRequest:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    return ModelRequest(model="", messages=messages, **fields)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# OpenAI-compatible


def test_openai_text_answer_with_usage_and_the_request_sent():
    with OpenAIWireServer(script=[reply_text("Hello there", input_tokens=21, output_tokens=4)]) as server:
        model = catalog_model("openai_compatible", server.base_url)
        response = model_complete(model=model, request=ask("hi", max_tokens=99))
    assert response.text == "Hello there" and response.tool_calls == []
    assert (response.input_tokens, response.output_tokens) == (21, 4)
    assert response.finish_reason == "stop" and response.model == "fake-model" and not response.simulated
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["model"] == "fake-model" and sent["body"]["max_tokens"] == 99
    assert sent["body"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert "tools" not in sent["body"]
    assert sent["headers"]["authorization"] == "Bearer unused"  # no key secret: a placeholder for vLLM/Ollama


def test_openai_tool_call_round_trip_sends_tools_calls_and_results_in_the_wire_shape():
    script = [reply_tool_calls(("kb_search", {"query": "refund"}, "call_a")), reply_text("Found 2 articles.")]
    with OpenAIWireServer(script=script) as server:
        model = catalog_model("openai_compatible", server.base_url)
        request = ask("refund policy?", tools=[SEARCH])
        first = model_complete(model=model, request=request)
        assert first.tool_calls == [ToolCall(id="call_a", name="kb_search", arguments={"query": "refund"})]
        assert first.finish_reason == "tool_calls" and first.text is None
        request.messages += [
            {"role": "assistant", "content": None, "tool_calls": first.tool_calls},
            {"role": "tool", "tool_call_id": "call_a", "content": {"hits": 2}},
        ]
        second = model_complete(model=model, request=request)
    assert second.text == "Found 2 articles."
    body = server.requests[1]["body"]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "kb_search", "description": SEARCH.description, "parameters": SEARCH.parameters},
        }
    ]
    assert body["messages"][2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "kb_search", "arguments": '{"query": "refund"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"hits": 2}'},
    ]


def test_stored_tool_calls_as_dicts_with_registry_names_are_sent_as_model_names():
    with OpenAIWireServer(script=[reply_text("ok")]) as server:
        model = catalog_model("openai_compatible", server.base_url)
        request = ask()
        request.messages += [
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "name": "kb.search", "arguments": {}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "[]"},
        ]
        model_complete(model=model, request=request)
    assert server.requests[0]["body"]["messages"][2]["tool_calls"][0]["function"] == {
        "name": "kb_search",
        "arguments": "{}",
    }


def test_a_500_is_retried_by_the_sdk_with_backoff_and_the_second_answer_used():
    with OpenAIWireServer(script=[reply_error(500, "boom"), reply_text("recovered")]) as server:
        model = catalog_model("openai_compatible", server.base_url, max_retries=2)
        started = time.monotonic()
        response = model_complete(model=model, request=ask())
        elapsed = time.monotonic() - started
    assert response.text == "recovered" and server.calls == 2
    assert elapsed >= 0.3  # the SDK waits 0.5 s (less up to 25 % jitter) before its first retry


def test_429_until_the_retries_run_out_is_a_retryable_error_that_says_so():
    script = [reply_error(429, "slow down", retry_after_ms=1) for _ in range(3)]
    with OpenAIWireServer(script=script) as server:
        model = catalog_model("openai_compatible", server.base_url, max_retries=2)
        with pytest.raises(ProviderError) as exc:
            model_complete(model=model, request=ask())
    assert server.calls == 3
    assert exc.value.retryable and exc.value.status == 429
    assert f"The model server at {server.base_url} answered 429 after 3 attempts" in exc.value.message
    assert "rate-limiting" in exc.value.message and "slow down" in exc.value.message


def test_401_is_not_retried_and_says_to_check_the_key():
    with OpenAIWireServer(script=[reply_error(401, "Incorrect API key provided")]) as server:
        model = catalog_model("openai_compatible", server.base_url, max_retries=2)
        with pytest.raises(ProviderError) as exc:
            model_complete(model=model, request=ask())
    assert server.calls == 1 and not exc.value.retryable and exc.value.status == 401
    assert exc.value.message.startswith(
        f"The model server at {server.base_url} answered 401: check the provider's API key secret."
    )


def test_404_points_at_the_base_url_and_the_model_name():
    with OpenAIWireServer(script=[reply_error(404, "model not found")]) as server:
        model = catalog_model("openai_compatible", server.base_url, name="gpt-nope")
        with pytest.raises(ProviderError) as exc:
            model_complete(model=model, request=ask())
    assert not exc.value.retryable
    assert "check the provider's base URL and that the model 'gpt-nope' exists there" in exc.value.message


def test_a_server_slower_than_the_provider_timeout_is_a_quick_retryable_error():
    with OpenAIWireServer(script=[reply_text("too late", delay=2.0)]) as server:
        model = catalog_model("openai_compatible", server.base_url, timeout_seconds=1, max_retries=0)
        started = time.monotonic()
        with pytest.raises(ProviderError) as exc:
            model_complete(model=model, request=ask())
        elapsed = time.monotonic() - started
    assert exc.value.retryable and 0.9 <= elapsed < 1.8
    assert "did not answer within 1 s" in exc.value.message


def test_the_request_timeout_shortens_the_provider_timeout():
    with OpenAIWireServer(script=[reply_text("too late", delay=1.0)]) as server:
        model = catalog_model("openai_compatible", server.base_url, timeout_seconds=30, max_retries=0)
        started = time.monotonic()
        with pytest.raises(ProviderError, match=r"did not answer within 0\.3 s"):
            model_complete(model=model, request=ask(timeout_s=0.3))
    assert time.monotonic() - started < 0.9


def test_a_server_that_is_not_running_is_a_retryable_connection_error():
    model = catalog_model("openai_compatible", closed_port_url(), max_retries=0)
    with pytest.raises(ProviderError) as exc:
        model_complete(model=model, request=ask())
    assert exc.value.retryable and "cannot be reached" in exc.value.message
    assert "check the provider's base URL" in exc.value.message


def test_invalid_json_arguments_are_kept_raw_for_the_engine_to_report():
    with OpenAIWireServer(script=[reply_tool_calls(("kb_search", '{"query": "unterminated'))]) as server:
        model = catalog_model("openai_compatible", server.base_url)
        response = model_complete(model=model, request=ask(tools=[SEARCH]))
    assert response.tool_calls[0].arguments == {"_raw": '{"query": "unterminated'}


def test_a_disabled_provider_is_refused_before_any_call():
    with OpenAIWireServer(script=[reply_text("never")]) as server:
        model = catalog_model("openai_compatible", server.base_url, enabled=False)
        with pytest.raises(ProviderError, match="p-openai-compatible is disabled in the model catalog") as exc:
            model_complete(model=model, request=ask())
    assert server.calls == 0 and not exc.value.retryable


def test_the_api_key_is_read_once_for_many_calls_and_never_shown_in_errors(world):
    secret = secret_create(actor=world["admin"], team=None, name="openai-key", value=KEY)
    script = [reply_text("one"), reply_text("two"), reply_error(401, f"Incorrect API key provided: {KEY}.")]
    with OpenAIWireServer(script=script) as server:
        model = catalog_model("openai_compatible", server.base_url, api_key_secret=secret)
        secret_grant(actor=world["admin"], secret=secret, grantee_type="provider", grantee=model.provider)
        model_complete(model=model, request=ask())
        model_complete(model=model, request=ask())
        with pytest.raises(ProviderError) as exc:
            model_complete(model=model, request=ask())
    assert [r["headers"]["authorization"] for r in server.requests] == [f"Bearer {KEY}"] * 3
    reads = AuditEvent.objects.filter(action="secret.read")
    assert reads.count() == 1 and KEY not in json.dumps(list(reads.values()), default=str)
    assert KEY not in exc.value.message and "[redacted]" in exc.value.message


def test_a_key_secret_not_granted_to_the_provider_is_a_clear_error_without_a_call(world):
    secret = secret_create(actor=world["admin"], team=None, name="openai-key", value=KEY)
    with OpenAIWireServer(script=[reply_text("never")]) as server:
        model = catalog_model("openai_compatible", server.base_url, api_key_secret=secret)
        with pytest.raises(ProviderError) as exc:
            model_complete(model=model, request=ask())
    assert server.calls == 0 and not exc.value.retryable
    assert "cannot read its API key" in exc.value.message and "openai-key is not granted" in exc.value.message


# Anthropic


def test_anthropic_text_tool_use_and_usage_through_the_sdk():
    script = [
        reply_tool_calls(("kb_search", {"query": "refund"}, "toolu_1"), text="Let me look.", input_tokens=30),
        reply_text("Refunds take 5 days.", input_tokens=52, output_tokens=9),
    ]
    with AnthropicWireServer(script=script) as server:
        model = catalog_model("anthropic", server.base_url, name="claude-test")
        request = ask("refund policy?", tools=[SEARCH], max_tokens=256)
        first = model_complete(model=model, request=request)
        request.messages += [
            {"role": "assistant", "content": first.text, "tool_calls": first.tool_calls},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "Refunds take 5 days."},
        ]
        second = model_complete(model=model, request=request)
    assert first.text == "Let me look." and first.finish_reason == "tool_calls"
    assert first.tool_calls == [ToolCall(id="toolu_1", name="kb_search", arguments={"query": "refund"})]
    assert (first.input_tokens, first.output_tokens) == (30, 5)
    assert second.text == "Refunds take 5 days." and second.finish_reason == "stop"
    assert (second.input_tokens, second.output_tokens) == (52, 9) and second.model == "claude-test"
    body = server.requests[1]["body"]
    assert server.requests[1]["path"] == "/v1/messages"
    assert server.requests[1]["headers"]["authorization"] == "Bearer unused"  # anthropic 2.x sends the key as a bearer
    assert body["system"] == "Be brief." and body["max_tokens"] == 256 and body["model"] == "claude-test"
    assert body["tools"] == [
        {"name": "kb_search", "description": SEARCH.description, "input_schema": SEARCH.parameters}
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "refund policy?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "kb_search", "input": {"query": "refund"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "Refunds take 5 days."}],
        },
    ]


def test_anthropic_parallel_tool_results_go_in_one_user_message_and_a_v1_base_url_works():
    with AnthropicWireServer(script=[reply_text("ok")]) as server:
        model = catalog_model("anthropic", server.base_url + "/v1/", name="claude-test")
        request = ask()
        request.messages += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [ToolCall("t1", "kb_search", {"query": "a"}), ToolCall("t2", "kb.search", {})],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "A"},
            {"role": "tool", "tool_call_id": "t2", "content": "B"},
        ]
        model_complete(model=model, request=request)
    messages = server.requests[0]["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["name"] for b in messages[1]["content"]] == ["kb_search", "kb_search"]
    assert [b["tool_use_id"] for b in messages[2]["content"]] == ["t1", "t2"]


def test_anthropic_errors_map_like_openai_ones():
    script = [reply_error(529, "Overloaded", retry_after_ms=1), reply_error(529, "Overloaded", retry_after_ms=1)]
    with AnthropicWireServer(script=script) as server:
        model = catalog_model("anthropic", server.base_url, name="claude-test", max_retries=1)
        with pytest.raises(ProviderError) as exc:
            model_complete(model=model, request=ask())
    assert server.calls == 2 and exc.value.retryable and exc.value.status == 529
    assert "answered 529 after 2 attempts" in exc.value.message and "Overloaded" in exc.value.message
    with AnthropicWireServer(script=[reply_error(401, "invalid x-api-key")]) as server:
        model.provider.base_url = server.base_url
        with pytest.raises(ProviderError) as exc:
            model_complete(model=model, request=ask())
    assert server.calls == 1 and not exc.value.retryable
    assert "answered 401: check the provider's API key secret" in exc.value.message
