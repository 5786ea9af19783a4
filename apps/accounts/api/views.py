from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import SelectorViewSetMixin

from .. import selectors, services
from .serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    MembershipCreateSerializer,
    MembershipRoleSerializer,
    MembershipSerializer,
    MeSerializer,
    TeamGrantSerializer,
    TeamSerializer,
    TeamUpdateSerializer,
)


class MeView(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request):
        """Return who the caller is: their organisation role, memberships and token."""
        return Response(MeSerializer(request.user).data)


class TeamViewSet(SelectorViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Teams the caller may see; platform admins create them, owners edit them."""

    serializer_class = TeamSerializer
    list_selector = selectors.team_list
    lookup_field = "slug"

    @extend_schema(request=TeamSerializer, responses={201: TeamSerializer})
    def create(self, request):
        serializer = TeamSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        team = services.team_create(actor=request.user, **serializer.validated_data)
        return Response(TeamSerializer(team, context={"request": request}).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TeamUpdateSerializer, responses=TeamSerializer)
    def partial_update(self, request, slug=None):
        team = self.get_object()
        serializer = TeamUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        team = services.team_update(actor=request.user, team=team, **serializer.validated_data)
        return Response(TeamSerializer(team, context={"request": request}).data)

    @extend_schema(request=TeamGrantSerializer, responses=TeamGrantSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def grants(self, request, slug=None):
        """List the team's object grants, or add one (owners): a permission for someone outside its roles."""
        team = self.get_object()
        if request.method == "POST":
            user, perm = _grant_input(request)
            services.team_grant_add(actor=request.user, team=team, user=user, perm=perm)
        return Response(selectors.team_grant_list(user=request.user, team=team))

    @extend_schema(request=TeamGrantSerializer, responses=TeamGrantSerializer(many=True))
    @action(detail=True, methods=["post"], url_path="grants/remove")
    def grants_remove(self, request, slug=None):
        """Take back an object grant."""
        team = self.get_object()
        user, perm = _grant_input(request)
        services.team_grant_remove(actor=request.user, team=team, user=user, perm=perm)
        return Response(selectors.team_grant_list(user=request.user, team=team))


def _grant_input(request):
    serializer = TeamGrantSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    user = get_user_model().objects.filter(username=serializer.validated_data["user"], is_active=True).first()
    if user is None:
        raise ValidationError({"user": [f"No active user named '{serializer.validated_data['user']}'."]})
    return user, serializer.validated_data["permission"]


class MembershipViewSet(
    SelectorViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Members of the teams the caller may see; owners add, change and remove them."""

    serializer_class = MembershipSerializer
    list_selector = selectors.membership_list

    def get_queryset(self):
        qs = super().get_queryset()
        team = self.request.query_params.get("team")
        return qs.filter(team__slug=team) if team else qs

    @extend_schema(request=MembershipCreateSerializer, responses={201: MembershipSerializer})
    def create(self, request):
        serializer = MembershipCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        team = selectors.team_get(user=request.user, slug=data["team"])
        user = get_user_model().objects.filter(username=data["user"], is_active=True).first()
        if user is None:
            return Response({"user": [f"No active user named '{data['user']}'."]}, status=status.HTTP_400_BAD_REQUEST)
        membership = services.membership_add(actor=request.user, team=team, user=user, role=data["role"])
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MembershipRoleSerializer, responses=MembershipSerializer)
    def partial_update(self, request, pk=None):
        membership = self.get_object()
        serializer = MembershipRoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_change_role(
            actor=request.user, membership=membership, role=serializer.validated_data["role"]
        )
        return Response(MembershipSerializer(membership).data)

    def destroy(self, request, pk=None):
        services.membership_remove(actor=request.user, membership=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiTokenViewSet(SelectorViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's API tokens (and, for owners, their team's); created tokens are shown once."""

    serializer_class = ApiTokenSerializer
    list_selector = selectors.token_list

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request):
        serializer = ApiTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        team = selectors.team_get(user=request.user, slug=data["team"])
        token, secret = services.token_create(
            actor=request.user, team=team, name=data["name"], scopes=data["scopes"], expires_at=data.get("expires_at")
        )
        body = ApiTokenCreatedSerializer(token).data
        body["token"] = secret
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Revoke the token: it stops working at once."""
        token = services.token_revoke(actor=request.user, token=self.get_object())
        return Response(ApiTokenSerializer(token).data)
