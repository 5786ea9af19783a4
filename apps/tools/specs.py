"""The tool spec: what a version of a tool is, validated strictly and normalised.

description: what the model reads about the tool (required)
kind: http | python | agent_handoff | mcp | context
parameters: a JSON Schema of type object (the arguments the model gives)
config: what the kind needs (see KIND_CONFIG below)
permissions_required: labels like crm.write or code_execution
sandbox: {cpu_seconds, memory_mb, timeout_s, network}
side_effect: read | write; requires_approval; audit; cost_per_call (USD); rate_limit: {calls, per_seconds}
secrets: names of the team's (or the organisation's) secrets the tool uses, granted to the tool

`tool_spec_validate` checks the document alone (and that listed secrets exist for the team);
`tool_spec_check_grants` adds what publishing needs: every secret granted to this very tool.
"""

from __future__ import annotations

import ast
import copy
import re
from urllib.parse import urlsplit

from apps.core.drafts import IDENTIFIER_RE, NAME_RE, json_check
from apps.core.exceptions import ServiceError
from apps.core.specs import SpecField, check_json_schema, validate_spec
from apps.core.versioning import check_spec_size

from .models import SideEffect, ToolKind

LABEL_RE = re.compile(r"^[a-z][a-z0-9_.:-]{0,62}$")
SECRET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
SECRET_REF_RE = re.compile(r"\{\{\s*secrets\.([^{}\s]*)\s*\}\}")
# A `{param}` placeholder: single braces, not part of a `{{secrets.X}}` reference.
PLACEHOLDER_RE = re.compile(r"(?<!\{)\{([^{}]*)\}(?!\})")
MAX_CODE_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
DEFAULT_PARAMETERS = {"type": "object", "properties": {}}
HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CONTEXT_OPERATIONS = ["search", "read", "write", "record_decision"]
MCP_TRANSPORTS = ["streamable_http", "stdio"]


def _between(low, high):
    def check(value):
        if not low <= value <= high:
            raise ServiceError(f"must be between {low} and {high}.")
        return value

    return check


def _labels(values: list) -> list:
    for value in values:
        if not LABEL_RE.match(value):
            raise ServiceError(
                f"'{value[:80]}' is not a permission label: use lowercase like crm.write or code_execution."
            )
    return sorted(set(values))  # a set of labels: order and repeats carry no meaning


def _secret_names(values: list) -> list:
    for value in values:
        if not SECRET_NAME_RE.match(value):
            raise ServiceError(f"'{value[:80]}' is not a secret name: use lowercase letters, digits, . _ and -.")
    return sorted(set(values))


def _parameters(value: dict) -> dict:
    check_json_schema(value)
    if value.get("type") != "object":
        raise ServiceError('must be a JSON Schema with "type": "object" at the top (the tool\'s named arguments).')
    properties = value.get("properties", {})
    if not isinstance(properties, dict):
        raise ServiceError("properties must be an object mapping argument names to schemas.")
    return value


def _cost(value) -> float:
    if value < 0:
        raise ServiceError("must not be negative.")
    if value > 1000:
        raise ServiceError("must be at most 1000 USD per call.")
    return float(value)  # 0 and 0.0 are the same price: one form so equal definitions hash equally


def _string_map(value: dict) -> dict:
    for key, item in value.items():
        if not isinstance(item, str):
            raise ServiceError(f"{key} must be a string template, not {type(item).__name__}.")
        if len(key) > 200 or len(item) > 4000:
            raise ServiceError(f"{key[:40]} is too long: names at most 200, values at most 4000 characters.")
    return value


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ServiceError("must start with http:// or https://.")
    head = re.match(r"^https?://[^/?#]*", value).group(0)
    if "{" in head or "}" in head:
        raise ServiceError("the host cannot be a placeholder: only the path and query may hold {param}.")
    if not urlsplit(value).hostname:
        raise ServiceError("names no host: write e.g. https://api.example.com/customers/{id}.")
    return value


def _identifier(value: str) -> str:
    if not IDENTIFIER_RE.match(value):
        raise ServiceError("must be a Python identifier such as main.")
    return value


