"""Handoffs (depth, cycles, the caller's permissions), context, sandbox and OpenAI-wire runs through the engine."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.agents.services import agent_update_draft
from apps.catalog.models import Model, Provider
from apps.context.models import ContextSpace
from apps.context.services import context_entry_add, context_grant_set, context_space_create
from apps.runtime.models import Run, RunStatus, StepKind, StepStatus, Trigger
from apps.runtime.services import run_reap, schedule_create, schedule_fire
from tests.runtime.model_servers import OpenAIWireServer, reply_error, reply_text, reply_tool_calls

pytestmark = pytest.mark.django_db


def _handoff(target: str) -> dict:
    return {"call": [{"tool": f"handoff_to_{target}", "arguments": {"input": {"topic": "{input.topic}"}}}]}


def test_handoff_runs_the_target_as_a_child_run_and_returns_its_answer(rt):
    rt.agent("specialist", script=[{"answer": "specialist says {input.topic} is fine"}])
    front = rt.agent("front", handoffs=["specialist"], script=[_handoff("specialist"), {"answer": "front: {result}"}])
    run = rt.run(front, {"topic": "refunds"})
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "front: specialist says refunds is fine"
    step = run.steps.get(kind=StepKind.HANDOFF)
    child = step.child_run
    assert child.parent_id == run.pk and child.depth == 1 and child.trigger == Trigger.HANDOFF
    assert child.trace_id == run.trace_id and child.agent.name == "specialist"
    assert child.status == RunStatus.SUCCEEDED


def test_handoff_depth_is_limited(rt, settings):
    settings.FLEETDECK_MAX_HANDOFF_DEPTH = 1
    rt.agent("c", script=[{"answer": "c"}])
    rt.agent("b", handoffs=["c"], script=[_handoff("c"), {"answer": "b got {result}"}])
    a = rt.agent("a", handoffs=["b"], script=[_handoff("b"), {"answer": "a got {result}"}])
    run = rt.run(a, {"topic": "x"})
    child = run.steps.get(kind=StepKind.HANDOFF).child_run
    refused = child.steps.get(kind=StepKind.HANDOFF)
    assert refused.status == StepStatus.FAILED and "FLEETDECK_MAX_HANDOFF_DEPTH" in refused.error
    assert not Run.objects.filter(parent=child).exists()
    assert run.status == RunStatus.SUCCEEDED


def test_handoff_cycles_are_refused(rt):
    ping = rt.agent("ping", script=[{"answer": "placeholder"}])
    pong = rt.agent("pong", handoffs=["ping"], script=[_handoff("ping"), {"answer": "pong got {result}"}])
    # ping now hands back to pong: ping -> pong -> ping would loop.
    agent_update_draft(
        actor=rt.owner,
        agent=ping,
        spec={
            **ping.draft_spec,
            "handoffs": ["pong"],
            "simulation": {"script": [_handoff("pong"), {"answer": "ping got {result}"}]},
        },
    )
    from apps.agents.models import ChannelName
    from apps.agents.services import agent_promote, agent_publish

    version = agent_publish(actor=rt.owner, agent=ping, version="1.1.0")
    agent_promote(actor=rt.owner, agent=ping, version=version, channel=ChannelName.PRODUCTION, reason="test")
    run = rt.run(ping, {"topic": "loop"})
    pong_run = run.steps.get(kind=StepKind.HANDOFF).child_run
    assert pong_run.agent == pong
    back = pong_run.steps.get(kind=StepKind.HANDOFF)
    assert back.status == StepStatus.FAILED and "cycle" in back.error
    assert run.status == RunStatus.SUCCEEDED


def test_handoff_needs_the_starters_permission_on_the_target(rt):
    from guardian.shortcuts import assign_perm

    from apps.runtime.services import run_start

    rt.agent("target", script=[{"answer": "secret work"}])
    front = rt.agent("caller", handoffs=["target"], script=[_handoff("target"), {"answer": "caller: {result}"}])
    # Someone outside the team, allowed to run only the caller (an object grant), may not reach the target.
    outsider = rt.world["outsider"]
    assign_perm("agents.run_agent", outsider, front)
    run = rt.drive(run_start(actor=outsider, agent=front, input={"topic": "x"}))
    step = run.steps.get(kind=StepKind.HANDOFF)
    assert step.status == StepStatus.FAILED and "may not run agent target" in step.error
    assert step.child_run is None


def test_context_tools_search_and_write_through_grants(rt):
    builder = rt.world["builder"]
    space = context_space_create(actor=builder, team=rt.team, name="kb")
    context_entry_add(
        actor=builder, space=space, kind="fact", key="fees", title="Fees", body="Cards cost 1.4% plus 25 cents."
    )
    agent = rt.agent(
        "reader",
        memory={"context_spaces": [{"space": "kb", "access": "write"}]},
        script=[
            {"call": [{"tool": "context_search", "arguments": {"space": "kb", "query": "cards"}}]},
            {"call": [{"tool": "context_write", "arguments": {"space": "kb", "key": "seen", "value": {"n": 1}}}]},
            {"answer": "done: {result}"},
        ],
    )
    # Without a grant the agent is offered no context tools at all.
    run = rt.run(agent)
    assert run.steps.filter(status=StepStatus.REFUSED).count() == 2
    context_grant_set(actor=builder, space=ContextSpace.objects.get(pk=space.pk), agent=agent, access="write")
    run = rt.run(agent)
    assert run.status == RunStatus.SUCCEEDED, run.error
    search, write = run.steps.filter(kind=StepKind.TOOL).order_by("index")
    assert search.status == StepStatus.SUCCEEDED and "1.4%" in str(search.output)
    assert write.status == StepStatus.SUCCEEDED and write.side_effect


def test_python_tool_runs_in_the_sandbox_inside_a_run(rt):
    rt.tool(
        "math.add",
        {
            "description": "Add two numbers.",
            "kind": "python",
            "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}},
            "config": {"code": "def main(a, b):\n    return {'sum': a + b}\n"},
        },
    )
    agent = rt.agent(
        "calculator",
        tools=["math.add"],
        script=[{"call": [{"tool": "math.add", "arguments": {"a": 2, "b": 40}}]}, {"answer": "sum={result.sum}"}],
    )
    run = rt.run(agent)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "sum=42"


def _openai_agent(rt, server, **spec):
    provider = Provider.objects.create(
        name="loopback",
        display_name="Loopback",
        kind="openai_compatible",
        base_url=server.base_url,
        max_retries=1,
        timeout_seconds=2,
    )
    Model.objects.create(
        provider=provider, name="gpt-test", input_price_per_mtok=Decimal("1"), output_price_per_mtok=Decimal("2")
    )
    return rt.agent("wired", model="loopback/gpt-test", **spec)


def test_loop_over_the_openai_wire_format_with_tool_calls_and_usage(rt):
    from tests.runtime.loopback import loopback_server

    def tool(request):
        request.reply(200, {"temperature": 21})

    with (
        loopback_server(tool) as tool_server,
        OpenAIWireServer(
            script=[
                reply_tool_calls(("weather", {"q": "Paris"}), input_tokens=100, output_tokens=10),
                reply_text("It is 21 degrees.", input_tokens=150, output_tokens=8),
            ]
        ) as server,
    ):
        rt.http_tool("weather", f"{tool_server.url}/w/{{q}}")
        agent = _openai_agent(rt, server, tools=["weather"])
        run = rt.run(agent, {"city": "Paris"})
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "It is 21 degrees." and not run.simulated
    assert (run.tokens_in, run.tokens_out) == (250, 18)
    assert run.cost_usd == Decimal("0.000286")  # 250 x 1 + 18 x 2 per million
    second = server.requests[1]["body"]
    assert [t["function"]["name"] for t in second["tools"]] == ["weather"]
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and "21" in tool_message["content"]
    assert tool_message["content"].startswith("<untrusted-data")
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "weather"


def test_model_server_errors_and_timeouts_fail_the_run_clearly(rt):
    with OpenAIWireServer(script=[reply_error(401, "bad key")]) as server:
        agent = _openai_agent(rt, server)
        run = rt.run(agent)
    assert run.status == RunStatus.FAILED and run.error_code == "provider_error"
    assert "401" in run.error
    with OpenAIWireServer(script=[reply_text("late", delay=3), reply_text("late", delay=3)]) as server:
        Provider.objects.filter(name="loopback").update(base_url=server.base_url, max_retries=0)
        run = rt.run(agent)
    assert run.status == RunStatus.FAILED and "did not answer within 2 s" in run.error


def test_schedule_creates_its_beat_entry_and_fires_once_per_minute(rt):
    from django_celery_beat.models import PeriodicTask

    from apps.core.exceptions import ServiceError

    agent = rt.agent("nightly", script=[{"answer": "report"}])
    with pytest.raises(ServiceError, match="five fields"):
        schedule_create(actor=rt.world["builder"], agent=agent, name="bad", cron="every day")
    with pytest.raises(ServiceError, match="Unknown time zone"):
        schedule_create(actor=rt.world["builder"], agent=agent, name="bad", cron="0 7 * * *", timezone_name="Mars/Base")
    schedule = schedule_create(
        actor=rt.world["builder"], agent=agent, name="morning", cron="0 7 * * 1-5", timezone_name="Europe/Paris"
    )
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert (
        task.task == "runtime.schedule_fire"
        and task.crontab.hour == "7"
        and str(task.crontab.timezone) == "Europe/Paris"
    )
    first = schedule_fire(schedule_id=schedule.pk)
    again = schedule_fire(schedule_id=schedule.pk)
    assert first.pk == again.pk and first.trigger == Trigger.SCHEDULE
    assert rt.drive(first).output == "report"


def test_reaper_requeues_runs_of_dead_workers_only(rt, settings):
    from django.utils import timezone

    from apps.core.models import WorkerHeartbeat

    agent = rt.agent("reaped", script=[{"answer": "ok"}])
    alive, dead = rt.start(agent), rt.start(agent)
    WorkerHeartbeat.objects.create(hostname="alive@host", seen_at=timezone.now(), started_at=timezone.now())
    Run.objects.filter(pk=alive.pk).update(status=RunStatus.RUNNING, worker="alive@host:10")
    Run.objects.filter(pk=dead.pk).update(status=RunStatus.RUNNING, worker="dead@host:11")
    assert run_reap() >= 1
    alive.refresh_from_db()
    dead.refresh_from_db()
    assert alive.worker == "alive@host:10"
    assert dead.worker == "" and dead.recoveries == 1
    assert rt.drive(dead).status == RunStatus.SUCCEEDED
