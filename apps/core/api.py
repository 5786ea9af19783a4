"""Shared API pieces: the exception handler that audits denials and turns service errors into 400s."""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .exceptions import AccessDenied, ServiceError


def exception_handler(exc, context):
    """Answer service errors as 400 naming the field, and audit permission denials."""
    request = context.get("request")
    if isinstance(exc, AccessDenied):
        from apps.audit.services import audit_denial

        audit_denial(actor=request.user, perm=exc.perm, team=exc.team, obj=exc.obj, path=request.path)
        return Response({"detail": exc.message, "code": "permission_denied"}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, ServiceError):
        body = {exc.field: [exc.message]} if exc.field else {"detail": exc.message}
        body["code"] = exc.code
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


class SelectorViewSetMixin:
    """Read through the area's selector, never a bare queryset (STYLE.md 3 and 5).

    A viewset names `list_selector`, a function `(user=...) -> QuerySet` already filtered by what
    the user may see; objects outside it answer 404 like objects that do not exist.
    """

    list_selector = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no real user to filter by
            return self.get_serializer_class().Meta.model.objects.none()
        return type(self).list_selector(user=self.request.user)
