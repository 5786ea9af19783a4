"""The engine: the tool-calling loop of one run, resumable from its last committed step.

`run_execute` claims the run for this worker, rebuilds the conversation from the committed steps,
and goes on: call the model, pass each tool call it asks for through the decision point, run
the tool, feed the result back (fenced as data), until a final answer, a limit, a pause for a
person, or cancellation. Each step is written before its side effect (started) and after it.

Resuming after a worker died: an interrupted model call is made again; an interrupted read-only
tool call runs again; an interrupted side-effecting call is never repeated silently: it is marked
uncertain and put to an operator (retry with the same idempotency key, assume it ran, or stop).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from jsonschema import Draft202012Validator

from apps.core.exceptions import ServiceError

from . import decision as decide
from . import limits, telemetry
from .executors.base import ToolCallContext, ToolError
from .fencing import FENCE_RULE, as_text, fence
from .models import (
    FINISHED,
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Run,
    RunStatus,
    SpendCounter,
    Step,
    StepKind,
    StepStatus,
    UncertainChoice,
)
from .providers.base import ModelRequest, ProviderError, ToolCall, ToolSchema, tool_name_for_model

log = logging.getLogger(__name__)
TERMINAL_STEP = {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.REFUSED, StepStatus.REJECTED}
MAX_RESULT_CHARS = 50_000


class RunStop(Exception):
    """End the run with a status and a message saying why."""

    def __init__(self, status: str, message: str, code: str = ""):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class Pause(Exception):
    """Leave the run waiting (for a person or a child run) without holding the worker."""


@dataclass
class Binding:
    """A tool as this run offers it to the model."""

    model_name: str
    registry_name: str
    kind: str
    description: str
    parameters: dict
    tool_version: object = None
    side_effect: bool = False
    requires_approval: bool = False
    cost_per_call: float = 0.0
    rate_limit: dict = field(default_factory=dict)
    rate_key: str = ""
    target_agent: str = ""
    operation: str = ""
    space: str = ""


def run_execute(*, run_id: int, worker: str) -> str | None:
    """Execute (or resume) the run if it is this worker's to execute; return its status afterwards."""
    run = _claim(run_id, worker)
    if run is None:
        return None
    return Engine(run, worker).execute()


def _claim(run_id: int, worker: str) -> Run | None:
    """Make the run this worker's and return it loaded, or None when it is finished or another live worker's.

    The common case (nobody holds the run, or this worker already does) is one conditional UPDATE;
    taking over from another worker needs the row lock and a look at that worker's heartbeat.
    """
    from .services import worker_alive

    now = timezone.now()
    claimed = (
        Run.objects.filter(pk=run_id, worker__in=["", worker])
        .exclude(status__in=FINISHED)
        .update(
            worker=worker,
            claimed_at=now,
            status=RunStatus.RUNNING,
            started_at=Coalesce("started_at", Value(now)),
        )
    )
    if not claimed:
        with transaction.atomic():
            run = Run.objects.select_for_update().filter(pk=run_id).first()
            if run is None or run.finished or (run.worker and worker_alive(run.worker)):
                return None  # gone, ended, or another live worker executes it (a duplicate delivery)
            run.recoveries += 1
            run.worker, run.claimed_at, run.status = worker, now, RunStatus.RUNNING
            run.started_at = run.started_at or now
            run.save(update_fields=["worker", "claimed_at", "status", "started_at", "recoveries"])
    return Run.objects.select_related("agent", "team", "model__provider", "parent").get(pk=run_id)


