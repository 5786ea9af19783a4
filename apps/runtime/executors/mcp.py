"""Call a tool on an MCP server, over streamable HTTP or stdio, with the official `mcp` SDK.

spec.config: transport "streamable_http" (url) or "stdio" (command: program and arguments),
tool_name (the tool's name on the server). The SDK is async; each call runs its own event loop
(the worker is synchronous), connects, negotiates the protocol version, calls one tool and closes,
all within min(sandbox.timeout_s, the time left before the run's deadline).

Streamable HTTP goes through the SSRF guard: the host is resolved once and every request of the
session is pinned to the checked address (the Host header and the TLS server name stay the URL's).
Stdio runs only programs a platform admin listed in FLEETDECK_MCP_STDIO_COMMANDS, with an empty
environment (only PATH, and HOME pointing at a fresh temporary working directory), so the worker's
secrets and credentials never reach the server process.

`mcp_tools_list` is what the registry's import uses to read a server's tools the same way.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import mcp_types
from django.conf import settings
from mcp import Client, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from pydantic import ValidationError

from .base import ToolCallContext, ToolError, clip_text, json_size
from .netguard import guard_url

# Where the idempotency key travels: MCP has no standard for it, so it rides in the request's _meta.
IDEMPOTENCY_META_KEY = "fleetdeck/idempotency-key"
DEFAULT_TIMEOUT_S = 30
MAX_RESULT_BYTES = 1024 * 1024
MAX_ERROR_CHARS = 2000
MAX_LIST_PAGES = 50
CLIENT_INFO = mcp_types.Implementation(name="fleetdeck", version="1")


@dataclass(frozen=True)
class McpServer:
    """Where an MCP server is: a URL (streamable HTTP) or a command line (stdio)."""

    transport: str
    url: str = ""
    command: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """Return how messages name the server (a URL without query or credentials, or the program)."""
        if self.transport == "stdio":
            return f"the stdio MCP server {self.command[0] if self.command else '(no command)'}"
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        shown = f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"
        return f"the MCP server at {clip_text(shown, 200)}"


def mcp_server(*, transport: str, url: str | None = None, command: list[str] | None = None) -> McpServer:
    """Return the server a tool's config (or an import form) names; raise ToolError when it names none."""
    if transport == "stdio":
        if not command:
            raise ToolError('The stdio transport needs a command, e.g. ["mcp-server", "--stdio"].', code="mcp_config")
        return McpServer(transport="stdio", command=tuple(str(part) for part in command))
    if transport == "streamable_http":
        if not url:
            raise ToolError("The streamable_http transport needs the server's URL.", code="mcp_config")
        return McpServer(transport="streamable_http", url=url)
    raise ToolError(f"Unknown MCP transport {transport!r}: use streamable_http or stdio.", code="mcp_config")


def call_timeout(spec: dict, ctx: ToolCallContext) -> float:
    """Return the seconds the call may take: the sandbox timeout, cut to what is left of the run."""
    timeout = float((spec.get("sandbox") or {}).get("timeout_s") or DEFAULT_TIMEOUT_S)
    if ctx.deadline is not None:
        left = ctx.deadline - time.monotonic()
        if left <= 0:
            raise ToolError("The run has no time left for this tool call.", code="deadline_exceeded")
        timeout = min(timeout, left)
    return timeout


def execute(*, spec: dict, arguments: dict, ctx: ToolCallContext) -> Any:
    """Call the tool on its MCP server and return its structured content, or its text."""
    config = spec["config"]
    tool_name = config["tool_name"]
    server = mcp_server(
        transport=config.get("transport", "streamable_http"), url=config.get("url"), command=config.get("command")
    )
    timeout = call_timeout(spec, ctx)
    meta = {IDEMPOTENCY_META_KEY: ctx.idempotency_key} if ctx.idempotency_key else None

    async def call(client: Client) -> mcp_types.CallToolResult:
        return await client.call_tool(tool_name, arguments, read_timeout_seconds=timeout, meta=meta)

    result = mcp_run(server=server, timeout=timeout, doing=f"calling the tool {tool_name}", operation=call)
    return result_value(result, tool_name=tool_name, server=server)


