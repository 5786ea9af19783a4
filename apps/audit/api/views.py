from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.exceptions import ValidationError

from ..forms import AuditFilterForm
from ..models import AuditEvent
from ..selectors import FILTERS, audit_event_list
from .serializers import AuditEventSerializer


@extend_schema(parameters=[OpenApiParameter(name, str, description=f"Filter by {name}") for name in FILTERS])
class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The audit log (platform admins and security auditors), newest first."""

    serializer_class = AuditEventSerializer
    lookup_field = "seq"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no real user to filter by
            return AuditEvent.objects.none()
        form = AuditFilterForm(self.request.query_params)
        if not form.is_valid():
            raise ValidationError(form.errors.get_json_data())
        return audit_event_list(user=self.request.user, filters=form.cleaned_data)
