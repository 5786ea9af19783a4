"""The executor for tools of kind http: fill the request from the arguments, call the API, return its answer.

The request is built from the tool's config (apps/tools/specs.py): `{param}` placeholders in the
URL's path and query are filled with percent-encoded arguments (an argument cannot change the host
or leave its path segment), `{{secrets.name}}` references in headers are filled only here, at the
call, and every secret value is scrubbed from whatever is returned or raised.

Every hop goes through the SSRF guard (netguard.guard_url) and connects to the address the guard
resolved and checked, never to a second resolution of the name; redirects are followed by hand, at
most five, each one guarded again. The call as a whole, redirects included, ends by config.timeout_s
or the run's deadline, whichever comes first, and a response larger than config.max_response_bytes
is refused without reading it all.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import ssl
import time
from urllib.parse import SplitResult, quote, urlencode, urljoin, urlsplit

from apps.tools.specs import MAX_RESPONSE_BYTES, PLACEHOLDER_RE, SECRET_REF_RE

from . import netguard
from .base import ToolCallContext, ToolError, clip_text

logger = logging.getLogger(__name__)

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
JSON_BODY_METHODS = {"POST", "PUT", "PATCH"}  # the arguments become the body when the config has no body template
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
RETRYABLE_STATUSES = {429, 502, 503, 504}
USER_AGENT = "Fleetdeck-Tool/1.0"
ERROR_EXCERPT_CHARS = 500
READ_CHUNK = 64 * 1024
# Framing and routing are ours to set: a template must not smuggle a second request or another Host.
RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade"}
# Credentials that must not follow a redirect to another origin (besides headers filled from secrets).
CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie"}
# Characters a request target may hold as they are; everything else (spaces, non-ASCII) is percent-encoded.
TARGET_SAFE = "/?#[]@!$&'()*+,;=%:~"
_HEADER_TOKEN_RE = re.compile(f"{SECRET_REF_RE.pattern}|{PLACEHOLDER_RE.pattern}")
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/x-www-form")


class _Secrets:
    """Read the tool's secrets on demand and remember their values, to scrub them from anything shown."""

    def __init__(self, ctx: ToolCallContext):
        self._ctx = ctx
        self._values: list[str] = []

    def get(self, name: str) -> str:
        value = str(self._ctx.secret(name))
        if value and value not in self._values:
            self._values.append(value)
            self._values.sort(key=len, reverse=True)  # a secret containing another is scrubbed whole
        return value

    def scrub(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, "[secret]")
        return text

    def scrub_value(self, value):
        if not self._values:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, list):
            return [self.scrub_value(item) for item in value]
        if isinstance(value, dict):
            return {self.scrub(str(key)): self.scrub_value(item) for key, item in value.items()}
        return value


def _text(value) -> str:
    """Return an argument as it is written into a URL or header: strings as they are, other values as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _fill_text(template: str, arguments: dict, encode) -> str:
    """Return template with each {param} replaced by encode(argument text); missing arguments become ''."""
    return PLACEHOLDER_RE.sub(lambda match: encode(_text(arguments.get(match.group(1)))), template)


def _only_placeholder(template: str) -> str | None:
    """Return the parameter name if the template is exactly one {param}, else None."""
    match = PLACEHOLDER_RE.fullmatch(template)
    return match.group(1) if match else None


def _fill_encoded(template: str, arguments: dict) -> str:
    """Return a URL part with each {param} replaced by the argument percent-encoded whole (no '/', '?', '&', '#')."""
    pieces = PLACEHOLDER_RE.split(template)  # literal, name, literal, name, ...
    return "".join(
        quote(_text(arguments.get(piece)), safe="") if index % 2 else quote(piece, safe=TARGET_SAFE)
        for index, piece in enumerate(pieces)
    )


def build_url(template: str, query: dict, arguments: dict) -> str:
    """Return the URL to call: the template's path and query filled with encoded arguments, plus config.query."""
    head = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*", template)
    if head is None:
        raise ToolError(f"The tool's URL {clip_text(template, 200)} is not an http(s) URL.", code="invalid_config")
    rest = template[head.end() :].split("#", 1)[0]
    path_template, _, query_template = rest.partition("?")

    for name in PLACEHOLDER_RE.findall(path_template):
        if arguments.get(name) in (None, ""):
            raise ToolError(
                f"The argument {name} is required: it fills the URL path ({clip_text(path_template, 200)}).",
                code="invalid_arguments",
            )
    path = _fill_encoded(path_template, arguments)
    if any(segment in (".", "..") for segment in path.split("/")):
        raise ToolError(
            "The arguments would put '.' or '..' as a whole segment of the URL path, which would reach another "
            "endpoint than the tool's; pass the identifier itself.",
            code="invalid_arguments",
        )
    path = path or "/"

    pairs = []
    for name, value_template in query.items():
        only = _only_placeholder(value_template)
        if only is not None and arguments.get(only) is None:
            continue  # an optional argument left out: leave the parameter out rather than send it empty
        pairs.append((name, _fill_text(value_template, arguments, lambda text: text)))
    query_parts = []
    if query_template:
        query_parts.append(_fill_encoded(query_template, arguments))
    if pairs:
        query_parts.append(urlencode(pairs, quote_via=quote))
    url = head.group(0) + path
    if query_parts:
        url += "?" + "&".join(query_parts)
    # Cannot happen with encoded values; checked all the same because it is what matters.
    if urlsplit(url).netloc != urlsplit(template).netloc:
        raise ToolError("The arguments would change the host the tool calls; refused.", code="invalid_arguments")
    return url


