"""Strict validation of spec documents: unknown keys, wrong types and bad values name their field.

Tools, prompts and agents declare their spec as a list of SpecField; `validate_spec` returns the
normalised spec (defaults filled in, so equal definitions hash equally) or raises a ServiceError
whose `field` is the dotted path of the first problem, e.g. `limits.max_steps`.
Spec files (YAML or JSON) are parsed by `load_document` and written by `dump_document`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .exceptions import ServiceError

API_VERSION = "fleetdeck/v1"
MAX_DOCUMENT_BYTES = 512 * 1024
_TYPE_NAMES = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "an object",
}


@dataclass
class SpecField:
    name: str
    type: type | tuple[type, ...]
    required: bool = False
    default: Any = None
    # Checks and normalises the value; raises ServiceError(message) without a field (added here).
    check: Callable[[Any], Any] | None = None
    # For dict values validated field by field.
    fields: list[SpecField] | None = None
    max_length: int | None = None
    choices: list[str] | None = None
    help: str = ""
    item_type: type | None = None


def _type_name(t) -> str:
    if isinstance(t, tuple):
        return " or ".join(_TYPE_NAMES.get(x, x.__name__) for x in t)
    return _TYPE_NAMES.get(t, t.__name__)


def _is_type(value, t) -> bool:
    types = t if isinstance(t, tuple) else (t,)
    if isinstance(value, bool) and bool not in types:
        return False  # True is an int in Python, never in a spec
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, types)


def validate_spec(data, fields: list[SpecField], path: str = "") -> dict:
    """Return data checked against fields and normalised; raise ServiceError naming the field."""
    if not isinstance(data, dict):
        raise ServiceError(
            f"{path or 'The spec'} must be an object (a mapping of names to values).", field=path or "spec"
        )
    known = {f.name for f in fields}
    unknown = sorted(set(data) - known)
    if unknown:
        where = f"{path}." if path else ""
        raise ServiceError(
            f"Unknown key{'s' if len(unknown) > 1 else ''} {', '.join(where + k for k in unknown)}: "
            f"allowed keys are {', '.join(sorted(known))}.",
            field=where + unknown[0],
        )
    result = {}
    for f in fields:
        where = f"{path}.{f.name}" if path else f.name
        if f.name not in data or data[f.name] is None:
            if f.required:
                raise ServiceError(f"{where} is required{': ' + f.help if f.help else '.'}", field=where)
            value = f.default() if callable(f.default) else f.default
            if f.fields is not None and value is None:
                value = validate_spec({}, f.fields, where)
            result[f.name] = value
            continue
        value = data[f.name]
        if not _is_type(value, f.type):
            raise ServiceError(f"{where} must be {_type_name(f.type)}, not {type(value).__name__}.", field=where)
        if f.max_length is not None and isinstance(value, (str, list)) and len(value) > f.max_length:
            unit = "characters" if isinstance(value, str) else "items"
            raise ServiceError(f"{where} is too long: at most {f.max_length} {unit}.", field=where)
        if f.item_type is not None and isinstance(value, list):
            for i, item in enumerate(value):
                if not _is_type(item, f.item_type):
                    raise ServiceError(f"{where}[{i}] must be {_type_name(f.item_type)}.", field=where)
        if f.choices is not None and value not in f.choices:
            raise ServiceError(f"{where} must be one of {', '.join(f.choices)}, not '{value}'.", field=where)
        if f.fields is not None:
            value = validate_spec(value, f.fields, where)
        if f.check is not None:
            try:
                value = f.check(value)
            except ServiceError as exc:
                raise ServiceError(f"{where}: {exc.message}", field=where) from None
        result[f.name] = value
    return result


def check_json_schema(value: dict) -> dict:
    """Return value if it is a valid JSON Schema (2020-12); raise ServiceError saying why not."""
    if not isinstance(value, dict):
        raise ServiceError("must be a JSON Schema object.")
    try:
        Draft202012Validator.check_schema(value)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise ServiceError(f"not a valid JSON Schema{' at ' + where if where else ''}: {exc.message}") from None
    return value


def non_negative(value):
    if value < 0:
        raise ServiceError("must not be negative.")
    return value


def positive(value):
    if value <= 0:
        raise ServiceError("must be greater than 0.")
    return value


def load_document(text: str | bytes, *, kind: str) -> tuple[dict, dict]:
    """Parse a YAML or JSON spec file of the given kind; return (metadata, spec).

    The document is `{apiVersion: fleetdeck/v1, kind: Agent|Tool|Prompt, metadata: {...}, spec: {...}}`.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_DOCUMENT_BYTES:
            raise ServiceError(f"The file is larger than {MAX_DOCUMENT_BYTES // 1024} KiB.", field="document")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ServiceError("The file is not UTF-8 text.", field="document") from None
    if len(text) > MAX_DOCUMENT_BYTES:
        raise ServiceError(f"The document is larger than {MAX_DOCUMENT_BYTES // 1024} KiB.", field="document")
    try:
        document = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ServiceError(f"The document is not valid YAML or JSON{where}.", field="document") from None
    if not isinstance(document, dict):
        raise ServiceError("The document must be a mapping with apiVersion, kind, metadata and spec.", field="document")
    envelope = validate_spec(
        document,
        [
            SpecField("apiVersion", str, required=True, choices=[API_VERSION]),
            SpecField("kind", str, required=True, choices=[kind]),
            SpecField("metadata", dict, required=True),
            SpecField("spec", dict, required=True),
        ],
    )
    return envelope["metadata"], envelope["spec"]


def dump_document(*, kind: str, metadata: dict, spec: dict, fmt: str = "yaml") -> str:
    """Return the spec file text (YAML or JSON) that load_document reads back."""
    document = {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}
    if fmt == "json":
        return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
