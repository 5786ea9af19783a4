"""The built-in context tools the runtime engine offers to agents: search, read, write, record a decision.

The engine asks `context_agent_access(agent=..., spec_spaces=...)` (re-exported here) which spaces
an agent may use, offers `context_tool_schemas(spaces, writable)` to the model, and runs each call
with `context_tool_execute(...)`. Every call checks again that the spec lists the space and a grant
allows it (grants may be revoked mid-run); refusals and bad arguments raise ToolError with a message
the model and the operator can act on. Writes are audited as "agent:<name>" with the run id.
"""

from __future__ import annotations

import copy

import jsonschema

from apps.core.exceptions import ServiceError
from apps.runtime.executors.base import ToolError, clip_text

from . import selectors, services
from .models import Access, EntryKind
from .selectors import context_agent_access as context_agent_access  # re-exported for the engine

READ_CHUNK = 20_000
LIST_LIMIT = 100
RECENT_DECISIONS = 10
KEY_PROPERTY = {"type": "string", "minLength": 1, "maxLength": 100, "description": "The key, e.g. refund-policy."}
SPACE_PROPERTY = {"type": "string", "description": "The context space's name."}

CONTEXT_TOOL_SCHEMAS: dict[str, dict] = {
    "search": {
        "description": (
            "Search a shared context space's facts, documents and decisions by words. Returns the best matches with "
            "a snippet; read one by its key for the full text."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "space": SPACE_PROPERTY,
                "query": {"type": "string", "minLength": 1, "maxLength": 500, "description": "Words to look for."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 20, "description": "At most this many results."},
            },
            "required": ["space", "query"],
            "additionalProperties": False,
        },
    },
    "read": {
        "description": (
            "Read from a shared context space. With a key: the fact or document with that key (long documents come "
            "in parts: pass offset for the next part), or the state value with its version. Without a key: the "
            "space's keys and its recent decisions."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "space": SPACE_PROPERTY,
                "key": KEY_PROPERTY,
                "offset": {"type": "integer", "minimum": 0, "description": "Where to continue a long document."},
            },
            "required": ["space"],
            "additionalProperties": False,
        },
    },
    "write": {
        "description": (
            "Write to a shared context space. kind 'state' (the default) stores value (any JSON) under key: give "
            "expected_version, the version you read (0 for a new key), so that a change made meanwhile by someone "
            "else is refused instead of overwritten. kind 'fact' or 'document' stores body (text) under key."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "space": SPACE_PROPERTY,
                "key": KEY_PROPERTY,
                "kind": {"type": "string", "enum": ["state", "fact", "document"], "default": "state"},
                "value": {"description": "The state value (JSON)."},
                "expected_version": {"type": "integer", "minimum": 0, "description": "The state version you read."},
                "title": {"type": "string", "maxLength": 200, "description": "A fact's or document's title."},
                "body": {"type": "string", "description": "A fact's or document's text."},
            },
            "required": ["space", "key"],
            "additionalProperties": False,
        },
    },
    "record_decision": {
        "description": (
            "Append a decision to a shared context space's decision log: what was decided and why. Decisions are "
            "never edited; record a new one to change course."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "space": SPACE_PROPERTY,
                "title": {"type": "string", "minLength": 1, "maxLength": 200, "description": "What was decided."},
                "rationale": {"type": "string", "minLength": 1, "description": "Why."},
            },
            "required": ["space", "title", "rationale"],
            "additionalProperties": False,
        },
    },
}
# The names models see, and back: the engine maps a call of "context_search" to operation "search".
CONTEXT_TOOL_NAMES = {f"context_{op}": op for op in CONTEXT_TOOL_SCHEMAS}
WRITE_OPERATIONS = {"write", "record_decision"}


def context_tool_schemas(spaces: list[str], writable: list[str]) -> list[dict]:
    """Return the context tools to offer a model: [{name, description, parameters}].

    spaces are the spaces the agent may read, writable those it may also write (see
    context_agent_access); the space argument lists them as an enum. No spaces: no tools; no
    writable space: only search and read.
    """
    readable = sorted(set(spaces) | set(writable))
    writable = sorted(set(writable))
    tools = []
    for name, operation in CONTEXT_TOOL_NAMES.items():
        allowed = writable if operation in WRITE_OPERATIONS else readable
        if not allowed:
            continue
        schema = CONTEXT_TOOL_SCHEMAS[operation]
        parameters = copy.deepcopy(schema["parameters"])
        parameters["properties"]["space"] = {**SPACE_PROPERTY, "enum": allowed}
        tools.append({"name": name, "description": schema["description"], "parameters": parameters})
    return tools


def _check_arguments(operation: str, arguments) -> dict:
    if operation not in CONTEXT_TOOL_SCHEMAS:
        raise ToolError(
            f"Unknown context operation '{str(operation)[:40]}': use one of {', '.join(CONTEXT_TOOL_SCHEMAS)}.",
            code="invalid_arguments",
        )
    if not isinstance(arguments, dict):
        raise ToolError("The arguments must be a JSON object.", code="invalid_arguments")
    try:
        jsonschema.validate(arguments, CONTEXT_TOOL_SCHEMAS[operation]["parameters"])
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
        raise ToolError(
            f"Invalid arguments for context_{operation} at {where}: {exc.message}", code="invalid_arguments"
        ) from None
    return arguments


