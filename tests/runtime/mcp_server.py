"""A tiny real MCP server for the tests, built with the SDK's MCPServer (v2's FastMCP).

Run it over stdio:            python tests/runtime/mcp_server.py --stdio
or over streamable HTTP:      python tests/runtime/mcp_server.py --http [--port N]
With --http it binds 127.0.0.1 (port 0: any free port) and prints "PORT <n>" on stdout once it
listens, so a test can start it as a subprocess and read where to connect. Tests use the helpers
`running_http_server()` and `stdio_command()` below.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

SCRIPT = Path(__file__).resolve()
server = MCPServer("fleetdeck-test-server")


class Sum(BaseModel):
    total: int
    terms: list[int]


@server.tool()
def echo(text: str) -> str:
    """Repeat the text back."""
    return text


@server.tool(structured_output=False)
def shout(text: str) -> str:
    """Repeat the text back in capitals, as plain text content."""
    return text.upper()


@server.tool(name="Add.Numbers")
def add_numbers(a: int, b: int = 0) -> Sum:
    """Add two whole numbers and return the sum as structured content."""
    return Sum(total=a + b, terms=[a, b])


@server.tool()
def fail(reason: str) -> str:
    """Fail on purpose with the given reason."""
    raise ToolError(f"refused: {reason}")


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep for the given seconds, then answer."""
    await anyio.sleep(seconds)
    return "done"


class Environment(BaseModel):
    env: list[str]
    home: str
    cwd: str
    meta: dict[str, str]


@server.tool()
def environment(ctx: Context) -> Environment:
    """Report the environment variable names, HOME, the working directory and the request _meta."""
    meta = {str(k): str(v) for k, v in dict(ctx.request_context.meta or {}).items()}
    return Environment(env=sorted(os.environ), home=os.environ.get("HOME", ""), cwd=os.getcwd(), meta=meta)


def serve_http(port: int) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning")
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    anyio.run(lambda: uvicorn.Server(config).serve(sockets=[sock]))


@contextmanager
def running_http_server():
    """Start this server over streamable HTTP in a subprocess; yield its URL; stop it afterwards."""
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--http"], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"The test MCP server did not start (it printed {line!r}).")
        yield f"http://127.0.0.1:{int(line.split()[1])}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def stdio_command() -> list[str]:
    """Return the command line that runs this server over stdio, by the Python executable's bare name.

    The program is found on PATH: put `os.path.dirname(sys.executable)` first on PATH and allow
    `stdio_command()[0]` in FLEETDECK_MCP_STDIO_COMMANDS.
    """
    return [Path(sys.executable).name, str(SCRIPT), "--stdio"]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--stdio", action="store_true", help="serve on stdin/stdout")
    mode.add_argument("--http", action="store_true", help="serve streamable HTTP on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="the port for --http (0: any free port)")
    args = parser.parse_args(argv)
    if args.stdio:
        server.run("stdio")
    else:
        serve_http(args.port)


if __name__ == "__main__":
    main(sys.argv[1:])
