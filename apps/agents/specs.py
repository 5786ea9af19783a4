"""The agent spec: what a version of an agent is. The same document the API, the Studio and spec files use.

model: "<provider>/<model>"                 # from the catalog; approved models only for new versions
prompt: {ref: "<prompt>@<version|label>"} or {inline: "..."}, with variables: {name: value}
tools: ["<tool>@<version>", ...]           # pinned; a bare name pins the latest version at publish
handoffs: ["<agent>", ...]                 # agents of the same team it may hand work to
memory: {session_window_turns, context_spaces: [{space, access: read|write}]}
limits: {max_steps, max_tokens, max_cost_usd, max_wall_seconds}
input_schema, output_schema: JSON Schemas
secrets: ["<secret name>", ...]             # granted to the agent itself
simulation: {script: [...], default_answer}  # what the built-in simulated model answers (see simulation.py)
"""

from __future__ import annotations

import re

from apps.catalog.simulation import SIMULATION_FIELDS
from apps.core.exceptions import ServiceError
from apps.core.specs import SpecField, check_json_schema, non_negative, positive, validate_spec

NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")


def _names(kind: str):
    def check(values):
        seen = set()
        for value in values:
            if not isinstance(value, str) or not NAME_RE.match(value.split("@")[0]):
                raise ServiceError(f"'{value}' is not a valid {kind} reference.")
            if value.split("@")[0] in seen:
                raise ServiceError(f"{kind} '{value.split('@')[0]}' is listed twice.")
            seen.add(value.split("@")[0])
        return values

    return check


def _between(low, high):
    def check(value):
        if not low <= value <= high:
            raise ServiceError(f"must be between {low} and {high}.")
        return value

    return check


def _prompt(value):
    if bool(value.get("ref")) == bool(value.get("inline")):
        raise ServiceError("give either ref (a prompt from the registry) or inline instructions, not both or neither.")
    return value


def _spaces(values):
    for i, item in enumerate(values):
        item = validate_spec(
            item,
            [
                SpecField("space", str, required=True, max_length=63),
                SpecField("access", str, default="read", choices=["read", "write"]),
            ],
            f"context_spaces[{i}]",
        )
        values[i] = item
    return values


AGENT_SPEC = [
    SpecField("model", str, required=True, max_length=200, help="name a model from the catalog as provider/model."),
    SpecField(
        "prompt",
        dict,
        required=True,
        check=_prompt,
        fields=[
            SpecField("ref", str, max_length=200),
            SpecField("inline", str, max_length=100_000),
            SpecField("variables", dict, default=dict),
        ],
    ),
    SpecField("tools", list, default=list, item_type=str, max_length=64, check=_names("tool")),
    SpecField("handoffs", list, default=list, item_type=str, max_length=16, check=_names("agent")),
    SpecField(
        "memory",
        dict,
        fields=[
            SpecField("session_window_turns", int, default=20, check=_between(0, 200)),
            SpecField("context_spaces", list, default=list, max_length=16, check=_spaces),
        ],
    ),
    SpecField(
        "limits",
        dict,
        fields=[
            SpecField("max_steps", int, default=10, check=_between(1, 200)),
            SpecField("max_tokens", int, default=50_000, check=_between(1, 10_000_000)),
            SpecField("max_cost_usd", float, default=1.0, check=non_negative),
            SpecField("max_wall_seconds", int, default=300, check=positive),
        ],
    ),
    SpecField("input_schema", dict, default=lambda: {"type": "object"}, check=check_json_schema),
    SpecField("output_schema", dict, default=lambda: {"type": "string"}, check=check_json_schema),
    SpecField("secrets", list, default=list, item_type=str, max_length=32, check=_names("secret")),
    SpecField("simulation", dict, check=lambda value: validate_spec(value, SIMULATION_FIELDS)),
]


def agent_spec_validate_shape(spec) -> dict:
    """Return the spec checked for keys, types and ranges (not yet its references), normalised."""
    return validate_spec(spec, AGENT_SPEC)


def agent_spec_empty() -> dict:
    """Return the draft a new agent starts with (not yet valid: it names no model or prompt)."""
    return {"model": "", "prompt": {"inline": "", "variables": {}}, "tools": [], "handoffs": []}
