"""OTLP trace ingest: authenticate the sender's token, decode its export, map the spans, store them.

An agent built anywhere with any OpenTelemetry SDK points its OTLP/HTTP exporter at `/v1/traces`
with an API token carrying the `ingest` scope; its spans then go through the same span-writing
path as the runtime's (`store.span_record` + `store.spans_write`, DESIGN.md invariant 8).

- Each ResourceSpans' `service.name` names an agent of the token's team: an existing agent of
  that name (internal or external), else a new external agent registered in the inventory
  (`agents.services.agent_register_external`). `service.version` becomes the agent version.
- Spans are checked one by one. An invalid span (bad ids, no name, impossible times, absurd token
  counts) is rejected alone and reported through OTLP partial success; the rest are stored.
- A body that cannot be decoded at all, or is too big, is refused whole: nothing is stored.

Caches (per web process, for throughput: the same exporter sends many batches a second):
- token lookups are kept for TOKEN_CACHE_SECONDS (5 s): revoking a token, removing its owner
  from the team or deactivating the owner takes effect within 5 s in every process; a token's
  expiry time is honoured exactly.
- the names of the token's team's agents resolved to ids are kept with the cached token (so
  for the same 5 s); agent ids never change, and a new agent is registered at most once.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from .redaction import MAX_ATTRIBUTES, MAX_EVENTS, MAX_VALUE_CHARS
from .store import SpanRecord, span_record, spans_write

log = logging.getLogger(__name__)

PROTOBUF = "protobuf"
JSON = "json"
SOURCE = "otlp"
UNKNOWN_SERVICE = "unknown-service"
TOKEN_CACHE_SECONDS = 5.0
# A whole request over this many spans is refused (413): split it into smaller batches. The
# SDKs' batch processors send at most 512 by default, collectors a few thousand.
MAX_SPANS_PER_REQUEST = 50_000
# Token counts beyond this in one call are a sender's bug, not usage (and would overflow columns).
MAX_TOKENS_PER_CALL = 1_000_000_000
MAX_DEPTH = 8
_TOKEN_ATTRIBUTES = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.cached_tokens",
)
_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUSES = {1: "ok", 2: "error"}
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
# Spans are timed in nanoseconds since the epoch; before 2000 means seconds or milliseconds were sent.
_MIN_NS = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000_000
_FUTURE_NS = 24 * 3600 * 1_000_000_000
_INVALID_NAME_CHARS = re.compile(r"[^a-z0-9_.-]+")
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 8, 415: 3, 429: 8, 503: 14}


class IngestError(Exception):
    """A whole request refused: the HTTP status to answer and a message saying how to fix it."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class IngestClient:
    """Who is sending: an API token with the ingest scope, its team, and the team's agents seen so far."""

    token_id: int
    token_prefix: str
    team_id: int
    expires_at: datetime | None
    cached_at: float = 0.0
    # Normalised service name -> (agent id, agent name), for the life of this cache entry.
    agents: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def actor_label(self) -> str:
        return f"ingest:{self.token_prefix}"


@dataclass
class IngestResult:
    """What one export did: spans received, newly stored (repeats of stored spans are not), rejected."""

    received: int = 0
    stored: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    def reject(self, where: str, problem: str) -> None:
        self.rejected += 1
        if len(self.problems) < 3:
            self.problems.append(f"{where}: {problem}")

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        more = self.rejected - len(self.problems)
        tail = f"; and {more} more" if more > 0 else ""
        return (
            f"{self.rejected} of {self.received} spans rejected (the others were stored): "
            + "; ".join(self.problems)
            + tail
        )


# --- Authentication --------------------------------------------------------------------------

_tokens: dict[str, tuple[float, IngestClient | tuple[int, str]]] = {}


def ingest_forget() -> None:
    """Drop the cached tokens (and the agent names cached with them): tests, and after a revocation."""
    _tokens.clear()


def _credential(authorization: str, token_header: str) -> str:
    if authorization:
        keyword, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if keyword.lower() != "bearer" or not credential or " " in credential:
            raise IngestError(401, "The Authorization header must be 'Bearer <token>' with an API token (fdk_...).")
    else:
        credential = token_header.strip()
    if not credential:
        raise IngestError(
            401,
            "Send an API token with the ingest scope: header 'Authorization: Bearer fdk_...' "
            "(OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20fdk_...). Create one under API tokens.",
        )
    if len(credential) > 200:
        raise IngestError(401, "This API token is not valid. Create a new one with the ingest scope under API tokens.")
    return credential