class Engine:
    def __init__(self, run: Run, worker: str):
        self.run = run
        self.worker = worker
        self.spec = run.spec
        self.agent = run.agent
        self.team = run.team
        self.model = run.model
        self.steps: list[Step] = []
        self.messages: list[dict] = []
        self.bindings: dict[str, Binding] = {}
        self.started = time.monotonic()
        self.cancel_requested: bool | None = run.cancel_requested  # as read by the claim

    # --- the loop -------------------------------------------------------------------------------

    def execute(self) -> str:
        from .services import run_finish

        try:
            self._load()
            self._loop()
        except Pause:
            Run.objects.filter(pk=self.run.pk).update(status=RunStatus.WAITING, worker="")
            self.run.status = RunStatus.WAITING
        except RunStop as stop:
            with transaction.atomic():
                run_finish(run=self.run, status=stop.status, error=stop.message, error_code=stop.code)
        except SoftTimeLimitExceeded:
            with transaction.atomic():
                run_finish(
                    run=self.run,
                    status=RunStatus.TIMED_OUT,
                    error="Stopped: the worker's task time limit (CELERY_TASK_SOFT_TIME_LIMIT) was reached.",
                    error_code="task_time_limit",
                )
        except Exception as exc:  # noqa: BLE001 - a failed agent must look failed, never stay "running"
            log.exception("run %s failed inside the engine", self.run.pk)
            with transaction.atomic():
                run_finish(
                    run=self.run,
                    status=RunStatus.FAILED,
                    error=f"The runtime failed: {type(exc).__name__}: {str(exc)[:500]}",
                    error_code="internal_error",
                )
        return self.run.status

    def _loop(self) -> None:
        while True:
            self._check_cancel()
            last = self._last_model_step()
            pending = self._pending_calls(last)
            if pending:
                for call in pending:
                    self._handle_call(call)
                    self._check_cancel()
                continue
            if last is not None and not last.output.get("tool_calls"):
                self._succeed(last.output.get("text") or "")
                return
            self._model_step()

    def _check_cancel(self) -> None:
        # The flag is read back by every step's write (_step_end); only a fresh engine asks the database.
        if self.cancel_requested is None:
            self.cancel_requested = Run.objects.filter(pk=self.run.pk, cancel_requested=True).exists()
        if self.cancel_requested:
            raise RunStop(RunStatus.CANCELLED, "Cancelled between two steps, as asked.", "cancelled")

    def _succeed(self, text: str) -> None:
        from .services import run_finish

        schema = self.spec.get("output_schema") or {"type": "string"}
        output = text
        if schema.get("type") != "string":
            cleaned = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
            try:
                output = json.loads(cleaned)
            except json.JSONDecodeError:
                raise RunStop(
                    RunStatus.FAILED,
                    "The final answer is not the JSON the agent's output schema asks for.",
                    "bad_output",
                ) from None
            errors = list(Draft202012Validator(schema).iter_errors(output))
            if errors:
                raise RunStop(
                    RunStatus.FAILED,
                    f"The final answer does not match the agent's output schema: {errors[0].message}.",
                    "bad_output",
                )
        run_finish(run=self.run, status=RunStatus.SUCCEEDED, output=output)

    # --- loading and rebuilding the conversation --------------------------------------------------

    def _load(self) -> None:
        self.steps = (
            list(Step.objects.filter(run=self.run).select_related("approval").order_by("index"))
            if self.run.step_count or self.run.recoveries or self.run.model_calls
            else []  # a new run has no steps yet (step_count counts every step as it ends)
        )
        self._bind_tools()
        self.messages = self._opening_messages()
        if self.run.recoveries:
            # A killed worker may have died with finished steps' spans still in its export batch:
            # write them again (the store skips the ones it already has).
            for step in self.steps:
                if step.finished_at is not None:
                    telemetry.step_span(self.run, step)
        for step in self.steps:
            if step.kind == StepKind.MODEL and step.status == StepStatus.STARTED:
                # The worker died during the call: its answer is lost, so it is made again.
                self._step_end(step, StepStatus.FAILED, error="The worker stopped during this call; it was made again.")
            self._replay(step)

    def _replay(self, step: Step) -> None:
        if step.kind == StepKind.MODEL and step.status == StepStatus.SUCCEEDED:
            out = step.output or {}
            calls = [ToolCall(c["id"], c["name"], c["arguments"]) for c in out.get("tool_calls", [])]
            self.messages.append({"role": "assistant", "content": out.get("text") or "", "tool_calls": calls})
        elif step.call_id and step.status in TERMINAL_STEP:
            self.messages.append({"role": "tool", "tool_call_id": step.call_id, "content": self._result_text(step)})

    def _result_text(self, step: Step) -> str:
        if step.status == StepStatus.SUCCEEDED:
            return fence(_clip(step.output), source=f"tool {step.name}")
        return fence({"error": step.error}, source=f"tool {step.name}")

    def _opening_messages(self) -> list[dict]:
        system = self._system_prompt() + "\n\n" + FENCE_RULE
        messages = [{"role": "system", "content": system}]
        messages.extend(self._session_history(len(system)))
        messages.append({"role": "user", "content": fence(self.run.input, source="user input")})
        return messages

    def _system_prompt(self) -> str:
        from apps.prompts.models import PromptVersion
        from apps.prompts.specs import prompt_render

        prompt = self.spec.get("prompt") or {}
        if prompt.get("inline"):
            return prompt["inline"]
        version = PromptVersion.objects.filter(pk=self.spec.get("_prompt_version_id")).first()
        if version is None:
            raise RunStop(RunStatus.FAILED, "The agent's prompt version no longer exists.", "prompt_missing")
        try:
            return prompt_render(spec=version.spec, variables=prompt.get("variables") or {})
        except ServiceError as exc:
            raise RunStop(RunStatus.FAILED, f"The prompt cannot be rendered: {exc.message}", "prompt_error") from None

    def _session_history(self, used_chars: int) -> list[dict]:
        if self.run.session_id is None:
            return []
        window = (self.spec.get("memory") or {}).get("session_window_turns", 20)
        if not window:
            return []
        earlier = list(
            Run.objects.filter(session_id=self.run.session_id, status=RunStatus.SUCCEEDED, pk__lt=self.run.pk)
            .order_by("-pk")
            .values_list("input", "output")[:window]
        )
        # Keep the newest turns that fit in half the model's context window (4 characters per token).
        budget = self.model.context_window * 4 // 2 - used_chars
        turns = []
        for value, output in earlier:
            pair = [
                {"role": "user", "content": fence(value, source="earlier user input")},
                {"role": "assistant", "content": as_text(output)},
            ]
            size = sum(len(m["content"]) for m in pair)
            if size > budget:
                break
            budget -= size
            turns[:0] = pair
        return turns

    def _bind_tools(self) -> None:
        for tv in _tool_versions(tuple(self.spec.get("_tool_version_ids", []))):
            spec = tv.spec
            config = spec.get("config") or {}
            binding = Binding(
                model_name=tool_name_for_model(tv.tool.name),
                registry_name=tv.tool.name,
                kind=spec["kind"],
                description=spec.get("description", ""),
                parameters=spec.get("parameters") or {"type": "object", "properties": {}},
                tool_version=tv,
                side_effect=spec.get("side_effect") == "write",
                requires_approval=bool(spec.get("requires_approval")),
                cost_per_call=float(spec.get("cost_per_call") or 0),
                rate_limit=spec.get("rate_limit") or {},
                rate_key=str(tv.tool_id),
                target_agent=config.get("agent", ""),
                operation=config.get("operation", ""),
                space=config.get("space", ""),
            )
            self.bindings[binding.model_name] = binding
        from apps.agents.models import Agent

        for target in Agent.objects.filter(pk__in=self.spec.get("_handoff_agent_ids", [])):
            name = tool_name_for_model(f"handoff_to_{target.name}")
            self.bindings[name] = Binding(
                model_name=name,
                registry_name=f"handoff_to_{target.name}",
                kind="agent_handoff",
                description=f"Hand the task to agent {target.name}: {target.description[:300]}",
                parameters={
                    "type": "object",
                    "properties": {"input": {"description": f"The input for {target.name}."}},
                    "required": ["input"],
                },
                target_agent=target.name,
            )
        spaces = (self.spec.get("memory") or {}).get("context_spaces") or []
        if spaces:
            from apps.context.tools import context_agent_access, context_tool_schemas

            # Only the spaces both the spec asks for and a builder granted (the tool checks again per call).
            access = context_agent_access(agent=self.agent, spec_spaces=spaces)
            names = list(access)
            writable = [name for name, level in access.items() if level == "write"]
            for schema in context_tool_schemas(names, writable):
                self.bindings[schema["name"]] = Binding(
                    model_name=schema["name"],
                    registry_name=schema["name"].replace("_", ".", 1),
                    kind="context_builtin",
                    description=schema["description"],
                    parameters=schema["parameters"],
                    side_effect=schema["name"] in {"context_write", "context_record_decision"},
                    operation=schema["name"].split("_", 1)[1],
                )

    def _tool_schemas(self) -> list[ToolSchema]:
        return [ToolSchema(b.model_name, b.description, b.parameters) for b in self.bindings.values()]

    # --- steps ------------------------------------------------------------------------------------

    def _last_model_step(self) -> Step | None:
        for step in reversed(self.steps):
            if step.kind == StepKind.MODEL and step.status == StepStatus.SUCCEEDED:
                return step
        return None

    def _pending_calls(self, last: Step | None) -> list[ToolCall]:
        if last is None:
            return []
        done = {s.call_id for s in self.steps if s.index > last.index and s.status in TERMINAL_STEP}
        return [
            ToolCall(c["id"], c["name"], c["arguments"])
            for c in last.output.get("tool_calls", [])
            if c["id"] not in done
        ]

    def _step_for_call(self, call_id: str) -> Step | None:
        last = self._last_model_step()
        for step in self.steps:
            if step.call_id == call_id and last is not None and step.index > last.index:
                return step
        return None

    def _step_begin(self, **fields) -> Step:
        """Write a step as started (committed before its side effect) and return it."""
        index = len(self.steps)
        step = Step(
            run=self.run,
            index=index,
            started_at=timezone.now(),
            span_id=telemetry.step_span_id(self.run, index),
            **fields,
        )
        if connection.vendor == "postgresql":
            _step_insert_postgresql(step)
        else:
            step.save(force_insert=True)
        self.steps.append(step)
        return step

    def _step_end(
        self, step: Step, status: str, *, output=None, error: str = "", cost=Decimal(0), tokens=(0, 0), span=None
    ):
        """Write a step's result and add its tokens and cost to the run and budgets, in one transaction.

        Then write its span (`span` overrides the span's times, e.g. an approval's wait).
        """
        now = timezone.now()
        step.status, step.output, step.error, step.finished_at = status, output, error[:5000], now
        step.latency_ms = int((now - step.started_at).total_seconds() * 1000)
        step.cost_usd, (step.tokens_in, step.tokens_out) = cost, tokens
        model_call = step.kind == StepKind.MODEL and status == StepStatus.SUCCEEDED
        if connection.vendor == "postgresql":
            self.cancel_requested = _step_end_postgresql(self.run, step, cost, tokens, model_call)
        else:
            with transaction.atomic():
                step.save(update_fields=STEP_RESULT_FIELDS)
                self.cancel_requested = _run_add(self.run.pk, tokens, cost, 1 if model_call else 0)
                limits.spend_add(run=self.run, cost=cost)
        self.run.tokens_in += tokens[0]
        self.run.tokens_out += tokens[1]
        self.run.cost_usd += cost
        self.run.step_count += 1
        self.run.model_calls += 1 if model_call else 0
        telemetry.step_span(self.run, step, **(span or {}))

    def _stop(self, stop: limits.LimitStop, name: str) -> None:
        step = self._step_begin(kind=StepKind.LIMIT, name=name, input={"limit": stop.code})
        self._step_end(step, StepStatus.REFUSED, error=stop.message)
        raise RunStop(stop.status, stop.message, stop.code)

    # --- model calls ------------------------------------------------------------------------------

    def _model_step(self) -> None:
        from .providers import model_complete

        estimate = limits.estimate_tokens(self.messages)
        stop = limits.check_before_model_call(
            run=self.run, agent=self.agent, team=self.team, estimated_cost=limits.cost_of(self.model, estimate, 0)
        )
        if stop is not None:
            self._stop(stop, self.model.ref)
        lim = limits.run_limits(self.run)
        room = lim.get("max_tokens", 50_000) - self.run.tokens_in - self.run.tokens_out
        tools = self._tool_schemas()
        step = self._step_begin(
            kind=StepKind.MODEL,
            name=self.model.ref,
            input={"messages": len(self.messages), "tools": [t.name for t in tools], "estimated_tokens": estimate},
        )
        remaining = lim.get("max_wall_seconds", 300) - (timezone.now() - self.run.started_at).total_seconds()
        request = ModelRequest(
            model=self.model.name,
            messages=self.messages,
            tools=tools,
            max_tokens=max(1, min(self.model.max_output_tokens, room)),
            timeout_s=max(1.0, min(float(self.model.provider.timeout_seconds), remaining)),
            max_retries=self.model.provider.max_retries,
            simulation=self.spec.get("simulation"),
            run_input=self.run.input,
        )
        try:
            response = model_complete(model=self.model, request=request)
        except ProviderError as exc:
            self._step_end(step, StepStatus.FAILED, error=exc.message)
            raise RunStop(RunStatus.FAILED, f"The model call failed: {exc.message}", "provider_error") from None
        cost = limits.cost_of(self.model, response.input_tokens, response.output_tokens)
        calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls]
        output = {"text": response.text or "", "tool_calls": calls, "finish_reason": response.finish_reason}
        if response.simulated:
            output["simulated"] = True
        self._step_end(
            step, StepStatus.SUCCEEDED, output=output, cost=cost, tokens=(response.input_tokens, response.output_tokens)
        )
        self.messages.append({"role": "assistant", "content": response.text or "", "tool_calls": response.tool_calls})

    # --- tool calls -------------------------------------------------------------------------------

    def _previous_calls(self) -> list[tuple[str, str]]:
        return [
            (s.name, json.dumps(s.input, sort_keys=True, default=str))
            for s in self.steps
            if s.kind in {StepKind.TOOL, StepKind.HANDOFF} and s.input is not None
        ]

    def _handle_call(self, call: ToolCall) -> None:
        binding = self.bindings.get(call.name)
        step = self._step_for_call(call.id)
        if step is None:
            verdict = decide.tool_call_decide(
                run=self.run,
                agent=self.agent,
                team=self.team,
                binding=binding,
                name=binding.registry_name if binding else call.name,
                arguments=call.arguments,
                previous_calls=self._previous_calls(),
            )
            kind = StepKind.HANDOFF if binding and binding.kind == "agent_handoff" else StepKind.TOOL
            fields = dict(
                kind=kind,
                name=binding.registry_name if binding else call.name,
                call_id=call.id,
                input=call.arguments,
                tool_version=binding.tool_version if binding else None,
                side_effect=bool(binding and binding.side_effect),
            )
            if verdict.action == decide.STOP:
                step = self._step_begin(**fields)
                self._step_end(step, StepStatus.REFUSED, error=verdict.message)
                raise RunStop(verdict.stop.status, verdict.message, verdict.code)
            if verdict.action == decide.REFUSE:
                step = self._step_begin(**fields)
                self._step_end(step, StepStatus.REFUSED, error=verdict.message)
                self._replay(step)
                return
            step = self._step_begin(**fields, idempotency_key=f"{self.run.pk}:{len(self.steps)}")
            if verdict.action == decide.APPROVE:
                self._ask_person(step, ApprovalKind.TOOL_CALL, verdict.message)
            self._run_tool(step, binding)
            return
        if step.status == StepStatus.STARTED:
            if step.side_effect and step.kind == StepKind.TOOL:
                # It may have run before the worker died: never repeat it without a person's decision.
                self._ask_person(
                    step,
                    ApprovalKind.UNCERTAIN,
                    "The worker stopped during this side-effecting call: it may or may not have happened.",
                    status=StepStatus.UNCERTAIN,
                )
            self._run_tool(step, binding)
            return
        approval = getattr(step, "approval", None)
        if approval is None:
            raise RunStop(RunStatus.FAILED, f"Step {step.index} waits for a decision that does not exist.", "corrupt")
        approval.refresh_from_db()
        if approval.status == ApprovalStatus.PENDING:
            raise Pause()
        self._record_decision(step, approval)
        if approval.status == ApprovalStatus.EXPIRED:
            self._step_end(step, StepStatus.REJECTED, error="Nobody decided in time: the approval expired.")
            raise RunStop(
                RunStatus.FAILED,
                f"The approval for {step.name} expired at {approval.expires_at:%Y-%m-%d %H:%M} UTC before anyone "
                "decided.",
                "approval_expired",
            )
        who = approval.decided_by.username if approval.decided_by else "an operator"
        if approval.kind == ApprovalKind.UNCERTAIN:
            if approval.decision == UncertainChoice.ASSUME_DONE:
                self._step_end(
                    step,
                    StepStatus.SUCCEEDED,
                    output={"note": f"{who} confirmed the call ran; its result was not recorded."},
                )
                self._replay(step)
                return
            if approval.decision == UncertainChoice.FAIL or approval.status == ApprovalStatus.REJECTED:
                self._step_end(step, StepStatus.REJECTED, error=f"{who} stopped the run: {approval.comment}")
                raise RunStop(
                    RunStatus.FAILED, f"Stopped by {who} after an uncertain call of {step.name}.", "uncertain"
                )
            self._run_tool(step, binding)  # retry with the same idempotency key
            return
        if approval.status == ApprovalStatus.REJECTED:
            self._step_end(step, StepStatus.REJECTED, error=f"Rejected by {who}: {approval.comment}")
            self._replay(step)
            return
        self._run_tool(step, binding)

    def _record_decision(self, step: Step, approval: Approval) -> None:
        """Put the person's decision on the timeline as its own step (once, however often the run resumes)."""
        if any(s.kind == StepKind.APPROVAL and (s.input or {}).get("approval") == approval.pk for s in self.steps):
            return
        decided = self._step_begin(
            kind=StepKind.APPROVAL,
            name=step.name,
            input={"approval": approval.pk, "step": step.index, "kind": approval.kind},
        )
        who = approval.decided_by.username if approval.decided_by else None
        self._step_end(
            decided,
            StepStatus.SUCCEEDED if approval.status == ApprovalStatus.APPROVED else StepStatus.REJECTED,
            output={
                "status": approval.status,
                "decision": approval.decision,
                "decided_by": who,
                "comment": approval.comment,
            },
            span={"started": approval.created_at, "ended": approval.decided_at or decided.started_at},
        )

    def _ask_person(self, step: Step, kind: str, reason: str, status: str = StepStatus.WAITING) -> None:
        from .services import approval_expiry

        with transaction.atomic():
            step.status = status
            step.save(update_fields=["status"])
            Approval.objects.create(
                team=self.team,
                run=self.run,
                step=step,
                kind=kind,
                tool_name=step.name,
                arguments=step.input or {},
                reason_required=reason[:300],
                expires_at=approval_expiry(),
            )
        raise Pause()

    def _run_tool(self, step: Step, binding: Binding | None) -> None:
        if binding is None:
            self._step_end(step, StepStatus.FAILED, error=f"Tool {step.name} is no longer part of this run.")
            self._replay(step)
            return
        if step.status != StepStatus.STARTED:
            step.status = StepStatus.STARTED
            step.started_at = timezone.now()
            step.save(update_fields=["status", "started_at"])
        cost = Decimal(str(binding.cost_per_call))
        try:
            output = self._dispatch(step, binding)
        except ToolError as exc:
            self._step_end(step, StepStatus.FAILED, error=exc.message, cost=cost)
        else:
            self._step_end(step, StepStatus.SUCCEEDED, output=output, cost=cost)
        self._replay(step)

    def _context(self, step: Step, binding: Binding) -> ToolCallContext:
        lim = limits.run_limits(self.run)
        elapsed = (timezone.now() - self.run.started_at).total_seconds()
        tool_id = binding.tool_version.tool_id if binding.tool_version is not None else None

        def secret(name: str) -> str:
            from apps.governance.models import GranteeType
            from apps.governance.selectors import secret_resolve
            from apps.governance.services import secret_read_for_use

            if name not in (binding.tool_version.spec.get("secrets") or []):
                raise ToolError(f"Tool {binding.registry_name} does not declare the secret {name}.")
            try:
                found = secret_resolve(team=self.team, name=name)
                return secret_read_for_use(
                    secret=found, grantee_type=GranteeType.TOOL, grantee_id=tool_id, purpose=f"run {self.run.pk}"
                )
            except ServiceError as exc:
                raise ToolError(exc.message, code="secret_unavailable") from None

        return ToolCallContext(
            team_id=self.team.pk,
            run_id=self.run.pk,
            step_index=step.index,
            agent_id=self.agent.pk,
            tool_version_id=binding.tool_version.pk if binding.tool_version is not None else None,
            idempotency_key=step.idempotency_key,
            deadline=time.monotonic() + max(0.0, lim.get("max_wall_seconds", 300) - elapsed),
            secret=secret,
        )

    def _dispatch(self, step: Step, binding: Binding):
        arguments = step.input or {}
        if binding.kind == "agent_handoff":
            return self._handoff(step, binding)
        if binding.kind in {"context", "context_builtin"}:
            from apps.context.tools import context_tool_execute

            if binding.kind == "context":
                arguments = {**arguments, "space": binding.space}
            return context_tool_execute(
                agent=self.agent,
                spec_spaces=(self.spec.get("memory") or {}).get("context_spaces") or [],
                operation=binding.operation,
                arguments=arguments,
                run_id=self.run.pk,
                actor_label=f"agent:{self.agent.name}",
            )
        executor = _executor(binding.kind)
        return executor(spec=binding.tool_version.spec, arguments=arguments, ctx=self._context(step, binding))

    def _handoff(self, step: Step, binding: Binding):
        from apps.agents.models import Agent

        from .services import run_start_child

        child = Run.objects.filter(pk=step.child_run_id).first() if step.child_run_id else None
        if child is None:
            if self.run.depth + 1 > settings.FLEETDECK_MAX_HANDOFF_DEPTH:
                raise ToolError(
                    f"Handoffs may nest {settings.FLEETDECK_MAX_HANDOFF_DEPTH} deep (FLEETDECK_MAX_HANDOFF_DEPTH); "
                    "this one would go deeper. Answer without handing off.",
                    code="handoff_depth",
                )
            target = Agent.objects.filter(team=self.team, name=binding.target_agent).first()
            if target is None:
                raise ToolError(f"There is no agent {binding.target_agent} in this team.", code="handoff_missing")
            chain, ancestor = {self.agent.pk}, self.run.parent
            while ancestor is not None:
                chain.add(ancestor.agent_id)
                ancestor = ancestor.parent
            if target.pk in chain:
                raise ToolError(
                    f"Handing off to {target.name} would make a cycle: it is already working on this task "
                    "further up. Answer without handing off.",
                    code="handoff_cycle",
                )
            try:
                child = run_start_child(parent=self.run, agent=target, input=step.input.get("input"))
            except ServiceError as exc:
                raise ToolError(exc.message, code=exc.code) from None
            step.child_run = child
            step.save(update_fields=["child_run"])
        if not child.finished:
            claimed = _claim(child.pk, self.worker)
            if claimed is not None:
                Engine(claimed, self.worker).execute()
            child.refresh_from_db()
        if child.status == RunStatus.SUCCEEDED:
            return child.output
        if not child.finished:
            raise Pause()  # the child waits for a person; its end wakes this run
        raise ToolError(f"Agent {child.agent.name} did not finish: {child.get_status_display()}: {child.error}")