def context_tool_execute(
    *, agent, spec_spaces: list[dict], operation: str, arguments: dict, run_id: int | None, actor_label: str
) -> dict:
    """Run one context tool call for the agent and return its JSON-able result.

    spec_spaces is the run's agent version's memory.context_spaces; actor_label names the writer
    on entries and state (e.g. "agent:triage run 42"). Raise ToolError when the agent may not use
    the space, the arguments are wrong, or a state write conflicts (code "version_conflict").
    """
    arguments = _check_arguments(operation, arguments)
    need = Access.WRITE if operation in WRITE_OPERATIONS else Access.READ
    try:
        space = selectors.context_space_for_agent(
            agent=agent, spec_spaces=spec_spaces, name=arguments.get("space"), need=need
        )
        if operation == "search":
            return _search(space, arguments)
        if operation == "read":
            return _read(space, arguments)
        writer = services.AgentWriter(
            agent=agent, spec_spaces=list(spec_spaces or []), run_id=run_id, label=actor_label
        )
        if operation == "write":
            return _write(writer, space, arguments)
        entry = services.context_decision_record(
            actor=writer, space=space, title=arguments["title"], rationale=arguments["rationale"]
        )
        return {
            "space": space.name,
            "decision_id": entry.pk,
            "title": entry.title,
            "recorded_at": entry.created_at.isoformat(),
        }
    except services.VersionConflict as exc:
        raise ToolError(exc.message, code="version_conflict") from None
    except ServiceError as exc:
        code = "invalid_arguments" if exc.code == "invalid" else exc.code
        raise ToolError(exc.message, code=code) from None


def _search(space, arguments: dict) -> dict:
    results = selectors.context_search(space=space, query=arguments["query"], limit=arguments.get("limit", 5))
    return {
        "space": space.name,
        "query": arguments["query"],
        "results": [{**row, "updated_at": row["updated_at"].isoformat()} for row in results],
    }


def _read(space, arguments: dict) -> dict:
    key = arguments.get("key")
    if not key:
        return _overview(space)
    entry = selectors.context_entry_by_key(space=space, key=key)
    if entry is not None:
        offset = arguments.get("offset", 0)
        part = entry.body[offset : offset + READ_CHUNK]
        result = {
            "space": space.name,
            "key": entry.key,
            "kind": entry.kind,
            "title": entry.title,
            "body": part,
            "author": entry.author,
            "updated_at": entry.updated_at.isoformat(),
        }
        if offset + READ_CHUNK < len(entry.body):
            result["next_offset"] = offset + READ_CHUNK
            result["total_chars"] = len(entry.body)
        return result
    state = space.states.filter(key=key).first()
    if state is not None:
        return {
            "space": space.name,
            "key": state.key,
            "kind": "state",
            "value": state.value,
            "version": state.version,
            "updated_by": state.updated_by,
            "updated_at": state.updated_at.isoformat(),
        }
    raise ToolError(
        f"Context space {space.name} has no fact, document or state with key '{key}': read without a key to list "
        "the keys, or search by words.",
        code="not_found",
    )


def _overview(space) -> dict:
    entries = selectors.context_entry_list(space=space).exclude(kind=EntryKind.DECISION)
    keyed = list(entries.values("kind", "key", "title")[:LIST_LIMIT])
    decisions = selectors.context_decision_list(space=space)[:RECENT_DECISIONS]
    return {
        "space": space.name,
        "description": space.description,
        "facts": [{"key": e["key"], "title": e["title"]} for e in keyed if e["kind"] == EntryKind.FACT],
        "documents": [{"key": e["key"], "title": e["title"]} for e in keyed if e["kind"] == EntryKind.DOCUMENT],
        "state": [{"key": s.key, "version": s.version} for s in selectors.context_state_list(space=space)[:LIST_LIMIT]],
        "recent_decisions": [
            {
                "title": d.title,
                "rationale": clip_text(d.body, 500),
                "decided_by": d.decided_by,
                "recorded_at": d.created_at.isoformat(),
            }
            for d in decisions
        ],
    }


def _write(writer, space, arguments: dict) -> dict:
    kind = arguments.get("kind", "state")
    key = arguments["key"]
    if kind == "state":
        if "value" not in arguments:
            raise ToolError("A state write needs a value (any JSON).", code="invalid_arguments")
        state = services.context_state_write(
            actor=writer,
            space=space,
            key=key,
            value=arguments["value"],
            expected_version=arguments.get("expected_version"),
        )
        # Each write moves the version by exactly one.
        return {
            "space": space.name,
            "key": state.key,
            "kind": "state",
            "version": state.version,
            "previous_version": state.version - 1,
        }
    body = arguments.get("body")
    if body is None and isinstance(arguments.get("value"), str):
        body = arguments["value"]
    if not body:
        raise ToolError(f"A {kind} write needs a body (the text to keep).", code="invalid_arguments")
    entry, created = services.context_entry_put(
        actor=writer, space=space, key=key, body=body, kind=kind, title=arguments.get("title")
    )
    return {"space": space.name, "key": entry.key, "kind": entry.kind, "entry_id": entry.pk, "created": created}
