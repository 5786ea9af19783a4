"""Import an MCP server's tools into the registry: one registry tool of kind mcp per server tool.

The server is asked for its tools first (outside any transaction: it is a network call), every
tool definition is built and validated, and only then is anything written, through the registry's
own services (tool_create, tool_update_draft, tool_publish: permission and audit happen there),
all in one transaction, so an import is all or nothing.
"""

from __future__ import annotations

import copy
import re

from django.db import transaction

from apps.accounts.permissions import require
from apps.audit.services import audit_record
from apps.core.drafts import NAME_RE
from apps.core.exceptions import ServiceError
from apps.core.versioning import parse_semver

from . import services
from .models import SideEffect, Tool, ToolKind
from .specs import DEFAULT_PARAMETERS, MCP_TRANSPORTS, tool_spec_validate

PREFIX_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,39}$")
MAX_IMPORTED_TOOLS = 200
IMPORT_TIMEOUT_S = 30
# The registry fields an import sets; the rest of an existing draft (sandbox, approval, secrets,
# side effect, permissions, cost) is the builder's and is kept.
IMPORTED_FIELDS = ("description", "kind", "parameters", "config")


def mcp_tool_name(*, prefix: str, mcp_name: str) -> str:
    """Return the registry name for an MCP tool: prefix + the name in lowercase, snake_case for camelCase."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", mcp_name).lower()
    name = re.sub(r"[^a-z0-9_.-]+", "_", name)
    name = re.sub(r"_{2,}", "_", name).strip("_.-")
    name = prefix + name
    if not name[:1].isalpha():
        name = "mcp-" + name  # a registry name starts with a letter
    return name[:63].rstrip("_.-")


def _connection_fields(transport: str) -> str:
    return "command" if transport == "stdio" else "url"


def _config(*, transport: str, url: str | None, command: list[str] | None, tool_name: str) -> dict:
    config = {"transport": transport, "tool_name": tool_name}
    if transport == "stdio":
        config["command"] = list(command or [])
    else:
        config["url"] = url or ""
    return config


def _check_server(*, team, transport: str, url: str | None, command: list[str] | None) -> None:
    """Refuse a transport, URL or command the tool spec would refuse, before connecting to anything."""
    if transport not in MCP_TRANSPORTS:
        raise ServiceError(f"Pick a transport: {' or '.join(MCP_TRANSPORTS)}.", field="transport")
    if transport == "stdio" and not command:
        raise ServiceError('Give the command that starts the server, e.g. ["mcp-server", "--stdio"].', field="command")
    if transport == "streamable_http" and not url:
        raise ServiceError("Give the server's URL, e.g. https://mcp.example.com/mcp.", field="url")
    probe = {
        "description": "probe",
        "kind": ToolKind.MCP,
        "config": _config(transport=transport, url=url, command=command, tool_name="probe"),
    }
    try:
        tool_spec_validate(probe, team=team)
    except ServiceError as exc:
        raise ServiceError(exc.message, field=_connection_fields(transport)) from None


def _server_tools(*, transport: str, url: str | None, command: list[str] | None) -> tuple[str, list]:
    """Return (how to name the server, the tools it lists); a failed connection is a ServiceError."""
    # The registry reaches into the runtime's MCP client here: one client, one SSRF guard, one
    # stdio allowlist for calls and imports alike.
    from apps.runtime.executors.base import ToolError
    from apps.runtime.executors.mcp import mcp_server, mcp_tools_list

    field = _connection_fields(transport)
    try:
        server = mcp_server(transport=transport, url=url, command=command)
    except ToolError as exc:
        raise ServiceError(exc.message, field=field) from None
    try:
        return server.label, mcp_tools_list(server=server, timeout=IMPORT_TIMEOUT_S)
    except ToolError as exc:
        raise ServiceError(
            f"Could not import from {server.label}: {exc.message}", field=field, code="mcp_unreachable"
        ) from None


def _parameters(mcp_tool) -> dict:
    schema = copy.deepcopy(mcp_tool.input_schema or {})
    if not isinstance(schema, dict) or not schema:
        return copy.deepcopy(DEFAULT_PARAMETERS)
    schema.setdefault("type", "object")
    if schema["type"] == "object":
        schema.setdefault("properties", {})
    return schema


def _description(mcp_tool, label: str) -> str:
    text = (mcp_tool.description or getattr(mcp_tool, "title", None) or "").strip()
    return (text or f"The tool {mcp_tool.name} of {label}.")[:2000]


def _side_effect(mcp_tool) -> str:
    # MCP's readOnlyHint defaults to false: a tool is taken to act unless the server says it only reads.
    annotations = getattr(mcp_tool, "annotations", None)
    return SideEffect.READ if annotations is not None and annotations.read_only_hint else SideEffect.WRITE


def _plan(*, team, label: str, mcp_tools: list, prefix: str, transport, url, command) -> list[dict]:
    """Return, per MCP tool, the registry name, the existing tool (or None) and the validated spec."""
    seen: dict[str, str] = {}
    existing = {tool.name: tool for tool in Tool.objects.filter(team=team)}
    plan = []
    for mcp_tool in mcp_tools:
        name = mcp_tool_name(prefix=prefix, mcp_name=mcp_tool.name)
        if not NAME_RE.match(name):
            raise ServiceError(
                f"The MCP tool {mcp_tool.name!r} gives no usable registry name ({name!r}): use a prefix that "
                "starts with a letter.",
                field="prefix",
            )
        if name in seen:
            raise ServiceError(
                f"The MCP tools {seen[name]!r} and {mcp_tool.name!r} would both be named {name}: "
                "the registry needs distinct names; import them from separate servers or rename one on the server.",
                field="prefix",
            )
        seen[name] = mcp_tool.name
        spec = {
            "description": _description(mcp_tool, label),
            "kind": ToolKind.MCP,
            "parameters": _parameters(mcp_tool),
            "config": _config(transport=transport, url=url, command=command, tool_name=mcp_tool.name),
            "side_effect": _side_effect(mcp_tool),
        }
        tool = existing.get(name)
        if tool is not None:
            if tool.draft_spec.get("kind") != ToolKind.MCP:
                raise ServiceError(
                    f"A tool named {name} already exists in team {team.slug} and is not an MCP tool: "
                    "import with a prefix (e.g. mcp-) so the names do not clash.",
                    field="prefix",
                )
            spec = {**tool.draft_spec, **{key: spec[key] for key in IMPORTED_FIELDS}}
        try:
            spec = tool_spec_validate(spec, team=team)
        except ServiceError as exc:
            where = f" ({exc.field})" if exc.field else ""
            raise ServiceError(f"The MCP tool {mcp_tool.name!r} cannot be imported{where}: {exc.message}") from None
        plan.append({"name": name, "mcp_name": mcp_tool.name, "tool": tool, "spec": spec})
    return plan


def mcp_tools_import(
    *,
    actor,
    team,
    transport: str,
    url: str | None = None,
    command: list[str] | None = None,
    prefix: str = "",
    publish_version: str | None = None,
) -> list[Tool]:
    """Create a registry tool per tool of an MCP server, or replace the drafts of those already imported.

    Names are prefix + the MCP tool's name in registry form (lowercase; getWeather -> get_weather).
    The description and parameters come from the server; a tool's draft keeps what builders set
    (sandbox, approval, side effect, ...). With publish_version, every created or changed tool is
    published as that version. All or nothing. Each returned tool carries `mcp_import`:
    {"status": "created" | "updated" | "unchanged", "published_version": str | None}.
    """
    require(actor, "registry.edit", team)
    prefix = (prefix or "").strip()
    if prefix and not PREFIX_RE.match(prefix):
        raise ServiceError(
            "The prefix must start with a lowercase letter and use lowercase letters, digits, dots, dashes and "
            "underscores (at most 40), e.g. crm-.",
            field="prefix",
        )
    if publish_version:
        parse_semver(publish_version)  # refuse a bad version before connecting to anything
    url = (url or "").strip() or None
    command = [str(part) for part in command] if command else None
    _check_server(team=team, transport=transport, url=url, command=command)
    label, mcp_tools = _server_tools(transport=transport, url=url, command=command)
    server = label[:1].upper() + label[1:]
    if not mcp_tools:
        raise ServiceError(f"{server} lists no tools: there is nothing to import.")
    if len(mcp_tools) > MAX_IMPORTED_TOOLS:
        raise ServiceError(f"{server} lists {len(mcp_tools)} tools: an import takes at most {MAX_IMPORTED_TOOLS}.")
    plan = _plan(
        team=team, label=label, mcp_tools=mcp_tools, prefix=prefix, transport=transport, url=url, command=command
    )
    notes = f"Imported from {label}."
    tools = []
    with transaction.atomic():
        for item in plan:
            tool = item["tool"]
            if tool is None:
                tool = services.tool_create(actor=actor, team=team, name=item["name"], spec=item["spec"])
                status = "created"
            elif tool.draft_spec != item["spec"]:
                tool = services.tool_update_draft(actor=actor, tool=tool, spec=item["spec"])
                status = "updated"
            else:
                status = "unchanged"
            published = None
            if publish_version:
                latest = tool.versions.order_by("-major", "-minor", "-patch").first()
                if latest is None or latest.spec != tool.draft_spec:
                    published = services.tool_publish(actor=actor, tool=tool, version=publish_version, notes=notes)
            tool.mcp_import = {"status": status, "published_version": published.version if published else None}
            tools.append(tool)
        audit_record(
            actor=actor,
            action="tool.mcp_import",
            team=team,
            metadata={
                "server": label,
                "transport": transport,
                "tools": {tool.name: tool.mcp_import["status"] for tool in tools},
                "published_version": publish_version or None,
            },
        )
    return tools