def ingest_authenticate(*, authorization: str = "", token_header: str = "", path: str = "/v1/traces") -> IngestClient:
    """Return the sender of an ingest request, or raise IngestError 401 (no valid token) / 403 (not allowed).

    The token is found by its SHA-256; results (refusals too) are cached for TOKEN_CACHE_SECONDS.
    """
    from apps.accounts.tokens import token_hash

    credential = _credential(authorization, token_header)
    digest = token_hash(credential)
    now = time.monotonic()
    hit = _tokens.get(digest)
    if hit is not None and now - hit[0] < TOKEN_CACHE_SECONDS:
        cached = hit[1]
        if isinstance(cached, tuple):
            raise IngestError(*cached)
        if cached.expires_at is None or cached.expires_at > timezone.now():
            return cached
    if len(_tokens) > 10_000:
        _tokens.clear()
    try:
        client = _token_lookup(digest, path)
    except IngestError as exc:
        _tokens[digest] = (now, (exc.status, exc.message))
        raise
    client.cached_at = now
    _tokens[digest] = (now, client)
    return client


def _token_lookup(digest: str, path: str) -> IngestClient:
    from apps.accounts.models import ApiToken, TokenScope
    from apps.accounts.permissions import has_perm
    from apps.accounts.services import token_touch

    token = ApiToken.objects.select_related("user", "team").filter(token_hash=digest).first()
    if token is None:
        _refuse(None, "unknown", path)
        raise IngestError(401, "This API token is not valid. Create a new one with the ingest scope under API tokens.")
    if token.revoked_at:
        _refuse(token, "revoked", path)
        raise IngestError(401, "This API token was revoked. Create a new one with the ingest scope under API tokens.")
    if token.expires_at and token.expires_at <= timezone.now():
        _refuse(token, "expired", path)
        raise IngestError(401, "This API token has expired. Create a new one with the ingest scope under API tokens.")
    user = token.user
    if not user.is_active:
        _refuse(token, "inactive_user", path)
        raise IngestError(401, "The account this API token belongs to is disabled.")
    if TokenScope.INGEST not in (token.scopes or []):
        _refuse(token, "scope", path)
        raise IngestError(
            403,
            f"This API token lacks the 'ingest' scope (it has: {', '.join(token.scopes or []) or 'none'}). "
            "Create a token with the ingest scope under API tokens.",
        )
    user._fleetdeck_token = token
    if not has_perm(user, "telemetry.ingest", token.team):
        _refuse(token, "permission", path)
        raise IngestError(
            403,
            f"The token's owner may not send telemetry to team {token.team.slug}: "
            "it takes a builder or owner of the team.",
        )
    token_touch(token=token)
    return IngestClient(
        token_id=token.pk, token_prefix=token.prefix, team_id=token.team_id, expires_at=token.expires_at
    )


def _refuse(token, reason: str, path: str) -> None:
    from apps.audit.models import Outcome
    from apps.audit.services import audit_record

    audit_record(
        actor=None if token is None else f"token:{token.pk}",
        action="auth.token_refused",
        obj=token,
        team=token.team if token is not None else None,
        outcome=Outcome.DENIED,
        metadata={"reason": reason, "path": path},
    )


# --- Decoding --------------------------------------------------------------------------------