def build_headers(templates: dict, arguments: dict, secrets: _Secrets) -> tuple[dict[str, str], set[str]]:
    """Return the headers to send and the (lowercase) names of those holding a secret."""
    headers: dict[str, str] = {}
    secret_headers: set[str] = set()
    for name, template in templates.items():
        if name.lower() in RESERVED_HEADERS:
            continue
        only = _only_placeholder(template)
        if only is not None and arguments.get(only) is None:
            continue
        if SECRET_REF_RE.search(template):
            secret_headers.add(name.lower())

        def fill(match: re.Match) -> str:
            secret_name, parameter = match.groups()
            return secrets.get(secret_name) if secret_name is not None else _text(arguments.get(parameter))

        # One pass over the template: an argument's text is never read as a secret reference, and a
        # secret's text never as a placeholder.
        value = _HEADER_TOKEN_RE.sub(fill, template)
        if re.search(r"[\r\n\x00]", value):
            raise ToolError(
                f"The header {name} would hold a line break (from an argument or a secret): refused.",
                code="invalid_arguments",
            )
        headers[name] = value
    return headers, secret_headers


def _fill_json(template, arguments: dict):
    """Return the body template with "{param}" strings replaced; a whole-string placeholder keeps the JSON type."""
    if isinstance(template, str):
        only = _only_placeholder(template)
        if only is not None:
            return arguments.get(only)
        return _fill_text(template, arguments, lambda text: text)
    if isinstance(template, list):
        return [_fill_json(item, arguments) for item in template]
    if isinstance(template, dict):
        filled = {}
        for key, item in template.items():
            only = _only_placeholder(item) if isinstance(item, str) else None
            if only is not None and only not in arguments:
                continue  # an optional argument left out: leave the field out rather than send null
            filled[key] = _fill_json(item, arguments)
        return filled
    return template


def build_body(method: str, template: dict | None, arguments: dict) -> bytes | None:
    """Return the JSON body to send, or None: the filled template, or the arguments for POST/PUT/PATCH."""
    if template is not None and method != "GET":
        return json.dumps(_fill_json(template, arguments)).encode()
    if template is None and method in JSON_BODY_METHODS:
        return json.dumps(arguments).encode()
    return None


class _Response:
    def __init__(self, status: int, reason: str, headers: http.client.HTTPMessage, body: bytes):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body


def open_pinned_connection(parsed: SplitResult, addresses: list[str], *, timeout: float) -> http.client.HTTPConnection:
    """Return an unopened connection to parsed's host that connects to the guarded addresses only.

    The Host header, TLS server name (SNI) and certificate check use the host name from the URL,
    while the TCP connection goes to the first of addresses that answers (what netguard resolved
    and checked; the name is never resolved again).
    """
    host = parsed.hostname
    port = parsed.port or netguard.ALLOWED_SCHEMES[parsed.scheme.lower()]
    if parsed.scheme.lower() == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)

    def connect_pinned(_host_port, timeout, source_address=None):
        failure: OSError | None = None
        for address in addresses:  # as socket.create_connection does with a name, over checked addresses
            try:
                return socket.create_connection((address, port), timeout, source_address)
            except TimeoutError:
                raise
            except OSError as exc:
                failure = exc
        raise failure

    connection._create_connection = connect_pinned  # http.client's own seam for how the socket is opened
    return connection


