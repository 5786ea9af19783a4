from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.accounts.selectors import team_get
from apps.core.api import SelectorViewSetMixin
from apps.core.registry import spec_file_response, version_compare, version_pair

from .. import selectors, services
from ..forms import InventoryFilterForm
from ..models import Agent
from .serializers import (
    AgentCreateSerializer,
    AgentGrantSerializer,
    AgentSerializer,
    AgentUpdateSerializer,
    AgentVersionSerializer,
    DraftSerializer,
    ImportSerializer,
    InventoryRowSerializer,
    PromoteSerializer,
    PromotionSerializer,
    PublishSerializer,
    RetireSerializer,
    RollbackSerializer,
)

FILTERS = ["q", "team", "status", "risk_tier", "owner", "tool", "permission", "model", "external"]


def _filters(request) -> dict:
    form = InventoryFilterForm(request.query_params)
    if not form.is_valid():
        raise ValidationError(form.errors.get_json_data())
    return form.cleaned_data


def _valid(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@extend_schema(parameters=[OpenApiParameter(f, str, description=f"Filter by {f}") for f in FILTERS])
class AgentViewSet(SelectorViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Agents the caller may see: create, edit the draft, publish, promote, roll back, retire, export."""

    serializer_class = AgentSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Agent.objects.none()
        filters = _filters(self.request) if self.action == "list" else {}
        return selectors.agent_list(user=self.request.user, filters=filters).prefetch_related("channels__version")

    def get_object(self):
        try:
            return selectors.agent_get(user=self.request.user, pk=int(self.kwargs["pk"]))
        except ValueError:
            raise Http404("No such agent.") from None

    @extend_schema(request=AgentCreateSerializer, responses={201: AgentSerializer})
    def create(self, request):
        data = dict(_valid(AgentCreateSerializer, request.data))
        team = team_get(user=request.user, slug=data.pop("team"))
        agent = services.agent_create(actor=request.user, team=team, **data)
        return Response(AgentSerializer(agent).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AgentUpdateSerializer, responses=AgentSerializer)
    def partial_update(self, request, pk=None):
        agent = services.agent_update(
            actor=request.user, agent=self.get_object(), **_valid(AgentUpdateSerializer, request.data)
        )
        return Response(AgentSerializer(agent).data)

    @extend_schema(methods=["GET"], responses=DraftSerializer)
    @extend_schema(methods=["PUT"], request=DraftSerializer, responses=DraftSerializer)
    @action(detail=True, methods=["get", "put"])
    def draft(self, request, pk=None):
        """Read or replace the draft spec (validated completely; nothing saved when invalid)."""
        agent = self.get_object()
        if request.method == "PUT":
            agent = services.agent_update_draft(
                actor=request.user, agent=agent, spec=_valid(DraftSerializer, request.data)["spec"]
            )
        return Response({"spec": agent.draft_spec})

    @extend_schema(request=PublishSerializer, responses={201: AgentVersionSerializer})
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        data = _valid(PublishSerializer, request.data)
        row = services.agent_publish(
            actor=request.user, agent=self.get_object(), version=data["version"], notes=data.get("release_notes", "")
        )
        return Response(AgentVersionSerializer(row).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=AgentVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        rows = selectors.agent_version_list(agent=self.get_object())
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(AgentVersionSerializer(page, many=True).data)

    @extend_schema(responses=AgentVersionSerializer)
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version>[0-9]+\.[0-9]+\.[0-9]+)")
    def version(self, request, pk=None, version=None):
        row = selectors.agent_version_get(agent=self.get_object(), version=version)
        return Response(AgentVersionSerializer(row).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("a", str, description="Older version"),
            OpenApiParameter("b", str, description="Newer version"),
        ],
        responses={200: dict},
    )
    @action(detail=True, methods=["get"])
    def diff(self, request, pk=None):
        """Compare two versions (default: the two latest)."""
        older, newer = version_pair(
            self.get_object().versions.all(), request.query_params.get("a"), request.query_params.get("b")
        )
        return Response(version_compare(older, newer))

    @extend_schema(request=PromoteSerializer, responses=PromotionSerializer)
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        agent = self.get_object()
        data = _valid(PromoteSerializer, request.data)
        version = selectors.agent_version_get(agent=agent, version=data["version"])
        promotion = services.agent_promote(
            actor=request.user, agent=agent, version=version, channel=data["channel"], reason=data["reason"]
        )
        return Response(PromotionSerializer(promotion).data)

    @extend_schema(request=RollbackSerializer, responses=PromotionSerializer)
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        agent = self.get_object()
        data = _valid(RollbackSerializer, request.data)
        version = selectors.agent_version_get(agent=agent, version=data["version"]) if data.get("version") else None
        promotion = services.agent_rollback(
            actor=request.user, agent=agent, channel=data["channel"], reason=data["reason"], version=version
        )
        return Response(PromotionSerializer(promotion).data)

    @extend_schema(request=RetireSerializer, responses=AgentSerializer)
    @action(detail=True, methods=["post"])
    def retire(self, request, pk=None):
        agent = services.agent_retire(
            actor=request.user, agent=self.get_object(), reason=_valid(RetireSerializer, request.data)["reason"]
        )
        return Response(AgentSerializer(agent).data)

    @extend_schema(responses=PromotionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def promotions(self, request, pk=None):
        rows = self.get_object().promotions.select_related("from_version", "to_version", "actor")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(PromotionSerializer(page, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("version", str, description="A published version; default: the draft"),
            OpenApiParameter("format", str, enum=["yaml", "json"]),
        ],
        responses={(200, "application/yaml"): str},
    )
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """Download the draft or a version as a spec file, the same document import takes."""
        agent = self.get_object()
        wanted = request.query_params.get("version")
        spec = selectors.agent_version_get(agent=agent, version=wanted).spec if wanted else agent.draft_spec
        return spec_file_response(
            kind="Agent",
            name=f"{agent.name}-{wanted or 'draft'}",
            metadata=services.agent_document_metadata(agent),
            spec=spec,
            fmt=request.query_params.get("format", "yaml"),
        )

    @extend_schema(request=ImportSerializer, responses={201: AgentSerializer})
    @action(detail=False, methods=["post"], url_path="import")
    def import_document(self, request):
        """Create or update an agent from a spec file; everything is validated before anything is written."""
        data = _valid(ImportSerializer, request.data)
        team = team_get(user=request.user, slug=data["team"])
        agent = services.agent_import(
            actor=request.user, team=team, text=data["document"], publish_version=data.get("publish_version") or None
        )
        return Response(AgentSerializer(agent).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AgentGrantSerializer, responses=AgentGrantSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def grants(self, request, pk=None):
        """List the agent's object grants, or give one (team owners): promote, run or approve this agent."""
        agent = self.get_object()
        if request.method == "POST":
            self._grant(request, agent, grant=True)
        return Response(selectors.agent_grant_list(agent=agent))

    @extend_schema(request=AgentGrantSerializer, responses=AgentGrantSerializer(many=True))
    @action(detail=True, methods=["post"], url_path="grants/remove")
    def grants_remove(self, request, pk=None):
        """Take back an object grant on the agent."""
        agent = self.get_object()
        self._grant(request, agent, grant=False)
        return Response(selectors.agent_grant_list(agent=agent))

    def _grant(self, request, agent, *, grant: bool) -> None:
        from django.contrib.auth import get_user_model

        data = _valid(AgentGrantSerializer, request.data)
        user = get_user_model().objects.filter(username=data["user"], is_active=True).first()
        if user is None:
            raise ValidationError({"user": [f"No active user named '{data['user']}'."]})
        services.agent_grant_change(actor=request.user, agent=agent, user=user, perm=data["permission"], grant=grant)

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"])
    def access(self, request, pk=None):
        """What the agent can reach (through handoffs too) and who can change, run, promote and approve it."""
        return Response(selectors.agent_access(agent=self.get_object()))


@extend_schema(parameters=[OpenApiParameter(f, str, description=f"Filter by {f}") for f in FILTERS])
class InventoryViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The fleet inventory: every agent the caller may see, with what it reaches and who owns it."""

    serializer_class = InventoryRowSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Agent.objects.none()
        return selectors.inventory_list(user=self.request.user, filters=_filters(self.request))

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(selectors.inventory_rows(page))