def content_format(content_type: str) -> str | None:
    """Return PROTOBUF or JSON for a request's Content-Type, or None when it is neither."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("application/x-protobuf", "application/protobuf"):
        return PROTOBUF
    if media == "application/json":
        return JSON
    return None


def body_decompress(raw: bytes, *, encoding: str, limit: int | None = None) -> bytes:
    """Return the body without its Content-Encoding, refusing (413) more than `limit` bytes once inflated.

    Inflates incrementally up to the limit, so a small gzip bomb costs no more than the limit.
    """
    if limit is None:
        limit = settings.FLEETDECK_INGEST_MAX_DECOMPRESSED_BYTES
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise IngestError(415, f"Content-Encoding '{encoding[:40]}' is not supported: send gzip, or no encoding.")
    parts: list[bytes] = []
    size = 0
    data = raw
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            part = inflater.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise IngestError(400, f"The gzip body is corrupt ({exc}): send a complete gzip stream.") from None
        size += len(part)
        if size > limit or inflater.unconsumed_tail:
            raise IngestError(
                413,
                f"The body inflates to more than {limit} bytes: send smaller batches "
                "(e.g. a lower max_export_batch_size in the BatchSpanProcessor).",
            )
        if not inflater.eof:
            raise IngestError(400, "The gzip body is truncated: send the complete gzip stream.")
        parts.append(part)
        data = inflater.unused_data  # another gzip member follows (concatenated streams are valid gzip)
    return b"".join(parts)


def export_decode(body: bytes, fmt: str) -> ExportTraceServiceRequest:
    """Return the ExportTraceServiceRequest in a protobuf or OTLP/JSON body, or raise IngestError 400."""
    export = ExportTraceServiceRequest()
    if fmt == PROTOBUF:
        try:
            export.ParseFromString(body)
        except (DecodeError, ValueError, RecursionError) as exc:
            raise IngestError(
                400,
                f"The body is not a valid OTLP ExportTraceServiceRequest in protobuf ({str(exc)[:200]}); it may be "
                "truncated or not protobuf at all. Send the serialized "
                "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest with "
                "Content-Type: application/x-protobuf, or OTLP/JSON with Content-Type: application/json.",
            ) from None
        return export
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise IngestError(
            400, f"The body is not valid JSON ({str(exc)[:200]}): send an OTLP/JSON ExportTraceServiceRequest."
        ) from None
    if not isinstance(data, dict):
        raise IngestError(400, 'The JSON body must be an object such as {"resourceSpans": [...]} (OTLP/JSON).')
    _hex_ids_to_base64(data)
    try:
        json_format.ParseDict(data, export, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise IngestError(
            400,
            f"The JSON body is not an OTLP/JSON ExportTraceServiceRequest: {str(exc)[:300]}. Field names are "
            "lowerCamelCase, ids are hex strings, enums are integers, attribute values are objects such as "
            '{"stringValue": "..."}.',
        ) from None
    return export


def _list(obj: dict, *names: str) -> list:
    for name in names:
        value = obj.get(name)
        if isinstance(value, list):
            return value
    return []


def _hex_field(obj: dict, names: tuple[str, str], where: str) -> None:
    for name in names:
        value = obj.get(name)
        if not isinstance(value, str) or not value:
            continue
        try:
            obj[name] = base64.b64encode(bytes.fromhex(value)).decode()
        except ValueError:
            raise IngestError(
                400,
                f"{where}.{names[0]} is not hex ({value[:40]!r}): in OTLP/JSON trace and span ids are hex strings "
                "(32 characters for a trace id, 16 for a span id), not base64.",
            ) from None


def _hex_ids_to_base64(data: dict) -> None:
    """Turn OTLP/JSON's hex ids into the base64 protobuf's JSON mapping expects for bytes fields."""
    for i, rs in enumerate(_list(data, "resourceSpans", "resource_spans")):
        if not isinstance(rs, dict):
            continue
        for j, ss in enumerate(_list(rs, "scopeSpans", "scope_spans")):
            if not isinstance(ss, dict):
                continue
            for k, span in enumerate(_list(ss, "spans")):
                if not isinstance(span, dict):
                    continue
                where = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                _hex_field(span, ("traceId", "trace_id"), where)
                _hex_field(span, ("spanId", "span_id"), where)
                _hex_field(span, ("parentSpanId", "parent_span_id"), where)
                for n, link in enumerate(_list(span, "links")):
                    if isinstance(link, dict):
                        _hex_field(link, ("traceId", "trace_id"), f"{where}.links[{n}]")
                        _hex_field(link, ("spanId", "span_id"), f"{where}.links[{n}]")


# --- Mapping ---------------------------------------------------------------------------------


def _text(value: str) -> str:
    # PostgreSQL refuses NUL characters in text and jsonb; overlong values are cut before redaction scans them.
    if len(value) > MAX_VALUE_CHARS:
        value = value[: MAX_VALUE_CHARS + 1]
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value


def _value(value, depth: int = 0):
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return _text(value.string_value)
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else str(number)
    if kind == "bool_value":
        return value.bool_value
    if kind == "array_value":
        if depth >= MAX_DEPTH:
            return "[nested too deep]"
        return [_value(v, depth + 1) for v in value.array_value.values[:MAX_ATTRIBUTES]]
    if kind == "kvlist_value":
        if depth >= MAX_DEPTH:
            return "[nested too deep]"
        return attributes_flatten(value.kvlist_value.values, depth + 1)
    if kind == "bytes_value":
        return value.bytes_value[: MAX_VALUE_CHARS // 2].hex()
    return None


def attributes_flatten(key_values, depth: int = 0) -> dict:
    """Return OTLP KeyValues as a plain dict (arrays as lists, kvlists as dicts, bytes as hex), capped."""
    flat = {}
    for kv in key_values[:MAX_ATTRIBUTES]:
        flat[_text(kv.key)[:200]] = _value(kv.value, depth)
    return flat


def external_agent_name(service_name: str) -> str:
    """Return the agent name a service.name maps to: lowercase letters, digits, '.', '_' and '-', from a letter."""
    name = _INVALID_NAME_CHARS.sub("-", (service_name or "").strip().lower()).strip("-.")
    if not name:
        return UNKNOWN_SERVICE
    if not ("a" <= name[0] <= "z"):
        name = "svc-" + name
    return name[:63].rstrip("-.") or UNKNOWN_SERVICE


def agent_resolve(*, team_id: int, service_name: str, actor_label: str, cache: dict | None = None) -> tuple[int, str]:
    """Return (id, name) of the team's agent a service.name maps to, registering an external agent when new."""
    from apps.accounts.models import Team
    from apps.agents.models import Agent
    from apps.agents.services import agent_register_external

    name = external_agent_name(service_name)
    if cache is not None and name in cache:
        return cache[name]
    row = Agent.objects.filter(team_id=team_id, name=name).values_list("pk", "name").first()
    if row is None:
        agent = agent_register_external(team=Team.objects.get(pk=team_id), name=name, actor_label=actor_label)
        row = (agent.pk, agent.name)
    if cache is not None:
        cache[name] = row
    return row