STEP_RESULT_FIELDS = ["status", "output", "error", "finished_at", "latency_ms", "cost_usd", "tokens_in", "tokens_out"]


def _step_insert_postgresql(step: Step) -> None:
    """Insert a started step with one plain statement (the ORM's insert costs more Python than the round trip)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Step._meta.db_table} (run_id, index, kind, name, status, call_id, tool_version_id,
                side_effect, idempotency_key, input, output, error, tokens_in, tokens_out, cost_usd, child_run_id,
                span_id, started_at, finished_at, latency_ms)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, NULL, '', 0, 0, 0, NULL, %s, %s, NULL, NULL)
            RETURNING id
            """,  # noqa: S608 - our own table name
            [
                step.run_id,
                step.index,
                step.kind,
                step.name,
                step.status,
                step.call_id,
                step.tool_version_id,
                step.side_effect,
                step.idempotency_key,
                None if step.input is None else json.dumps(step.input),
                step.span_id,
                step.started_at,
            ],
        )
        step.pk = cursor.fetchone()[0]
    step._state.adding = False
    step._state.db = "default"


def _step_end_postgresql(run: Run, step: Step, cost: Decimal, tokens: tuple[int, int], model_call: bool) -> bool:
    """Write a step's result, the run's totals and the spend counters in one statement; return the cancel flag.

    Every step ends here, so one round trip instead of six (BEGIN, three updates, COMMIT) matters:
    PostgreSQL runs the data-modifying CTEs atomically as one statement.
    """
    day, month = limits.spend_periods(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH step AS (
                UPDATE {Step._meta.db_table} SET status = %s, output = %s::jsonb, error = %s, finished_at = %s,
                    latency_ms = %s, cost_usd = %s, tokens_in = %s, tokens_out = %s
                WHERE id = %s
            ), spend AS (
                UPDATE {SpendCounter._meta.db_table} SET cost_usd = cost_usd + %s
                WHERE %s > 0 AND team_id = %s AND (
                    (agent_id = %s AND period = 'day' AND period_start = %s)
                    OR (agent_id IS NULL AND period = 'month' AND period_start = %s))
                RETURNING id
            )
            UPDATE {Run._meta.db_table} SET tokens_in = tokens_in + %s, tokens_out = tokens_out + %s,
                cost_usd = cost_usd + %s, step_count = step_count + 1, model_calls = model_calls + %s
            WHERE id = %s
            RETURNING cancel_requested, (SELECT count(*) FROM spend)
            """,  # noqa: S608 - our own table names
            [
                step.status,
                None if step.output is None else json.dumps(step.output),
                step.error,
                step.finished_at,
                step.latency_ms,
                cost,
                tokens[0],
                tokens[1],
                step.pk,
                cost,
                cost,
                run.team_id,
                run.agent_id,
                day,
                month,
                tokens[0],
                tokens[1],
                cost,
                1 if model_call else 0,
                run.pk,
            ],
        )
        cancel_requested, counters = cursor.fetchone()
    if cost and counters < 2:
        limits.spend_create_missing(run=run, cost=cost)
    return bool(cancel_requested)


def _run_add(run_id: int, tokens: tuple[int, int], cost: Decimal, model_calls: int) -> bool:
    """Add a step's tokens and cost to the run's totals; return whether someone asked to cancel it.

    One statement with RETURNING (PostgreSQL, SQLite 3.35+) instead of an update and a read: it runs
    for every step.
    """
    table = Run._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET tokens_in = tokens_in + %s, tokens_out = tokens_out + %s, "  # noqa: S608 - our table
            "cost_usd = cost_usd + %s, step_count = step_count + 1, model_calls = model_calls + %s "
            "WHERE id = %s RETURNING cancel_requested",
            [tokens[0], tokens[1], cost, model_calls, run_id],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def _tool_versions(ids: tuple[int, ...]):
    """Return the tool versions with their tools."""
    from apps.tools.models import ToolVersion

    return ToolVersion.objects.select_related("tool").filter(pk__in=ids)


def _executor(kind: str):
    if kind == "http":
        from .executors.http import execute
    elif kind == "python":
        from .executors.sandbox import execute
    elif kind == "mcp":
        from .executors.mcp import execute
    else:
        raise ToolError(f"Tools of kind {kind} cannot run here.")
    return execute


def _clip(value):
    text = as_text(value)
    if len(text) > MAX_RESULT_CHARS:
        return text[:MAX_RESULT_CHARS] + f"... [{len(text) - MAX_RESULT_CHARS} more characters cut]"
    return value