def _agent_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ServiceError("is not an agent name: lowercase letters, digits, dots, dashes and underscores.")
    return value


def _space_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ServiceError("is not a context space name: lowercase letters, digits, dots, dashes and underscores.")
    return value


def _command(value: list) -> list:
    if not value:
        raise ServiceError('must list the program and its arguments, e.g. ["mcp-server", "--stdio"].')
    return value


KIND_CONFIG: dict[str, list[SpecField]] = {
    ToolKind.HTTP: [
        SpecField("method", str, default="GET", choices=HTTP_METHODS),
        SpecField(
            "url",
            str,
            required=True,
            max_length=2000,
            check=_url,
            help="the address to call, e.g. https://api.example.com/customers/{id}.",
        ),
        SpecField("query", dict, default=dict, check=_string_map),
        SpecField("headers", dict, default=dict, check=_string_map),
        SpecField("body", dict),
        SpecField("timeout_s", int, default=30, check=_between(1, 120)),
        SpecField("max_response_bytes", int, default=1024 * 1024, check=_between(1, MAX_RESPONSE_BYTES)),
    ],
    ToolKind.PYTHON: [
        SpecField("code", str, required=True, help="the Python source defining the entrypoint function."),
        SpecField("entrypoint", str, default="main", max_length=63, check=_identifier),
    ],
    ToolKind.HANDOFF: [
        SpecField(
            "agent", str, required=True, max_length=63, check=_agent_name, help="the agent of this team to hand to."
        ),
    ],
    ToolKind.MCP: [
        SpecField("transport", str, default="streamable_http", choices=MCP_TRANSPORTS),
        SpecField("url", str, max_length=2000, check=_url),
        SpecField("command", list, item_type=str, max_length=32, check=_command),
        SpecField("tool_name", str, required=True, max_length=128, help="the tool's name on the MCP server."),
    ],
    ToolKind.CONTEXT: [
        SpecField("operation", str, required=True, choices=CONTEXT_OPERATIONS),
        SpecField("space", str, required=True, max_length=63, check=_space_name, help="the context space's name."),
    ],
}

TOOL_SPEC: list[SpecField] = [
    SpecField("description", str, required=True, max_length=2000, help="say what the tool does, for the model."),
    SpecField("kind", str, required=True, choices=list(ToolKind.values)),
    SpecField("parameters", dict, default=lambda: copy.deepcopy(DEFAULT_PARAMETERS), check=_parameters),
    SpecField("config", dict, default=dict),
    SpecField("permissions_required", list, default=list, item_type=str, max_length=32, check=_labels),
    SpecField(
        "sandbox",
        dict,
        fields=[
            SpecField("cpu_seconds", int, default=10, check=_between(1, 300)),
            SpecField("memory_mb", int, default=256, check=_between(16, 4096)),
            SpecField("timeout_s", int, default=30, check=_between(1, 600)),
            SpecField("network", bool, default=False),
        ],
    ),
    SpecField("side_effect", str, default=SideEffect.READ.value, choices=list(SideEffect.values)),
    SpecField("requires_approval", bool, default=False),
    SpecField("audit", bool, default=True),
    SpecField("cost_per_call", (int, float), default=0.0, check=_cost),
    SpecField(
        "rate_limit",
        dict,
        fields=[
            SpecField("calls", int, check=_between(1, 1_000_000)),
            SpecField("per_seconds", int, default=60, check=_between(1, 86_400)),
        ],
    ),
    SpecField("secrets", list, default=list, item_type=str, max_length=32, check=_secret_names),
]


def _check_config(spec: dict) -> dict:
    kind = spec["kind"]
    config = validate_spec(spec["config"], KIND_CONFIG[kind], "config")
    if spec.get("secrets") and kind != ToolKind.HTTP:
        # Only the HTTP executor injects secrets (into headers, at the call); the sandbox and MCP get none.
        raise ServiceError(
            f"Only HTTP tools can use secrets (in their headers as {{{{secrets.name}}}}); a {kind} tool gets none. "
            "Remove secrets, or call the service through an HTTP tool.",
            field="secrets",
        )
    if kind == ToolKind.PYTHON:
        _check_code(config)
    elif kind == ToolKind.MCP:
        if config["transport"] == "streamable_http":
            if not config["url"]:
                raise ServiceError("config.url is required for the streamable_http transport.", field="config.url")
            if config["command"]:
                raise ServiceError("config.command is for the stdio transport: remove it.", field="config.command")
        else:
            if not config["command"]:
                raise ServiceError(
                    'config.command is required for the stdio transport, e.g. ["mcp-server"].', field="config.command"
                )
            if config["url"]:
                raise ServiceError("config.url is for the streamable_http transport: remove it.", field="config.url")
    elif kind == ToolKind.HTTP:
        _check_http(config, spec)
    return config