def mcp_tools_list(*, server: McpServer, timeout: float = DEFAULT_TIMEOUT_S) -> list[mcp_types.Tool]:
    """Return every tool the server lists (all pages), in the server's order."""

    async def listing(client: Client) -> list[mcp_types.Tool]:
        tools: list[mcp_types.Tool] = []
        cursor = None
        for _ in range(MAX_LIST_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools
        raise ToolError(
            f"{_capital(server.label)} listed more than {MAX_LIST_PAGES} pages of tools: "
            "that is more than an import takes.",
            code="mcp_error",
        )

    return mcp_run(server=server, timeout=timeout, doing="listing its tools", operation=listing)


def result_value(result: mcp_types.CallToolResult, *, tool_name: str, server: McpServer) -> Any:
    """Return what the model sees of a tool result: structured content if any, else the text joined."""
    text = "\n".join(_block_text(block) for block in result.content or [])
    if result.is_error:
        raise ToolError(
            f"The MCP tool {tool_name} on {server.label} failed: "
            f"{clip_text(text, MAX_ERROR_CHARS) or 'no reason given'}",
            code="mcp_tool_error",
        )
    value = result.structured_content if result.structured_content is not None else text
    size = json_size(value)
    if size > MAX_RESULT_BYTES:
        raise ToolError(
            f"The MCP tool {tool_name} returned {size} bytes, more than the {MAX_RESULT_BYTES // 1024} KiB a result "
            "may hold: ask it for less (e.g. a narrower query or a page of results).",
            code="result_too_large",
        )
    return value


def _block_text(block) -> str:
    """Return a content block as text; media is described rather than inlined (the model reads text)."""
    kind = getattr(block, "type", "")
    if kind == "text":
        return block.text
    if kind in {"image", "audio"}:
        return f"[{kind} {block.mime_type}, {len(block.data or '') * 3 // 4} bytes, not shown]"
    if kind == "resource_link":
        return f"[resource {block.uri}]"
    if kind == "resource":
        resource = block.resource
        return getattr(resource, "text", None) or f"[resource {resource.uri}, {resource.mime_type or 'binary'}]"
    return f"[{kind or 'unknown'} content, not shown]"


# --- Connecting -------------------------------------------------------------------------------


def mcp_run(*, server: McpServer, timeout: float, doing: str, operation: Callable[[Client], Awaitable[Any]]) -> Any:
    """Connect to the server, run operation(client) and close, all within timeout seconds.

    Raise ToolError for anything that goes wrong, saying which server, what was being done, and how
    to fix it: ssrf_refused, mcp_command_refused, mcp_unreachable, mcp_error, timeout.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop in this thread (a Celery worker): the call runs its own
    else:
        # Called from code that runs an event loop in this thread: run the call's own loop in a thread.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcp-call") as pool:
            return pool.submit(mcp_run, server=server, timeout=timeout, doing=doing, operation=operation).result()
    with ExitStack() as stack:
        errlog = None
        if server.transport == "stdio":
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="fleetdeck-mcp-"))
            errlog = stack.enter_context(open(Path(workdir) / "stderr.log", "w+", encoding="utf-8", errors="replace"))
            make_transport = _stdio_transport(server, workdir=workdir, errlog=errlog)
        else:
            make_transport = _http_transport(server, timeout=timeout)
        phase = {"doing": "connecting"}

        async def run() -> Any:
            with anyio.fail_after(timeout):
                async with Client(
                    make_transport(), cache=None, read_timeout_seconds=timeout, client_info=CLIENT_INFO
                ) as client:
                    phase["doing"] = doing
                    return await operation(client)

        try:
            return asyncio.run(run())
        except ToolError:
            raise
        except Exception as exc:  # noqa: BLE001 - the SDK's errors arrive grouped in task-group errors; sorted below
            error = _classify(exc, server=server, timeout=timeout, doing=phase["doing"], errlog=errlog)
            if error is None:
                raise
            raise error from None


def _stdio_transport(server: McpServer, *, workdir: str, errlog):
    """Return a factory of the stdio transport for an allowed program, run with an empty environment."""
    program, *args = server.command
    allowed = list(getattr(settings, "FLEETDECK_MCP_STDIO_COMMANDS", None) or [])
    if "/" in program or "\\" in program or not program:
        raise ToolError(
            f"The stdio command must start with a program name without a path, not {clip_text(program, 100)!r}: "
            "a platform admin allows programs by name in FLEETDECK_MCP_STDIO_COMMANDS.",
            code="mcp_command_refused",
        )
    if program not in allowed:
        raise ToolError(
            f"The program {clip_text(program, 100)!r} may not be run as a stdio MCP server: a platform admin must "
            f"allow it by adding it to FLEETDECK_MCP_STDIO_COMMANDS (allowed now: {', '.join(allowed) or 'none'}).",
            code="mcp_command_refused",
        )
    search_path = os.environ.get("PATH", os.defpath)
    resolved = shutil.which(program, path=search_path)
    env_program = shutil.which("env", path=os.defpath) or "/usr/bin/env"
    if resolved is None or "=" in resolved:
        raise ToolError(
            f"The program {program!r} is allowed but not installed on this worker (not found on its PATH).",
            code="mcp_unreachable",
        )
    # `env -i` clears the environment the SDK would pass on (it keeps HOME, USER, SHELL...): the
    # server gets PATH and a HOME of its own, nothing of the worker's.
    params = StdioServerParameters(
        command=env_program,
        args=["-i", f"PATH={search_path}", f"HOME={workdir}", resolved, *args],
        cwd=workdir,
    )
    return lambda: stdio_client(params, errlog=errlog)


class _PinnedTransport(httpx2.AsyncBaseTransport):
    """Send every request for the checked host to the address the SSRF guard resolved, nowhere else."""

    def __init__(self, *, host: str, address: str):
        self._host = host
        self._address = address
        self._inner = httpx2.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.host != self._host:
            # The SDK follows redirects only within the origin; anything else is refused here too.
            raise httpx2.ConnectError(f"refused to leave {self._host} for {request.url.host}", request=request)
        # The Host header was set from the URL already; the TLS server name must stay the host too.
        request.extensions = {**request.extensions, "sni_hostname": self._host}
        request.url = request.url.copy_with(host=self._address)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _http_transport(server: McpServer, *, timeout: float):
    """Return a factory of the streamable HTTP transport, pinned to the address the SSRF guard checked."""
    parsed, address = guard_url(server.url)
    host = parsed.hostname or ""

    @asynccontextmanager
    async def pinned():
        client = httpx2.AsyncClient(
            transport=_PinnedTransport(host=host, address=address),
            timeout=httpx2.Timeout(timeout),
            trust_env=False,  # a proxy from the environment would resolve the host again
        )
        async with client, streamable_http_client(server.url, http_client=client) as streams:
            yield streams

    return pinned


# --- Errors -----------------------------------------------------------------------------------


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _stderr_tail(errlog) -> str:
    if errlog is None:
        return ""
    try:
        errlog.flush()
        errlog.seek(0)
        text = errlog.read().strip()
    except (OSError, ValueError):
        return ""
    if not text:
        return ""
    tail = text[-500:]
    return f" The server wrote: {tail}"


def _classify(exc: BaseException, *, server: McpServer, timeout: float, doing: str, errlog) -> ToolError | None:
    """Return the ToolError for an error of the SDK or the connection, or None when it is none of those."""
    leaves = _leaves(exc)
    label = server.label
    check = (
        "Check the command and that the program speaks MCP on stdin/stdout."
        if server.transport == "stdio"
        else "Check the URL (MCP servers usually answer at a path like /mcp) and that the server is running."
    )
    if any(isinstance(leaf, (TimeoutError, httpx2.TimeoutException)) for leaf in leaves):
        hint = " Raise the tool's sandbox timeout if the server needs longer." if doing.startswith("calling") else ""
        return ToolError(
            f"{_capital(label)} did not answer within {round(timeout, 1):g} s while {doing}: "
            f"the call was abandoned.{hint}",
            code="timeout",
        )
    for leaf in leaves:
        if isinstance(leaf, ToolError):
            return leaf
        if isinstance(leaf, MCPError):
            reason = clip_text(leaf.error.message, MAX_ERROR_CHARS)
            hint = f" {check}" if doing == "connecting" else ""
            return ToolError(
                f"{_capital(label)} answered with an error while {doing}: {reason} (MCP error {leaf.error.code})."
                f"{hint}{_stderr_tail(errlog)}",
                code="mcp_error",
            )
        if isinstance(leaf, httpx2.TransportError):
            return ToolError(
                f"Could not reach {label} while {doing}: {clip_text(str(leaf), 300) or type(leaf).__name__}. {check}",
                code="mcp_unreachable",
                retryable=doing == "connecting",
            )
        if isinstance(leaf, (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream)):
            return ToolError(
                f"{_capital(label)} closed the connection while {doing}. {check}" + _stderr_tail(errlog),
                code="mcp_unreachable",
            )
        if isinstance(leaf, OSError):
            return ToolError(
                f"Could not start {label}: {leaf.strerror or leaf}. {check}",
                code="mcp_unreachable",
            )
        if isinstance(leaf, (ValidationError, RuntimeError)):
            return ToolError(
                f"{_capital(label)} gave an answer that is not valid MCP while {doing}: {clip_text(str(leaf), 500)}",
                code="mcp_error",
            )
    return None
