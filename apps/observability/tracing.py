"""The platform's OpenTelemetry set-up: one tracer provider per process, its processors, and spans
with ids and times of our choosing.

- Spans that carry `fleetdeck.team.id` (the runtime's run and step spans) are exported to the
  span store through a BatchSpanProcessor (`FLEETDECK_TRACE_EXPORT=batch`, the default), or in
  the caller's thread (`sync`, used by the tests so spans land in the test's transaction).
- Every span, including Django's request spans and Celery's task spans, also goes to an
  external collector over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the SDK reads
  the standard OTEL_EXPORTER_OTLP_* variables for headers, timeouts and so on).
- A run outlives any one worker (it pauses for approvals and survives dead workers), so its
  spans are not held open: each is written when what it measures has ended, with its recorded
  start and end times and deterministic ids (`emit_span`), so children written by one worker
  attach to a parent written later by another.
"""

from __future__ import annotations

import logging
import os
import threading
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation

from django.conf import settings
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

log = logging.getLogger(__name__)

TEAM_ATTRIBUTE = "fleetdeck.team.id"
_forced_span_id: ContextVar[int | None] = ContextVar("fleetdeck_span_id", default=None)
_forced_trace_id: ContextVar[int | None] = ContextVar("fleetdeck_trace_id", default=None)
_provider: TracerProvider | None = None
_store: _SwitchableProcessor | None = None
_lock = threading.Lock()


class _Ids(RandomIdGenerator):
    """Random ids, unless `emit_span` asked for particular ones."""

    def generate_span_id(self) -> int:
        return _forced_span_id.get() or super().generate_span_id()

    def generate_trace_id(self) -> int:
        return _forced_trace_id.get() or super().generate_trace_id()


class StoreExporter(SpanExporter):
    """Write the platform's own spans through the one span-writing path (`store.spans_write`)."""

    def export(self, spans) -> SpanExportResult:
        from django.db import close_old_connections

        from .store import spans_write

        records = [r for r in (_record(s) for s in spans) if r is not None]
        if not records:
            return SpanExportResult.SUCCESS
        try:
            spans_write(records)
        except Exception:  # noqa: BLE001 - telemetry must never break a run; the failure is logged
            log.exception("could not store %d spans", len(records))
            return SpanExportResult.FAILURE
        finally:
            if threading.current_thread() is not threading.main_thread() and _store and _store.mode == "batch":
                close_old_connections()
        return SpanExportResult.SUCCESS


class _SwitchableProcessor(SpanProcessor):
    """The store's processor, switchable between batch (production) and sync (tests) in one process."""

    def __init__(self, mode: str):
        self.exporter = StoreExporter()
        self.mode = ""
        self.inner: SpanProcessor | None = None
        self.switch(mode)

    def switch(self, mode: str) -> None:
        if mode == self.mode:
            return
        old = self.inner
        if mode == "batch":
            self.inner = BatchSpanProcessor(self.exporter, schedule_delay_millis=1000, max_export_batch_size=512)
        elif mode == "sync":
            self.inner = SimpleSpanProcessor(self.exporter)
        else:
            self.inner = None
        self.mode = mode
        if old is not None:
            old.force_flush()

    def on_start(self, span, parent_context=None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self.inner is not None and span.attributes and TEAM_ATTRIBUTE in span.attributes:
            self.inner.on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis) if self.inner is not None else True

    def shutdown(self) -> None:
        if self.inner is not None:
            self.inner.shutdown()


def setup() -> TracerProvider:
    """Create this process's tracer provider once and instrument Django and Celery with it."""
    global _provider, _store
    with _lock:
        if _provider is not None:
            return _provider
        resource = Resource.create(
            {
                "service.name": os.environ.get("OTEL_SERVICE_NAME") or "fleetdeck",
                "deployment.environment.name": settings.FLEETDECK_ENV,
            }
        )
        provider = TracerProvider(resource=resource, id_generator=_Ids())
        _store = _SwitchableProcessor(settings.FLEETDECK_TRACE_EXPORT)
        provider.add_span_processor(_store)
        if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _provider = provider
        if settings.FLEETDECK_INSTRUMENT_FRAMEWORKS:
            from opentelemetry.instrumentation.celery import CeleryInstrumentor
            from opentelemetry.instrumentation.django import DjangoInstrumentor

            DjangoInstrumentor().instrument(
                tracer_provider=provider, excluded_urls="healthz,readyz,static/,v1/traces,metrics"
            )
            CeleryInstrumentor().instrument(tracer_provider=provider)
        return provider


