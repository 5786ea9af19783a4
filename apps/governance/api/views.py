from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from apps.accounts.selectors import team_list
from apps.core.api import SelectorViewSetMixin
from apps.core.exceptions import ServiceError

from .. import selectors, services
from ..models import GranteeType
from .serializers import (
    SecretCreateSerializer,
    SecretGrantCreateSerializer,
    SecretGrantSerializer,
    SecretSerializer,
    SecretUpdateSerializer,
    SecretValueSerializer,
)


class _BatchLabelsMixin:
    """List with grantee labels computed once per page rather than once per row."""

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        grants = [g for obj in page for g in self.grants_of(obj)]
        context = {**self.get_serializer_context(), "labels": selectors.grantee_labels(grants)}
        return self.get_paginated_response(self.get_serializer_class()(page, many=True, context=context).data)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("team", str, description="Only the secrets of the team with this slug."),
            OpenApiParameter("scope", str, enum=["team", "org"], description="Team or organisation secrets only."),
        ]
    )
)
class SecretViewSet(
    _BatchLabelsMixin,
    SelectorViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Secrets' metadata. A value is written on create and with set-value, and never returned.

    Answers JSON only: the browsable HTML renderer would echo a refused value back into its form.
    """

    serializer_class = SecretSerializer
    list_selector = selectors.secret_list
    renderer_classes = [JSONRenderer]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False) or self.action != "list":
            return super().get_queryset()
        params = self.request.query_params
        return selectors.secret_list(
            user=self.request.user, team=params.get("team") or None, scope=params.get("scope") or None
        )

    @staticmethod
    def grants_of(secret):
        return secret.grants.all()

    @extend_schema(request=SecretCreateSerializer, responses={201: SecretSerializer})
    @sensitive_variables()  # an error page must not show the value held in these locals
    def create(self, request):
        serializer = SecretCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        team = None
        if data["team"] is not None:
            team = team_list(user=request.user).filter(slug=data["team"]).first()
            if team is None:
                raise ServiceError(f"There is no team '{data['team']}' you can see: check the slug.", field="team")
        secret = services.secret_create(
            actor=request.user, team=team, name=data["name"], value=data["value"], description=data["description"]
        )
        return Response(SecretSerializer(secret).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SecretUpdateSerializer, responses=SecretSerializer)
    def partial_update(self, request, pk=None):
        secret = self.get_object()
        serializer = SecretUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        secret = services.secret_update(
            actor=request.user, secret=secret, description=serializer.validated_data["description"]
        )
        return Response(SecretSerializer(secret).data)

    @extend_schema(request=SecretValueSerializer, responses=SecretSerializer)
    @action(detail=True, methods=["post"], url_path="set-value")
    @sensitive_variables()
    def set_value(self, request, pk=None):
        """Replace the secret's value (after rotating it at the source); the answer never contains it."""
        secret = self.get_object()
        serializer = SecretValueSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        secret = services.secret_set_value(actor=request.user, secret=secret, value=serializer.validated_data["value"])
        return Response(SecretSerializer(secret).data)

    def destroy(self, request, pk=None):
        """Delete the secret; refused while it is granted to anything (revoke the grants first)."""
        services.secret_delete(actor=request.user, secret=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("secret", int, description="Only the grants of this secret."),
            OpenApiParameter("grantee_type", str, enum=GranteeType.values, description="Only grants to this type."),
            OpenApiParameter("grantee_id", int, description="Only grants to the grantee with this id."),
        ]
    )
)
class SecretGrantViewSet(
    _BatchLabelsMixin,
    SelectorViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Who may use which secret: grants to providers, tools and agents. Deleting a grant revokes it."""

    serializer_class = SecretGrantSerializer
    list_selector = selectors.grant_list

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False) or self.action != "list":
            return super().get_queryset()
        params = self.request.query_params
        filters = {}
        for name in ("secret", "grantee_id"):
            if params.get(name):
                try:
                    filters[name] = int(params[name])
                except ValueError:
                    raise ServiceError(f"'{params[name]}' is not an id: use a whole number.", field=name) from None
        grantee_type = params.get("grantee_type") or None
        if grantee_type and grantee_type not in GranteeType.values:
            raise ServiceError(f"Use one of {', '.join(GranteeType.values)}.", field="grantee_type")
        return selectors.grant_list(user=self.request.user, grantee_type=grantee_type, **filters)

    @staticmethod
    def grants_of(grant):
        return [grant]

    @extend_schema(request=SecretGrantCreateSerializer, responses={201: SecretGrantSerializer})
    def create(self, request):
        serializer = SecretGrantCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        secret = selectors.secret_list(user=request.user).filter(pk=data["secret"]).first()
        if secret is None:
            raise ServiceError(f"There is no secret #{data['secret']} you can see: check the id.", field="secret")
        grantee = selectors.grantee_get(
            user=request.user, grantee_type=data["grantee_type"], grantee_id=data["grantee_id"]
        )
        grant = services.secret_grant(
            actor=request.user, secret=secret, grantee_type=data["grantee_type"], grantee=grantee
        )
        return Response(SecretGrantSerializer(grant).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        """Revoke the grant: the grantee can no longer read the secret."""
        services.secret_revoke_grant(actor=request.user, grant=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
