"""The one decision point every tool call passes before it runs.

In order: is it a tool of this run, do its arguments match the tool's schema, would it break a
limit (loop breaker, wall time, cost and budgets, the tool's rate limit), and does a person have
to approve it (the tool requires approval, or it writes and the agent's risk tier is high or
critical). The governance issue adds policies and guardrails here, and nowhere else.
Permission labels a tool declares (permissions_required) are shown in the inventory; which
agents may hold which label becomes a policy here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from jsonschema import Draft202012Validator

from . import limits

ALLOW, REFUSE, APPROVE, STOP = "allow", "refuse", "approve", "stop"
HIGH_RISK = {"high", "critical"}


@dataclass
class Decision:
    action: str
    message: str = ""
    code: str = ""
    stop: limits.LimitStop | None = None


def tool_call_decide(*, run, agent, team, binding, name: str, arguments, previous_calls: list) -> Decision:
    """Return whether the call may run now, needs a person, is refused (the model is told why) or stops the run."""
    if binding is None:
        return Decision(REFUSE, f"There is no tool named {name} in this run.", "unknown_tool")
    if not isinstance(arguments, dict) or "_raw" in arguments:
        return Decision(REFUSE, f"The arguments for {name} must be a JSON object matching its parameters.", "bad_json")
    errors = sorted(Draft202012Validator(binding.parameters).iter_errors(arguments), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path)
        return Decision(
            REFUSE,
            f"The arguments for {name} do not match its parameters{' at ' + where if where else ''}: "
            f"{errors[0].message}. Call it again with valid arguments.",
            "bad_arguments",
        )
    stop = (
        limits.loop_breaker(previous_calls=previous_calls, name=name, arguments=arguments)
        or limits.check_wall(run)
        or limits.check_cost(run=run, agent=agent, team=team, extra=Decimal(str(binding.cost_per_call)))
    )
    if stop is not None:
        return Decision(STOP, stop.message, stop.code, stop)
    rate = binding.rate_limit
    if rate and rate.get("calls"):
        key = f"tool:{binding.rate_key}"
        if limits.rate_limit_hit(key=key, calls=rate["calls"], per_seconds=rate.get("per_seconds", 60)):
            stop = limits.LimitStop(
                "tool_rate_limit",
                f"Stopped: tool {binding.registry_name} allows {rate['calls']} calls per "
                f"{rate.get('per_seconds', 60)} s (its rate_limit), and that many were made.",
            )
            return Decision(STOP, stop.message, stop.code, stop)
    if binding.requires_approval:
        return Decision(APPROVE, f"Tool {binding.registry_name} requires approval for every call.", "requires_approval")
    if binding.side_effect and agent.risk_tier in HIGH_RISK:
        return Decision(
            APPROVE,
            f"Tool {binding.registry_name} changes things and agent {agent.name} is {agent.risk_tier} risk: "
            "a person approves each such call.",
            "high_risk_write",
        )
    return Decision(ALLOW)
