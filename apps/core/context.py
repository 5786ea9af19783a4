"""Hold what the current request is (its id and client address) for logs and audit events.

Set by RequestContextMiddleware and by Celery tasks; read by the audit service and the log filter,
so services need not pass the request around.
"""

import contextvars
import uuid
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    ip: str | None = None
    user_agent: str = ""


_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("fleetdeck_request", default=RequestContext())  # noqa: B039 - frozen dataclass


def current() -> RequestContext:
    """Return the context of the request or task being served (empty outside one)."""
    return _current.get()


def new_request_id() -> str:
    """Return a fresh request id."""
    return uuid.uuid4().hex


@contextmanager
def bind(ctx: RequestContext):
    """Make ctx the current context for the duration of the block."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
