"""The built-in simulated model: scripted per agent, deterministic, labelled simulated; and its spec block."""

from __future__ import annotations

import json
import math
import time

import pytest

from apps.catalog.models import Model, Provider
from apps.catalog.simulation import SIMULATION_FIELDS, simulation_validate
from apps.core.exceptions import ServiceError
from apps.core.specs import SpecField, validate_spec
from apps.runtime.providers import model_complete
from apps.runtime.providers.base import ModelRequest, ProviderError, ToolCall
from apps.runtime.providers.simulated import complete

REFUND = {
    "script": [
        {
            "call": [
                {
                    "tool": "kb.search",
                    "arguments": {
                        "query": "{input.customer}",
                        "amount": "{input.amount}",
                        "note": "refund of {input.amount} for {input.customer}",
                        "tags": ["{input.customer}", {"missing": "{input.nope}"}],
                    },
                },
                {"tool": "crm.lookup", "arguments": {}},
            ]
        },
        {"answer": "Refund of {input.amount} approved. Policy: {result.hits.0.title}. Raw: {result}"},
    ]
}
INPUT = {"customer": "ACME", "amount": 42}


def request_for(messages, simulation=REFUND, run_input=INPUT) -> ModelRequest:
    return ModelRequest(model="sim-1", messages=messages, simulation=simulation, run_input=run_input)


def start(text: str = "please refund") -> list[dict]:
    return [{"role": "system", "content": "You handle refunds."}, {"role": "user", "content": text}]


def test_a_script_asks_for_tool_calls_then_answers_with_placeholders_filled():
    messages = start()
    first = complete(request=request_for(messages))
    assert first.simulated and first.finish_reason == "tool_calls" and first.text is None
    assert first.tool_calls == [
        ToolCall(
            id="call_1_1",
            name="kb_search",
            arguments={
                "query": "ACME",
                "amount": 42,  # a string that is exactly one placeholder keeps the JSON type
                "note": "refund of 42 for ACME",
                "tags": ["ACME", {"missing": None}],
            },
        ),
        ToolCall(id="call_1_2", name="crm_lookup", arguments={}),
    ]
    messages += [
        {"role": "assistant", "content": None, "tool_calls": first.tool_calls},
        {"role": "tool", "tool_call_id": "call_1_1", "content": '{"hits": [{"title": "30 days"}]}'},
        {"role": "tool", "tool_call_id": "call_1_2", "content": "{}"},
    ]
    messages[-2], messages[-1] = messages[-1], messages[-2]  # the last tool result is what {result} names
    second = complete(request=request_for(messages))
    assert second.text == 'Refund of 42 approved. Policy: 30 days. Raw: {"hits": [{"title": "30 days"}]}'
    assert second.finish_reason == "stop" and second.tool_calls == [] and second.simulated