def _span_problem(span, now_ns: int) -> str | None:
    trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
    if len(trace_id) != 16:
        return f"traceId must be 16 bytes (32 hex characters), got {len(trace_id)} bytes"
    if trace_id == _ZERO_TRACE:
        return "traceId is all zeros, which OpenTelemetry defines as invalid"
    if len(span_id) != 8:
        return f"spanId must be 8 bytes (16 hex characters), got {len(span_id)} bytes"
    if span_id == _ZERO_SPAN:
        return "spanId is all zeros, which OpenTelemetry defines as invalid"
    if len(parent) not in (0, 8):
        return f"parentSpanId must be empty or 8 bytes (16 hex characters), got {len(parent)} bytes"
    if not span.name.strip(" \x00"):
        return "name is empty: every span needs a name"
    start = span.start_time_unix_nano
    if start < _MIN_NS:
        return (
            f"startTimeUnixNano is {start}, before the year 2000: send nanoseconds since the Unix epoch "
            "(not seconds or milliseconds)"
        )
    if start > now_ns + _FUTURE_NS or span.end_time_unix_nano > now_ns + _FUTURE_NS:
        return "the span starts or ends more than a day in the future: check the sending machine's clock"
    return None


def _token_problem(attributes: dict) -> str | None:
    for key in _TOKEN_ATTRIBUTES:
        value = attributes.get(key)
        if value is None:
            continue
        try:
            count = int(value)
        except (TypeError, ValueError, OverflowError):
            continue
        if count > MAX_TOKENS_PER_CALL:
            return f"{key} is {count}: one call uses at most {MAX_TOKENS_PER_CALL} tokens"
    return None


