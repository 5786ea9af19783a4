"""Request-scoped middleware: request ids and client addresses, and audited access denials."""

from django.conf import settings
from django.shortcuts import render

from . import context
from .exceptions import AccessDenied

REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"


def client_ip(request) -> str | None:
    """Return the client address, trusting X-Forwarded-For only behind a declared proxy."""
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    """Give each request an id (the caller's X-Request-ID if sane) and bind it for logs and audit."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get(REQUEST_ID_HEADER, "")
        request_id = incoming if incoming.isalnum() and len(incoming) <= 64 else context.new_request_id()
        request.request_id = request_id
        ctx = context.RequestContext(
            request_id=request_id, ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", "")[:200]
        )
        with context.bind(ctx):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class AccessDeniedMiddleware:
    """Turn a service's AccessDenied into a 403 page and record the denial in the audit log.

    The denial is written after the service's transaction rolled back, so it is never lost with it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, AccessDenied):
            return None
        from apps.audit.services import audit_denial

        audit_denial(actor=request.user, perm=exception.perm, team=exception.team, obj=exception.obj, path=request.path)
        return render(request, "403.html", {"message": exception.message}, status=403)
