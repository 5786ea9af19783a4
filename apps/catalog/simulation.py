"""The `simulation` block of an agent spec: what the built-in simulated model answers, call by call.

simulation:
  script:                       # one entry per model call of a run, in order
    - call: [{tool: kb.search, arguments: {query: "{input}"}}]   # ask for tool calls (registry names)
    - answer: "Refund of {input.amount} approved. Search said: {result}"
    - error: {status: 429, message: slow down}                     # the call fails (429, 408, 409, 5xx: retryable)
    - sleep_ms: 50              # optional on any entry: wait this long first (latency in tests and benchmarks)
  default_answer: "..."         # once the script has run out; default: "[simulated] I received: <input>"

Each entry gives exactly one of call, answer or error. Placeholders in answers and in the strings of
call arguments: {input} (the run input; JSON if it is not text), {input.<key>} (a field of an object
input, dotted for nested fields), {result} (the last tool result of the run), {result.<key>} (a
field of it, when it is JSON). An argument string that is exactly one placeholder takes the value's
JSON type; a missing field is empty text (null as a whole argument).
"""

from __future__ import annotations

from apps.core.exceptions import ServiceError
from apps.core.specs import SpecField, validate_spec

MAX_SCRIPT_ENTRIES = 200
MAX_CALLS_PER_ENTRY = 16
MAX_SLEEP_MS = 60_000
MAX_TEXT = 100_000
ENTRY_KINDS = ("call", "answer", "error")


def _between(low: int, high: int):
    def check(value):
        if not low <= value <= high:
            raise ServiceError(f"must be between {low} and {high}.")
        return value

    return check


CALL_FIELDS = [
    SpecField("tool", str, required=True, max_length=200, help="the registry name of a tool the agent has."),
    SpecField("arguments", dict, default=dict),
]

ERROR_FIELDS = [
    SpecField("status", int, default=500, check=_between(400, 599)),
    SpecField("message", str, default="simulated provider error", max_length=2000),
]

ENTRY_FIELDS = [
    SpecField("call", list, max_length=MAX_CALLS_PER_ENTRY, item_type=dict),
    SpecField("answer", str, max_length=MAX_TEXT),
    SpecField("error", dict),
    SpecField("sleep_ms", int, default=0, check=_between(0, MAX_SLEEP_MS)),
]


def simulation_entry_check(value, index: int) -> dict:
    """Return one script entry checked and normalised to what it gives; raise ServiceError saying what is wrong."""
    where = f"[{index}]"
    if not isinstance(value, dict):
        raise ServiceError(f"{where} must be an object with one of call, answer or error.")
    given = [kind for kind in ENTRY_KINDS if value.get(kind) is not None]
    if len(given) != 1:
        what = f"it gives {' and '.join(given)}" if given else "it gives none"
        raise ServiceError(f"{where} must give exactly one of call, answer or error ({what}).")
    entry = validate_spec(value, ENTRY_FIELDS, where)
    result: dict = {}
    if entry["call"] is not None:
        if not entry["call"]:
            raise ServiceError(f"{where}.call must list at least one tool call.")
        result["call"] = [validate_spec(c, CALL_FIELDS, f"{where}.call[{i}]") for i, c in enumerate(entry["call"])]
    elif entry["answer"] is not None:
        result["answer"] = entry["answer"]
    else:
        result["error"] = validate_spec(entry["error"], ERROR_FIELDS, f"{where}.error")
    if entry["sleep_ms"]:
        result["sleep_ms"] = entry["sleep_ms"]
    return result


def _script(entries: list) -> list:
    # Only what an entry gives is kept, so the stored spec reads like what was written.
    return [simulation_entry_check(value, i) for i, value in enumerate(entries)]


SIMULATION_FIELDS = [
    SpecField(
        "script",
        list,
        default=list,
        max_length=MAX_SCRIPT_ENTRIES,
        check=_script,
        help="one entry per model call: call, answer or error.",
    ),
    SpecField("default_answer", str, max_length=MAX_TEXT),
]


def simulation_validate(value, *, path: str = "simulation") -> dict:
    """Return the simulation block checked and normalised; raise ServiceError naming the field at fault."""
    return validate_spec(value, SIMULATION_FIELDS, path)