def _check_code(config: dict) -> None:
    code = config["code"]
    if len(code.encode()) > MAX_CODE_BYTES:
        raise ServiceError(f"config.code is too long: at most {MAX_CODE_BYTES // 1024} KiB.", field="config.code")
    try:
        tree = ast.parse(code, filename="<tool>")
    except SyntaxError as exc:
        raise ServiceError(
            f"config.code has a syntax error at line {exc.lineno}: {exc.msg}.", field="config.code"
        ) from None
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if config["entrypoint"] not in defined:
        raise ServiceError(
            f"config.code defines no function {config['entrypoint']}: define it at the top level "
            "or set config.entrypoint to the function to call.",
            field="config.entrypoint",
        )


def _check_http(config: dict, spec: dict) -> None:
    declared = set(spec["parameters"].get("properties", {}))
    templates = [("config.url", config["url"])]
    templates += [(f"config.query.{k}", v) for k, v in config["query"].items()]
    templates += [(f"config.headers.{k}", v) for k, v in config["headers"].items()]
    for where, text in templates:
        for name in PLACEHOLDER_RE.findall(text):
            if name not in declared:
                field = where if where == "config.url" else where.rsplit(".", 1)[0]
                raise ServiceError(
                    f"{where} uses {{{name}}}, which is not a declared parameter: "
                    f"add {name} to parameters.properties or remove the placeholder.",
                    field=field,
                )
        if not where.startswith("config.headers") and SECRET_REF_RE.search(text):
            raise ServiceError(
                f"{where} refers to a secret: secrets go in headers only, so they never appear in logged URLs.",
                field=where if where == "config.url" else "config.query",
            )
    for key, value in config["headers"].items():
        for name in SECRET_REF_RE.findall(value):
            if name not in spec["secrets"]:
                raise ServiceError(
                    f"config.headers.{key} uses {{{{secrets.{name}}}}}, which is not listed in secrets: "
                    f"add {name} to secrets.",
                    field="config.headers",
                )


def tool_spec_validate(spec, *, team=None) -> dict:
    """Return the tool spec checked and normalised; raise a ServiceError naming the first bad field.

    With a team, every listed secret must exist for the team or the organisation.
    """
    json_check(spec)
    spec = validate_spec(spec, TOOL_SPEC)
    if not spec["description"].strip():
        raise ServiceError("description is required: say what the tool does, for the model.", field="description")
    spec["config"] = _check_config(spec)
    check_spec_size(spec)
    if team is not None:
        _secrets_resolve(team=team, names=spec["secrets"])
    return spec


def _secrets_resolve(*, team, names: list[str]) -> list:
    from apps.governance.services import secret_resolve

    found = []
    for name in names:
        try:
            found.append(secret_resolve(team=team, name=name))
        except ServiceError as exc:
            raise ServiceError(f"secrets: {exc.message}", field="secrets") from None
    return found


def tool_spec_check_grants(*, tool, spec: dict) -> None:
    """Refuse a spec listing a secret that is not granted to this tool (what publishing needs)."""
    from apps.governance.models import GranteeType, SecretGrant

    for secret in _secrets_resolve(team=tool.team, names=spec["secrets"]):
        granted = SecretGrant.objects.filter(secret=secret, grantee_type=GranteeType.TOOL, grantee_id=tool.pk)
        if not granted.exists():
            raise ServiceError(
                f"secrets: the secret '{secret.name}' is not granted to the tool {tool.name}: "
                "a team owner grants it under Secrets, then publish again.",
                field="secrets",
            )
