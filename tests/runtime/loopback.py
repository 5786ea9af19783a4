"""A real HTTP server on 127.0.0.1 for tests: one handler function, run in a thread, as a context manager.

    def handler(request):
        if request.path == "/slow":
            time.sleep(2)
        request.reply(200, {"seen": request.headers.get("X-Token")})

    with loopback_server(handler) as server:
        requests.get(server.url + "/slow")
        assert server.requests[0].method == "GET"

The handler receives the http.server request handler itself (method, path, headers, body already
read) and answers with `request.reply(status, body, headers=..., content_type=...)`, or writes to
`request.wfile` directly for anything unusual. An exception in the handler answers 500.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        """Return the request body read as JSON."""
        return json.loads(self.body)


@dataclass
class LoopbackServer:
    """The running server: where it listens and what it received."""

    host: str
    port: int
    requests: list[Recorded] = field(default_factory=list)
    scheme: str = "http"

    @property
    def url(self) -> str:
        """Return the base URL, e.g. http://127.0.0.1:41234 (no trailing slash)."""
        return f"{self.scheme}://{self.host}:{self.port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    handler: Callable = None  # set on the subclass made per server
    recorded: list = None

    def _handle(self):
        self.method = self.command
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        self.recorded.append(Recorded(self.command, self.path, dict(self.headers.items()), self.body))
        self.close_connection = True
        try:
            type(self).handler(self)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up (a timeout test): nothing to answer
        except Exception as exc:  # noqa: BLE001 - a failing test handler must answer, not hang the client
            self.reply(500, f"test handler failed: {exc!r}")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def reply(self, status: int, body=b"", *, headers: dict | None = None, content_type: str | None = None) -> None:
        """Send a whole response: body as bytes, str (text/plain) or any other value as JSON."""
        if isinstance(body, bytes):
            data, default_type = body, "application/octet-stream"
        elif isinstance(body, str):
            data, default_type = body.encode(), "text/plain; charset=utf-8"
        else:
            data, default_type = json.dumps(body).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type or default_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        pass  # a client that disconnects mid-answer is expected in timeout and size-limit tests


@contextmanager
def loopback_server(
    handler: Callable[[BaseHTTPRequestHandler], None], *, tls: ssl.SSLContext | None = None
) -> Iterator[LoopbackServer]:
    """Run an HTTP server on 127.0.0.1 (a free port) answering with handler; stop it on exit.

    With tls (a server-side SSLContext holding a certificate), it speaks HTTPS instead.
    """
    recorded: list[Recorded] = []
    handler_class = type("LoopbackHandler", (_Handler,), {"handler": staticmethod(handler), "recorded": recorded})
    server = _Server(("127.0.0.1", 0), handler_class)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield LoopbackServer(host="127.0.0.1", port=port, requests=recorded, scheme="https" if tls else "http")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
