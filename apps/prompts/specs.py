"""The prompt spec and its rendering.

template: the text, with placeholders written {{ name }} (spaces optional)
variables: [{name, description, required, default}] - every placeholder declared, every declaration used

`prompt_render` fills the placeholders in one pass: values are inserted as plain text, so a value
that itself contains {{ other }} stays as written and is never expanded.
"""

from __future__ import annotations

import json
import re

from apps.core.drafts import IDENTIFIER_RE, json_check
from apps.core.exceptions import ServiceError
from apps.core.specs import SpecField, validate_spec
from apps.core.versioning import check_spec_size

MAX_TEMPLATE_CHARS = 100_000
MAX_VARIABLES = 64
# Anything between double braces is meant as a placeholder; a name that is not an identifier is an error.
PLACEHOLDER_RE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

VARIABLE_FIELDS = [
    SpecField("name", str, required=True, max_length=63),
    SpecField("description", str, default="", max_length=500),
    SpecField("required", bool, default=True),
    SpecField("default", str, max_length=10_000),
]

PROMPT_SPEC = [
    SpecField(
        "template",
        str,
        required=True,
        max_length=MAX_TEMPLATE_CHARS,
        help="the prompt text, with {{ name }} placeholders.",
    ),
    SpecField("variables", list, default=list, max_length=MAX_VARIABLES),
]


def template_placeholders(template: str) -> list[str]:
    """Return the placeholder names in the template, in order of first use (invalid ones included)."""
    seen: dict[str, None] = {}
    for name in PLACEHOLDER_RE.findall(template or ""):
        seen.setdefault(name, None)
    return list(seen)


def prompt_spec_validate(spec) -> dict:
    """Return the prompt spec checked and normalised; raise a ServiceError naming the first bad field."""
    json_check(spec)
    spec = validate_spec(spec, PROMPT_SPEC)
    if not spec["template"].strip():
        raise ServiceError("template is required: write the prompt text.", field="template")
    variables = []
    for i, item in enumerate(spec["variables"]):
        variable = validate_spec(item, VARIABLE_FIELDS, f"variables[{i}]")
        if not IDENTIFIER_RE.match(variable["name"]):
            raise ServiceError(
                f"variables[{i}].name '{variable['name']}' is not a variable name: "
                "use letters, digits and underscores, starting with a letter.",
                field=f"variables[{i}].name",
            )
        if variable["required"] and variable["default"] is not None:
            raise ServiceError(
                f"variables[{i}].default: {variable['name']} is required, so a default is never used: "
                "set required to false or remove the default.",
                field=f"variables[{i}].default",
            )
        variables.append(variable)
    names = [v["name"] for v in variables]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ServiceError(
            f"variables: {', '.join(duplicates)} declared more than once: keep one declaration each.",
            field="variables",
        )
    used = template_placeholders(spec["template"])
    for name in used:
        if not IDENTIFIER_RE.match(name):
            raise ServiceError(
                f"template: the placeholder {{{{ {name[:60]} }}}} is not a variable name: "
                "use letters, digits and underscores.",
                field="template",
            )
        if name not in names:
            raise ServiceError(f"template uses undeclared variable {name}: declare it or remove it.", field="template")
    unused = [n for n in names if n not in used]
    if unused:
        raise ServiceError(
            f"variables: {', '.join(unused)} {'is' if len(unused) == 1 else 'are'} declared but not used "
            "in the template: use it as {{ name }} or remove the declaration.",
            field="variables",
        )
    spec["variables"] = variables
    check_spec_size(spec)
    return spec


def _as_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def prompt_render(*, spec: dict, variables: dict) -> str:
    """Return the template with the variables filled in as plain text.

    A required variable missing (or None) raises a ServiceError naming it; an optional one falls back
    to its default, else to empty text. Values that are not text are written as JSON. Variables the
    prompt does not declare are ignored, so a caller may pass a common set to any prompt.
    """
    if not isinstance(variables, dict):
        raise ServiceError("variables must be an object mapping names to values.", field="variables")
    values: dict[str, str] = {}
    for declared in spec.get("variables", []):
        name = declared["name"]
        value = variables.get(name)
        if value is None:
            if declared.get("required", True):
                raise ServiceError(
                    f"Missing required variable {name}: give it a value"
                    + (f" ({declared['description']})." if declared.get("description") else "."),
                    field="variables",
                )
            value = declared.get("default") or ""
        values[name] = _as_text(value)
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), spec["template"])