def test_after_the_script_the_default_answer_then_the_builtin_echo():
    messages = start("hello") + [{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]
    simulation = {"script": [{"answer": "first"}], "default_answer": "Done with {input}."}
    assert complete(request=request_for(messages, simulation, run_input="hello")).text == "Done with hello."
    echo = complete(request=request_for(start(), None, run_input=INPUT))
    assert echo.text == '[simulated] I received: {"customer":"ACME","amount":42}' and echo.simulated
    long = complete(request=request_for(start("x" * 500), {}, run_input=None))  # the input is the user message
    assert long.text == "[simulated] I received: " + "x" * 200 + "..."


def test_only_the_runs_own_model_calls_count_not_earlier_session_turns():
    session = start("first question") + [{"role": "assistant", "content": "an earlier answer"}]
    session.append({"role": "user", "content": "second question"})
    response = complete(request=request_for(session, run_input=None))
    assert response.tool_calls[0].id == "call_2_1"  # the first entry again; ids stay unique in the session
    assert response.tool_calls[0].arguments["query"] is None  # a text input has no fields


def test_an_error_entry_fails_the_call_retryable_for_429_and_5xx_only():
    simulation = {"script": [{"error": {"status": 429, "message": "slow down"}}]}
    with pytest.raises(ProviderError) as exc:
        complete(request=request_for(start(), simulation))
    assert exc.value.retryable and exc.value.status == 429
    assert exc.value.message == "The simulated model answered 429 (scripted in the agent's simulation block): slow down"
    with pytest.raises(ProviderError) as exc:
        complete(request=request_for(start(), {"script": [{"error": {"status": 400}}]}))
    assert not exc.value.retryable and "simulated provider error" in exc.value.message


def test_sleep_ms_delays_the_answer():
    started = time.monotonic()
    complete(request=request_for(start(), {"script": [{"answer": "slow", "sleep_ms": 60}]}))
    assert time.monotonic() - started >= 0.06


def test_the_same_request_gets_the_same_response_with_estimated_tokens():
    messages = start()
    one, two = complete(request=request_for(messages)), complete(request=request_for(messages))
    assert one == two
    assert one.input_tokens == math.ceil(len("You handle refunds." + "please refund") / 4)
    out = sum(len(c.name) + len(json.dumps(c.arguments, ensure_ascii=False)) for c in one.tool_calls)
    assert one.output_tokens == math.ceil(out / 4)


def test_an_invalid_entry_met_at_run_time_is_a_clear_non_retryable_error():
    with pytest.raises(ProviderError) as exc:
        complete(request=request_for(start(), {"script": [{"answer": "a", "error": {}}]}))
    assert not exc.value.retryable
    assert "simulation.script: [0] must give exactly one of call, answer or error" in exc.value.message


@pytest.mark.django_db
def test_the_dispatcher_routes_simulated_providers_without_a_network_or_a_key():
    provider = Provider.objects.create(name="sim", display_name="Simulated", kind="simulated")
    model = Model.objects.create(provider=provider, name="sim-1")
    response = model_complete(model=model, request=ModelRequest(model="", messages=start("hi"), run_input="hi"))
    assert response.simulated and response.model == "sim-1" and response.text == "[simulated] I received: hi"


# The spec block


def test_a_valid_block_is_normalised_to_what_each_entry_gives():
    block = simulation_validate(
        {
            "script": [
                {"call": [{"tool": "kb.search"}]},
                {"answer": "ok", "sleep_ms": 5},
                {"error": {"status": 503}},
            ]
        }
    )
    assert block == {
        "script": [
            {"call": [{"tool": "kb.search", "arguments": {}}]},
            {"answer": "ok", "sleep_ms": 5},
            {"error": {"status": 503, "message": "simulated provider error"}},
        ],
        "default_answer": None,
    }
    nested = validate_spec({"simulation": {"script": []}}, [SpecField("simulation", dict, fields=SIMULATION_FIELDS)])
    assert nested == {"simulation": {"script": [], "default_answer": None}}


@pytest.mark.parametrize(
    ("block", "field", "message"),
    [
        (
            {"script": [{"answer": "a"}, {"answer": "b"}, {"answer": "c", "call": [{"tool": "t"}]}]},
            "simulation.script",
            "simulation.script: [2] must give exactly one of call, answer or error (it gives call and answer).",
        ),
        ({"script": [{"sleep_ms": 5}]}, "simulation.script", "[0] must give exactly one of call, answer or error"),
        ({"script": ["hello"]}, "simulation.script", "[0] must be an object with one of call, answer or error"),
        ({"script": [{"call": []}]}, "simulation.script", "[0].call must list at least one tool call"),
        ({"script": [{"call": [{"arguments": {}}]}]}, "simulation.script", "[0].call[0].tool is required"),
        ({"script": [{"call": [{"tool": "t", "args": {}}]}]}, "simulation.script", "Unknown key [0].call[0].args"),
        ({"script": [{"error": {"status": 200}}]}, "simulation.script", "[0].error.status: must be between 400"),
        ({"script": [{"answer": "a", "sleep_ms": -1}]}, "simulation.script", "[0].sleep_ms: must be between 0"),
        ({"script": [{"answer": "a", "wait": 1}]}, "simulation.script", "Unknown key [0].wait"),
        ({"script": "answer"}, "simulation.script", "simulation.script must be a list"),
        ({"scripts": []}, "simulation.scripts", "Unknown key simulation.scripts"),
        ({"default_answer": 3}, "simulation.default_answer", "simulation.default_answer must be a string"),
    ],
)
def test_validation_errors_name_the_field(block, field, message):
    with pytest.raises(ServiceError) as exc:
        simulation_validate(block)
    assert exc.value.field == field
    assert message in exc.value.message
