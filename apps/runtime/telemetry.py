"""The runtime's spans, opened in this one place (STYLE.md 9): a span per run and one per step.

Each step's span is written when the step ends and each run's when the run ends (a run may pause
for days and move between workers), with ids derived from the run so they are the same in any
process: `Step.span_id` holds the step's. A child run's span hangs under its parent's handoff
step, so one trace shows the whole hand-off chain. Attributes follow the OpenTelemetry GenAI
semantic conventions plus the platform's own `fleetdeck.*` ones; message content is not put on
spans (the run's steps keep it, behind the run's permissions).
"""

from __future__ import annotations

import hashlib

from opentelemetry.trace import SpanKind

from apps.observability.tracing import TEAM_ATTRIBUTE, emit_span

from .models import Run, RunStatus, Step, StepKind, StepStatus

_STEP_OPERATION = {
    StepKind.MODEL: "chat",
    StepKind.TOOL: "execute_tool",
    StepKind.HANDOFF: "execute_tool",
    StepKind.APPROVAL: "approval",
    StepKind.GUARDRAIL: "guardrail",
    StepKind.LIMIT: "limit",
}
_ERROR_STATUSES = {StepStatus.FAILED, StepStatus.REFUSED, StepStatus.REJECTED, StepStatus.UNCERTAIN}


def _derive(*parts) -> str:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:16]
    return digest if digest != "0" * 16 else "1" * 16


def run_span_id(run: Run) -> str:
    return _derive(run.trace_id, run.pk, "run")


def step_span_id(run: Run, index: int) -> str:
    return _derive(run.trace_id, run.pk, "step", index)


def _ns(moment) -> int:
    return int(moment.timestamp() * 1_000_000) * 1000


def _base(run: Run) -> dict:
    return {
        TEAM_ATTRIBUTE: run.team_id,
        "fleetdeck.agent.id": run.agent_id,
        "gen_ai.agent.name": run.agent.name,
        "gen_ai.agent.id": str(run.agent_id),
        "fleetdeck.agent.version": "draft" if run.is_draft else (run.spec.get("_version") or ""),
        "fleetdeck.run.id": run.pk,
    }


def step_span(run: Run, step: Step, *, tool_cost_usd=None, started=None, ended=None) -> None:
    """Write the span of a step that has ended (`started`/`ended` override its times, e.g. an approval's wait)."""
    operation = _STEP_OPERATION.get(step.kind, step.kind)
    attributes = {
        **_base(run),
        "gen_ai.operation.name": operation,
        "fleetdeck.step.index": step.index,
        "fleetdeck.step.kind": step.kind,
        "fleetdeck.step.status": step.status,
    }
    kind = SpanKind.INTERNAL
    if step.kind == StepKind.MODEL:
        name = f"chat {run.model.name}"
        kind = SpanKind.CLIENT
        attributes.update(
            {
                "gen_ai.provider.name": run.model.provider.name,
                "gen_ai.request.model": run.model.name,
                "fleetdeck.model.ref": run.model.ref,
                "gen_ai.usage.input_tokens": step.tokens_in,
                "gen_ai.usage.output_tokens": step.tokens_out,
            }
        )
        finish = (step.output or {}).get("finish_reason") if isinstance(step.output, dict) else None
        if finish:
            attributes["gen_ai.response.finish_reasons"] = [str(finish)]
    elif step.kind in {StepKind.TOOL, StepKind.HANDOFF}:
        name = f"execute_tool {step.name}"
        attributes.update({"gen_ai.tool.name": step.name, "gen_ai.tool.type": "function"})
        if step.call_id:
            attributes["gen_ai.tool.call.id"] = step.call_id
        if step.tool_version_id:
            attributes["fleetdeck.tool.version_id"] = step.tool_version_id
        if step.child_run_id:
            attributes["fleetdeck.child_run.id"] = step.child_run_id
        # A refused call never ran, so it cost nothing; a tool that ran costs its price per call.
        attributes["fleetdeck.tool.cost_usd"] = str(step.cost_usd if tool_cost_usd is None else tool_cost_usd)
    else:
        name = f"{operation} {step.name}".strip()
    emit_span(
        name=name,
        trace_id=run.trace_id,
        span_id=step.span_id or step_span_id(run, step.index),
        parent_span_id=run_span_id(run),
        start_ns=_ns(started or step.started_at),
        end_ns=_ns(ended or step.finished_at or step.started_at),
        kind=kind,
        attributes=attributes,
        ok=step.status not in _ERROR_STATUSES,
        error=step.error or None if step.status in _ERROR_STATUSES else None,
    )


def run_span(run: Run) -> None:
    """Write the span of a run that has ended, under its parent's handoff step for a child run."""
    parent_span = ""
    if run.parent_id:
        parent_span = Step.objects.filter(child_run_id=run.pk).values_list("span_id", flat=True).first() or ""
    attributes = {
        **_base(run),
        "gen_ai.operation.name": "invoke_agent",
        "fleetdeck.run.status": run.status,
        "fleetdeck.run.trigger": run.trigger,
        "fleetdeck.run.error_code": run.error_code or None,
        "fleetdeck.run.steps": run.step_count,
        "fleetdeck.run.cost_usd": str(run.cost_usd),
        "fleetdeck.run.input_tokens": run.tokens_in,
        "fleetdeck.run.output_tokens": run.tokens_out,
        "fleetdeck.run.simulated": run.simulated,
    }
    start = run.started_at or run.created_at
    emit_span(
        name=f"invoke_agent {run.agent.name}",
        trace_id=run.trace_id,
        span_id=run_span_id(run),
        parent_span_id=parent_span,
        start_ns=_ns(start),
        end_ns=_ns(run.finished_at or start),
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        ok=run.status == RunStatus.SUCCEEDED,
        error=run.error if run.status != RunStatus.SUCCEEDED else None,
        link_traceparent=run.origin_traceparent,
    )
