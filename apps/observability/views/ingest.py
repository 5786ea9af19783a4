"""OTLP/HTTP trace ingest at POST /v1/traces, answering as the OTLP specification says.

- 200 with an ExportTraceServiceResponse (in the request's encoding) once the spans are durably
  stored; invalid spans are reported through `partial_success` while the valid ones are kept.
- 400 (undecodable body), 401 (no valid token), 403 (token without the ingest scope or
  permission), 405 (not POST), 413 (too big, compressed or inflated), 415 (content type or
  encoding not supported): not retryable; the body is a google.rpc.Status saying what to fix.
- 503 with Retry-After when the database is unavailable: retryable, the exporter sends again.

A plain Django view, not a DRF one, and CSRF-exempt: it takes no cookies, only a bearer token,
and it is the hottest path of the platform. Token lookups are cached for a few seconds (see
apps/observability/ingest.py): a revoked token stops working within 5 seconds.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, DataError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .. import ingest

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5


def _answer(status: int, message: str, fmt: str) -> HttpResponse:
    body, content_type = ingest.status_body(status, message, fmt)
    response = HttpResponse(body, status=status, content_type=content_type)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="fleetdeck-ingest"'
    elif status == 405:
        response["Allow"] = "POST"
    elif status == 503:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _read_body(request) -> bytes:
    limit = settings.FLEETDECK_INGEST_MAX_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ingest.IngestError(400, "The Content-Length header is not a number.") from None
    too_big = ingest.IngestError(
        413,
        f"The body is larger than {limit} bytes: send smaller batches (a lower max_export_batch_size "
        "in the BatchSpanProcessor) or compress them with gzip.",
    )
    if length > limit:
        raise too_big
    # Read the stream ourselves: request.body would refuse bodies over DATA_UPLOAD_MAX_MEMORY_SIZE.
    body = request.read(limit + 1)
    if len(body) > limit:
        raise too_big
    return body


@csrf_exempt
def otlp_traces_view(request):
    """Store the spans of an OTLP/HTTP trace export (protobuf or JSON, optionally gzip) for the token's team."""
    fmt = ingest.content_format(request.META.get("CONTENT_TYPE", ""))
    answer_fmt = fmt or ingest.PROTOBUF
    if request.method != "POST":
        return _answer(405, "Send traces with POST /v1/traces (OTLP/HTTP).", answer_fmt)
    try:
        client = ingest.ingest_authenticate(
            authorization=request.META.get("HTTP_AUTHORIZATION", ""),
            token_header=request.META.get("HTTP_X_FLEETDECK_TOKEN", ""),
            path=request.path,
        )
        if fmt is None:
            raise ingest.IngestError(
                415,
                "Send Content-Type: application/x-protobuf (OTLP protobuf) or application/json (OTLP/JSON).",
            )
        body = ingest.body_decompress(_read_body(request), encoding=request.META.get("HTTP_CONTENT_ENCODING", ""))
        export = ingest.export_decode(body, fmt)
        result = ingest.export_ingest(
            team_id=client.team_id, export=export, actor_label=client.actor_label, agents=client.agents
        )
    except ingest.IngestError as exc:
        return _answer(exc.status, exc.message, answer_fmt)
    except DataError as exc:
        # A value the database cannot store slipped past the checks: the sender's data, not our trouble.
        log.warning("OTLP ingest refused a batch the database could not store: %s", exc)
        return _answer(400, "The batch holds a value the database cannot store; nothing was stored.", answer_fmt)
    except DatabaseError:
        log.exception("OTLP ingest could not reach the database")
        return _answer(503, "The span store is unavailable right now; nothing was stored. Retry later.", answer_fmt)
    body, content_type = ingest.response_body(ingest.export_response(result), answer_fmt)
    return HttpResponse(body, status=200, content_type=content_type)
