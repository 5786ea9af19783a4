from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from apps.core.api import SelectorViewSetMixin
from apps.core.exceptions import ServiceError
from apps.governance.selectors import secret_list

from .. import selectors, services
from ..models import ModelStatus, Provider
from .serializers import (
    ModelCreateSerializer,
    ModelSerializer,
    ModelUpdateSerializer,
    ProviderCreateSerializer,
    ProviderSerializer,
    ProviderUpdateSerializer,
)


def _key_secret(request, data: dict) -> None:
    """Replace the API key secret's name in data by the organisation secret it names."""
    if "api_key_secret" not in data:
        return
    name = data["api_key_secret"]
    if not name:
        data["api_key_secret"] = None
        return
    secret = secret_list(user=request.user, scope="org").filter(name=name).first()
    if secret is None:
        raise ServiceError(
            f"There is no organisation secret '{name}': create it first (POST /api/v1/secrets/ with team null).",
            field="api_key_secret",
        )
    data["api_key_secret"] = secret


class ProviderViewSet(SelectorViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The catalog's providers: every signed-in user reads them; platform admins add and change them."""

    serializer_class = ProviderSerializer
    list_selector = selectors.provider_list
    lookup_field = "name"
    lookup_value_regex = r"[a-z0-9][a-z0-9._-]{0,62}"

    @extend_schema(request=ProviderCreateSerializer, responses={201: ProviderSerializer})
    def create(self, request):
        serializer = ProviderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        _key_secret(request, data)
        provider = services.provider_create(actor=request.user, **data)
        return Response(ProviderSerializer(provider).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ProviderUpdateSerializer, responses=ProviderSerializer)
    def partial_update(self, request, name=None):
        provider = self.get_object()
        serializer = ProviderUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        _key_secret(request, data)
        provider = services.provider_update(actor=request.user, provider=provider, **data)
        return Response(ProviderSerializer(Provider.objects.select_related("api_key_secret").get(pk=provider.pk)).data)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=ModelStatus.values, description="Only models with this status."),
            OpenApiParameter("provider", str, description="Only models of the provider with this name."),
        ]
    )
)
class ModelViewSet(SelectorViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The catalog's models with status and prices; platform admins add and change them."""

    serializer_class = ModelSerializer
    list_selector = selectors.model_list

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False) or self.action != "list":
            return super().get_queryset()
        params = self.request.query_params
        return selectors.model_list(
            user=self.request.user, status=params.get("status") or None, provider=params.get("provider") or None
        )

    @extend_schema(request=ModelCreateSerializer, responses={201: ModelSerializer})
    def create(self, request):
        serializer = ModelCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        provider = selectors.provider_list(user=request.user).filter(name=data.pop("provider")).first()
        if provider is None:
            raise ServiceError(
                f"There is no provider '{request.data.get('provider')}': use the name of one in /api/v1/providers/.",
                field="provider",
            )
        model = services.model_create(actor=request.user, provider=provider, **data)
        return Response(ModelSerializer(model).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ModelUpdateSerializer, responses=ModelSerializer)
    def partial_update(self, request, pk=None):
        model = self.get_object()
        serializer = ModelUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        model = services.model_update(actor=request.user, model=model, **serializer.validated_data)
        return Response(ModelSerializer(model).data)