def export_map(
    *, team_id: int, export: ExportTraceServiceRequest, actor_label: str, agents: dict | None = None
) -> tuple[list[SpanRecord], IngestResult]:
    """Return the valid spans of an export as priced, redacted records, and what was rejected and why.

    Agents named by service.name are resolved (registered when new) only for resources that
    have at least one valid span.
    """
    result = IngestResult()
    records: list[SpanRecord] = []
    seen: set[tuple[bytes, bytes]] = set()
    now_ns = time.time_ns()
    total = sum(len(ss.spans) for rs in export.resource_spans for ss in rs.scope_spans)
    if total > MAX_SPANS_PER_REQUEST:
        raise IngestError(
            413, f"The request holds {total} spans: send at most {MAX_SPANS_PER_REQUEST} spans per request."
        )
    for i, rs in enumerate(export.resource_spans):
        valid = []
        for j, ss in enumerate(rs.scope_spans):
            scope = {}
            if ss.scope.name:
                scope["otel.scope.name"] = _text(ss.scope.name)[:200]
                if ss.scope.version:
                    scope["otel.scope.version"] = _text(ss.scope.version)[:100]
            for k, span in enumerate(ss.spans):
                result.received += 1
                problem = _span_problem(span, now_ns)
                attributes = None
                if problem is None:
                    key = (span.trace_id, span.span_id)
                    if key in seen:
                        problem = "repeats the traceId and spanId of an earlier span in this request"
                    seen.add(key)
                if problem is None:
                    attributes = attributes_flatten(span.attributes)
                    problem = _token_problem(attributes)
                if problem is not None:
                    name = _text(span.name)[:60]
                    result.reject(f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}] ({name!r})", problem)
                    continue
                valid.append((span, attributes, scope))
        if not valid:
            continue
        resource = attributes_flatten(rs.resource.attributes)
        service = resource.get("service.name")
        agent_id, agent_name = agent_resolve(
            team_id=team_id,
            service_name=str(service) if service not in (None, "") else UNKNOWN_SERVICE,
            actor_label=actor_label,
            cache=agents,
        )
        version = resource.get("service.version")
        agent_version = str(version) if version not in (None, "") else ""
        for span, attributes, scope in valid:
            if scope:
                for key, value in scope.items():
                    attributes.setdefault(key, value)
            if span.links:
                # Links as W3C traceparents, the form the runtime's own spans keep them in.
                attributes["fleetdeck.links"] = [
                    f"00-{link.trace_id.hex()}-{link.span_id.hex()}-01" for link in list(span.links)[:32]
                ]
            status = span.status
            records.append(
                span_record(
                    team_id=team_id,
                    source=SOURCE,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex() if span.parent_span_id != _ZERO_SPAN else "",
                    name=_text(span.name),
                    kind=_KINDS.get(span.kind, "internal"),
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    status=_STATUSES.get(status.code, "unset"),
                    status_message=_text(status.message),
                    attributes=attributes,
                    resource=resource,
                    events=[
                        {
                            "name": _text(e.name),
                            "time": e.time_unix_nano,
                            "attributes": attributes_flatten(e.attributes),
                        }
                        for e in span.events[:MAX_EVENTS]
                    ],
                    agent_id=agent_id,
                    agent_name=agent_name,
                    agent_version=agent_version,
                )
            )
    return records, result


def export_ingest(
    *, team_id: int, export: ExportTraceServiceRequest, actor_label: str, agents: dict | None = None
) -> IngestResult:
    """Map an export's spans and store the valid ones durably (one transaction); return what happened."""
    records, result = export_map(team_id=team_id, export=export, actor_label=actor_label, agents=agents)
    result.stored = len(spans_write(records))
    return result


def export_response(result: IngestResult) -> ExportTraceServiceResponse:
    """Return the OTLP answer: partial success naming the rejected spans, if any."""
    response = ExportTraceServiceResponse()
    if result.rejected:
        response.partial_success.rejected_spans = result.rejected
        response.partial_success.error_message = result.error_message
    return response


def response_body(message, fmt: str) -> tuple[bytes, str]:
    """Return a protobuf message encoded as the request was (protobuf or OTLP/JSON) and its content type."""
    if fmt == JSON:
        data = json_format.MessageToDict(message)
        return json.dumps(data, separators=(",", ":")).encode(), "application/json"
    return message.SerializeToString(), "application/x-protobuf"


def status_body(status: int, message: str, fmt: str) -> tuple[bytes, str]:
    """Return a google.rpc.Status for an error answer, encoded like the request."""
    from google.rpc.status_pb2 import Status

    return response_body(Status(code=_GRPC_CODES.get(status, 2), message=message), fmt)