def set_export_mode(mode: str) -> None:
    """Switch how the platform's spans reach the store: "batch", "sync" or "off"."""
    setup()
    _store.switch(mode)


def flush(timeout_millis: int = 30000) -> bool:
    """Export every span ended so far (before a worker exits, and in tests)."""
    return setup().force_flush(timeout_millis)


def tracer():
    return setup().get_tracer("fleetdeck.runtime")


def current_traceparent() -> str:
    """Return the W3C traceparent of the span active now (a request or a task), or ""."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return ""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def _link(traceparent: str) -> Link | None:
    try:
        _, trace_id, span_id, flags = traceparent.split("-")
        return Link(SpanContext(int(trace_id, 16), int(span_id, 16), True, TraceFlags(int(flags, 16))))
    except (ValueError, AttributeError):
        return None


def emit_span(
    *,
    name: str,
    trace_id: str,
    span_id: str,
    parent_span_id: str = "",
    start_ns: int,
    end_ns: int,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict,
    error: str | None = None,
    ok: bool = True,
    link_traceparent: str = "",
) -> None:
    """Record a finished span with the given ids and times; it reaches the store and any collector."""
    # A root must not become the child of whatever span is active (a Celery task's, a request's).
    context = Context()
    if parent_span_id:
        parent = SpanContext(int(trace_id, 16), int(parent_span_id, 16), True, TraceFlags(TraceFlags.SAMPLED))
        context = trace.set_span_in_context(NonRecordingSpan(parent))
    link = _link(link_traceparent) if link_traceparent else None
    span_token = _forced_span_id.set(int(span_id, 16))
    trace_token = _forced_trace_id.set(int(trace_id, 16))
    try:
        span = tracer().start_span(
            name,
            context=context,
            kind=kind,
            attributes={k: v for k, v in attributes.items() if v is not None},
            links=[link] if link else None,
            start_time=start_ns,
        )
    finally:
        _forced_span_id.reset(span_token)
        _forced_trace_id.reset(trace_token)
    if error is not None or not ok:
        span.set_status(Status(StatusCode.ERROR, (error or "")[:1000]))
    else:
        span.set_status(Status(StatusCode.OK))
    span.end(end_time=max(end_ns, start_ns))


_KINDS = {
    SpanKind.INTERNAL: "internal",
    SpanKind.SERVER: "server",
    SpanKind.CLIENT: "client",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
}
_STATUS = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _record(span: ReadableSpan):
    from .models import SpanSource
    from .store import span_record

    attributes = dict(span.attributes or {})
    team_id = _int_or_none(attributes.get(TEAM_ATTRIBUTE))
    if team_id is None:
        return None
    tool_cost = None
    if "fleetdeck.tool.cost_usd" in attributes:
        try:
            tool_cost = Decimal(str(attributes["fleetdeck.tool.cost_usd"]))
        except InvalidOperation:
            tool_cost = None
    if span.links:
        attributes["fleetdeck.links"] = [
            f"00-{link.context.trace_id:032x}-{link.context.span_id:016x}-01" for link in span.links
        ]
    return span_record(
        team_id=team_id,
        source=SpanSource.RUNTIME,
        trace_id=f"{span.context.trace_id:032x}",
        span_id=f"{span.context.span_id:016x}",
        parent_span_id=f"{span.parent.span_id:016x}" if span.parent else "",
        name=span.name,
        kind=_KINDS.get(span.kind, "internal"),
        start_ns=span.start_time or 0,
        end_ns=span.end_time or span.start_time or 0,
        status=_STATUS.get(span.status.status_code, "unset"),
        status_message=span.status.description or "",
        attributes=attributes,
        resource=dict(span.resource.attributes) if span.resource else {},
        events=[{"name": e.name, "time": e.timestamp, "attributes": dict(e.attributes or {})} for e in span.events],
        agent_id=_int_or_none(attributes.get("fleetdeck.agent.id")),
        agent_name=str(attributes.get("gen_ai.agent.name") or ""),
        agent_version=str(attributes.get("fleetdeck.agent.version") or ""),
        run_id=_int_or_none(attributes.get("fleetdeck.run.id")),
        tool_cost_usd=tool_cost,
    )
