"""Fake model servers on loopback that speak the real wire formats, for tests and benchmarks.

    with OpenAIWireServer(script=[reply_tool_calls(("kb_search", {"q": "x"})), reply_text("done")]) as server:
        provider.base_url = server.base_url          # http://127.0.0.1:<port>/v1
        ...
        server.requests[1]["body"]["messages"]       # what the client sent, parsed
        server.calls                                 # how many requests arrived

AnthropicWireServer is the same for POST /v1/messages (its base_url is the root, as the SDK wants).
A script is a list of replies answered in order (see reply_text, reply_tool_calls, reply_error; any
reply may carry "delay" in seconds). When the script has run out the server answers 500 with
x-should-retry: false, so a test that calls too often fails loudly. `instant="text"` answers that
text to every request from a prepared body, for benchmarks; `handling_seconds` lists the server's
own time per request so a benchmark can subtract it.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def reply_text(text: str, *, input_tokens: int = 11, output_tokens: int = 7, delay: float = 0.0) -> dict:
    """Return a script reply that answers text."""
    return {"text": text, "usage": (input_tokens, output_tokens), "delay": delay}


def reply_tool_calls(
    *calls: tuple, text: str | None = None, input_tokens: int = 13, output_tokens: int = 5, delay: float = 0.0
) -> dict:
    """Return a script reply that asks for tool calls: each call is (name, arguments[, id]).

    arguments is a dict, or a string sent as it is (to test invalid JSON).
    """
    return {"text": text, "tool_calls": list(calls), "usage": (input_tokens, output_tokens), "delay": delay}


def reply_error(
    status: int, message: str = "error", *, retry_after_ms: int | None = None, delay: float = 0.0, raw: str = ""
) -> dict:
    """Return a script reply that fails with an HTTP status; retry_after_ms sets the header the SDKs obey."""
    headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
    return {"status": status, "message": message, "headers": headers, "delay": delay, "raw": raw}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDKs reuse their connections
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024  # headers and body leave in one write (flushed after each request)
    server: _WireHTTPServer

    def log_message(self, format, *args):
        return

    def do_POST(self):
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        owner = self.server.owner
        if self.path.rstrip("/") != owner.path:
            self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}).encode(), {})
            return
        if owner.instant is not None:
            if owner.record:
                owner._record(self, raw)
            self._send(200, owner.instant_body, {})
            owner._timed(started)
            return
        number = owner._record(self, raw)
        reply = owner.script[number] if number < len(owner.script) else None
        if reply is None:
            body = owner.error_body(
                500, f"the fake server's script has {len(owner.script)} replies; this is call {number + 1}"
            )
            self._send(500, body, {"x-should-retry": "false"})
            return
        if reply.get("delay"):
            time.sleep(reply["delay"])
        if "status" in reply:
            body = reply["raw"].encode() if reply.get("raw") else owner.error_body(reply["status"], reply["message"])
            self._send(reply["status"], body, reply.get("headers") or {})
        else:
            request = _json(raw)
            self._send(200, json.dumps(owner.success(reply, request, number)).encode(), {})
        owner._timed(started)

    def _send(self, status: int, body: bytes, headers: dict):
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (a timeout test)


def _json(raw: bytes):
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


class _WireHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: _WireServer


class _WireServer:
    path = ""

    def __init__(self, script: list[dict] | None = None, *, instant: str | None = None, record: bool = True):
        self.script = list(script or [])
        self.instant = instant
        self.record = record
        self.requests: list[dict] = []
        self.handling_seconds: list[float] = []
        self.calls = 0
        self._lock = threading.Lock()
        self.instant_body = json.dumps(self.success(reply_text(instant or ""), None, 0)).encode()
        self._httpd: _WireHTTPServer | None = None
        self.root_url = ""
        self._thread: threading.Thread | None = None

    # The wire format: subclasses say how a success and an error look.
    def success(self, reply: dict, request, number: int) -> dict:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> bytes:
        raise NotImplementedError

    def _record(self, handler: _Handler, raw: bytes) -> int:
        entry = {
            "path": handler.path,
            "headers": {k.lower(): v for k, v in handler.headers.items()},
            "body": _json(raw),
        }
        with self._lock:
            number = self.calls
            self.calls += 1
            if self.record:
                self.requests.append(entry)
        return number

    def _timed(self, started: float) -> None:
        elapsed = time.perf_counter() - started
        with self._lock:
            self.handling_seconds.append(elapsed)

    def start(self):
        self._httpd = _WireHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        host, port = self._httpd.server_address[:2]
        self.root_url = f"http://{host}:{port}"  # kept after stop, for assertions on messages
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class OpenAIWireServer(_WireServer):
    """POST /v1/chat/completions, answered as OpenAI does; base_url ends in /v1."""

    path = "/v1/chat/completions"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    def success(self, reply: dict, request, number: int) -> dict:
        message: dict = {"role": "assistant", "content": reply.get("text")}
        calls = reply.get("tool_calls") or []
        if calls:
            message["tool_calls"] = [
                {
                    "id": call[2] if len(call) > 2 else f"call_{number}_{i}",
                    "type": "function",
                    "function": {
                        "name": call[0],
                        "arguments": call[1] if isinstance(call[1], str) else json.dumps(call[1]),
                    },
                }
                for i, call in enumerate(calls)
            ]
        prompt, completion = reply.get("usage") or (0, 0)
        model = request.get("model") if isinstance(request, dict) else "fake-model"
        return {
            "id": f"chatcmpl-{number}",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model or "fake-model",
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop", "logprobs": None}
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }

    def error_body(self, status: int, message: str) -> bytes:
        kind = {401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(status, "server_error")
        return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": str(status)}}).encode()


class AnthropicWireServer(_WireServer):
    """POST /v1/messages, answered as Anthropic does; base_url is the root the SDK appends /v1/messages to."""

    path = "/v1/messages"

    @property
    def base_url(self) -> str:
        return self.root_url

    def success(self, reply: dict, request, number: int) -> dict:
        content: list[dict] = []
        if reply.get("text"):
            content.append({"type": "text", "text": reply["text"]})
        calls = reply.get("tool_calls") or []
        for i, call in enumerate(calls):
            content.append(
                {
                    "type": "tool_use",
                    "id": call[2] if len(call) > 2 else f"toolu_{number}_{i}",
                    "name": call[0],
                    "input": call[1],
                }
            )
        prompt, completion = reply.get("usage") or (0, 0)
        model = request.get("model") if isinstance(request, dict) else "fake-model"
        return {
            "id": f"msg_{number}",
            "type": "message",
            "role": "assistant",
            "model": model or "fake-model",
            "content": content,
            "stop_reason": "tool_use" if calls else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": completion},
        }

    def error_body(self, status: int, message: str) -> bytes:
        kind = {401: "authentication_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
        return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