class _Call:
    """One tool call's transport: the time it has, the size it may read, and how to describe failures."""

    def __init__(self, *, timeout: float, shortened: bool, configured_timeout: int, limit: int):
        self.timeout = timeout
        self.end = time.monotonic() + timeout
        self.shortened = shortened
        self.configured_timeout = configured_timeout
        self.limit = limit

    def remaining(self, host: str) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise self.timed_out(host)
        return left

    def timed_out(self, host: str) -> ToolError:
        why = f"the tool's timeout_s is {self.configured_timeout}"
        if self.shortened:
            why = f"shortened from the tool's timeout_s of {self.configured_timeout} to the run's remaining time"
        return ToolError(
            f"No complete answer from {host} within {self.timeout:.1f}s ({why}). "
            f"If the API is slow, raise config.timeout_s (at most 120) or ask it for less.",
            code="timeout",
            retryable=True,
        )

    def too_large(self, host: str, size: int | None = None) -> ToolError:
        said = f" ({size} bytes)" if size is not None else ""
        return ToolError(
            f"The answer from {host}{said} is larger than the tool's max_response_bytes of {self.limit} bytes, "
            f"so it was not read. Ask the API for less (a page size or filter argument), or raise "
            f"config.max_response_bytes (at most {MAX_RESPONSE_BYTES} bytes).",
            code="response_too_large",
        )

    def exchange(self, method: str, url: str, headers: dict, body: bytes | None) -> _Response:
        """Guard url, send one request to the pinned address and return the response (body read unless a redirect)."""
        parsed, addresses = netguard.guard_url_addresses(url)
        host = parsed.hostname
        connection = open_pinned_connection(parsed, addresses, timeout=self.remaining(host))
        target = parsed.path or "/"
        if parsed.query:
            target += "?" + parsed.query
        target = quote(target, safe=TARGET_SAFE)
        try:
            connection.connect()
            sock = connection.sock  # keep it: http.client lets go of it once a closing response starts
            connection.request(method, target, body=body, headers=headers)
            sock.settimeout(self.remaining(host))
            response = connection.getresponse()
            if response.status in REDIRECT_STATUSES and response.getheader("Location"):
                return _Response(response.status, response.reason, response.msg, b"")
            data = self._read(response, sock, host, strict=200 <= response.status < 300)
            return _Response(response.status, response.reason, response.msg, data)
        except TimeoutError:
            raise self.timed_out(host) from None
        except ssl.SSLCertVerificationError as exc:
            raise ToolError(
                f"The TLS certificate of {host} could not be verified ({exc.verify_message}). "
                "The API must present a valid certificate for its host name.",
                code="tls_error",
            ) from None
        except ssl.SSLError as exc:
            raise ToolError(f"The TLS connection to {host} failed: {exc.reason or exc}.", code="tls_error") from None
        except ConnectionRefusedError:
            raise ToolError(
                f"Could not connect to {host} port {parsed.port or netguard.ALLOWED_SCHEMES[parsed.scheme.lower()]}: "
                "the connection was refused (is the API up?).",
                code="connection_error",
                retryable=True,
            ) from None
        except http.client.HTTPException as exc:
            raise ToolError(
                f"{host} sent an answer that is not valid HTTP ({type(exc).__name__}: {clip_text(str(exc), 200)}).",
                code="bad_response",
                retryable=isinstance(exc, http.client.RemoteDisconnected),
            ) from None
        except OSError as exc:
            raise ToolError(
                f"The connection to {host} failed: {exc.strerror or exc}.", code="connection_error", retryable=True
            ) from None
        finally:
            connection.close()

    def _read(self, response: http.client.HTTPResponse, sock, host: str, *, strict: bool) -> bytes:
        """Return the body, at most limit bytes; when strict, raise instead of cutting a larger one."""
        declared = response.getheader("Content-Length")
        if strict and declared and declared.isdigit() and int(declared) > self.limit:
            raise self.too_large(host, int(declared))
        chunks: list[bytes] = []
        total = 0
        while True:
            sock.settimeout(self.remaining(host))
            chunk = response.read1(min(READ_CHUNK, self.limit + 1 - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
            if total > self.limit:
                if strict:
                    raise self.too_large(host)
                return b"".join(chunks)[: self.limit]


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = urlsplit(url)
    return parsed.scheme.lower(), (parsed.hostname or "").lower(), parsed.port


def _decode(headers: http.client.HTTPMessage, data: bytes) -> tuple[str, object]:
    """Return (content type, body): parsed JSON for JSON, text for text, a short note for binary content."""
    content_type = headers.get("Content-Type", "") or ""
    mime = content_type.split(";", 1)[0].strip().lower()
    if not data:
        return content_type, None
    textual = not mime or mime.startswith(TEXT_TYPES) or mime.endswith(("+json", "+xml"))
    if not textual:
        return content_type, f"[{len(data)} bytes of {mime}, not shown]"
    charset = headers.get_content_charset() or "utf-8"
    try:
        text = data.decode(charset, errors="replace")
    except LookupError:
        text = data.decode("utf-8", errors="replace")
    if mime == "application/json" or mime.endswith("+json"):
        try:
            return content_type, json.loads(text)
        except ValueError:
            return content_type, text
    return content_type, text


def _status_error(method: str, url: str, response: _Response) -> ToolError:
    status = response.status
    hint = ""
    if status in (401, 403):
        hint = " The API refused the call: check the secrets the tool's headers use and what they may do."
    elif status == 404:
        hint = " Nothing is at this address: check the arguments that fill the URL."
    elif status == 429:
        hint = " The API is rate limiting: try again later."
    elif status >= 500:
        hint = " The API failed; try again later."
    excerpt = response.body.decode("utf-8", errors="replace").strip()
    excerpt = f" Body: {clip_text(excerpt, ERROR_EXCERPT_CHARS)}" if excerpt else ""
    return ToolError(
        f"{method} {clip_text(url, 300)} answered HTTP {status} {response.reason}.{hint}{excerpt}",
        code="http_status",
        retryable=status in RETRYABLE_STATUSES,
    )


def _timeout(config: dict, ctx: ToolCallContext) -> tuple[float, bool]:
    """Return the seconds this call may take and whether the run's deadline shortened them."""
    timeout = float(config.get("timeout_s") or 30)
    if ctx.deadline is None:
        return timeout, False
    left = ctx.deadline - time.monotonic()
    if left <= 0:
        raise ToolError(
            "The run has no time left for this tool call; raise the agent's time limit if runs need longer.",
            code="timeout",
        )
    return (left, True) if left < timeout else (timeout, False)


def execute(*, spec: dict, arguments: dict, ctx: ToolCallContext) -> dict:
    """Call the tool's HTTP API with the arguments and return {"status", "content_type", "body"}.

    Raise ToolError for a refused address (ssrf_refused), a non-2xx answer (http_status), a timeout,
    a connection failure or an answer over max_response_bytes; no secret appears in either.
    """
    config = spec["config"]
    arguments = arguments or {}
    secrets = _Secrets(ctx)
    try:
        return secrets.scrub_value(_execute(config, arguments, ctx, secrets))
    except ToolError as exc:
        failure = exc
    # Raised outside the except block so the original (unscrubbed) error is not chained as __context__.
    raise ToolError(secrets.scrub(failure.message), code=failure.code, retryable=failure.retryable)


def _execute(config: dict, arguments: dict, ctx: ToolCallContext, secrets: _Secrets) -> dict:
    method = (config.get("method") or "GET").upper()
    url = build_url(config["url"], config.get("query") or {}, arguments)
    headers, secret_headers = build_headers(config.get("headers") or {}, arguments, secrets)
    body = build_body(method, config.get("body"), arguments)
    present = {name.lower() for name in headers}
    if body is not None and "content-type" not in present:
        headers["Content-Type"] = "application/json"
    if "accept" not in present:
        headers["Accept"] = "application/json, text/*;q=0.9, */*;q=0.5"
    if "user-agent" not in present:
        headers["User-Agent"] = USER_AGENT
    if method in WRITE_METHODS and ctx.idempotency_key and "idempotency-key" not in present:
        headers["Idempotency-Key"] = ctx.idempotency_key  # a retried call carries the same key

    timeout, shortened = _timeout(config, ctx)
    call = _Call(
        timeout=timeout,
        shortened=shortened,
        configured_timeout=int(config.get("timeout_s") or 30),
        limit=int(config.get("max_response_bytes") or 1024 * 1024),
    )
    try:
        for hop in range(MAX_REDIRECTS + 1):
            response = call.exchange(method, url, headers, body)
            location = response.headers.get("Location") if response.status in REDIRECT_STATUSES else None
            if not location:
                break
            if hop == MAX_REDIRECTS:
                raise ToolError(
                    f"{clip_text(url, 300)} redirected more than {MAX_REDIRECTS} times; call the final address directly.",
                    code="too_many_redirects",
                )
            next_url = urljoin(url, location)
            if _origin(next_url) != _origin(url):
                # Credentials were meant for the configured API, not for wherever it points us.
                drop = secret_headers | CREDENTIAL_HEADERS
                headers = {name: value for name, value in headers.items() if name.lower() not in drop}
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None  # what browsers and every HTTP client do; 307/308 keep both
                headers = {name: value for name, value in headers.items() if name.lower() != "content-type"}
            url = next_url
    except (ValueError, http.client.HTTPException) as exc:  # e.g. a header value http.client will not send
        raise ToolError(f"The request could not be sent: {clip_text(str(exc), 300)}", code="invalid_request") from None

    logger.info("http tool call %s %s answered %s", method, _origin(url)[1], response.status)
    if not 200 <= response.status < 300:
        raise _status_error(method, url, response)
    content_type, parsed_body = _decode(response.headers, response.body)
    return {"status": response.status, "content_type": content_type, "body": parsed_body}
