"""The tool registry API: tools, their drafts and immutable versions, diffs, spec files, impact."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.selectors import team_get
from apps.core.registry_api import (
    DIFF_PARAMETERS,
    EXPORT_PARAMETERS,
    EXPORT_RESPONSES,
    VERSION_PATH,
    RegistryActionsMixin,
    filters_from,
)

from .. import selectors, services
from ..forms import ToolFilterForm
from ..mcp_import import mcp_tools_import
from ..models import SideEffect, Tool, ToolKind
from .serializers import (
    McpImportResultSerializer,
    McpImportSerializer,
    RegistryCompareSerializer,
    RegistryCreateSerializer,
    RegistryImportSerializer,
    RegistryPublishSerializer,
    RegistryUpdateSerializer,
    ToolDeprecateSerializer,
    ToolImpactSerializer,
    ToolImportResultSerializer,
    ToolSerializer,
    ToolVersionSerializer,
)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("team", str, description="A team's slug."),
            OpenApiParameter("kind", str, enum=ToolKind.values),
            OpenApiParameter("side_effect", str, enum=SideEffect.values),
            OpenApiParameter("deprecated", bool),
            OpenApiParameter("q", str, description="Part of the name or summary."),
        ]
    ),
    create=extend_schema(request=RegistryCreateSerializer, responses={201: ToolSerializer}),
    partial_update=extend_schema(request=RegistryUpdateSerializer, responses=ToolSerializer),
    publish=extend_schema(request=RegistryPublishSerializer, responses={201: ToolVersionSerializer}),
    versions=extend_schema(request=None, responses=ToolVersionSerializer(many=True)),
    version_detail=extend_schema(request=None, parameters=[VERSION_PATH], responses=ToolVersionSerializer),
    diff=extend_schema(request=None, parameters=DIFF_PARAMETERS, responses=RegistryCompareSerializer),
    export=extend_schema(request=None, parameters=EXPORT_PARAMETERS, responses=EXPORT_RESPONSES),
    import_document=extend_schema(
        request=RegistryImportSerializer, responses={200: ToolImportResultSerializer, 201: ToolImportResultSerializer}
    ),
)
class ToolViewSet(RegistryActionsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Tools of the teams the caller may see; builders and owners create, edit and publish them."""

    serializer_class = ToolSerializer
    queryset = Tool.objects.none()  # for the schema; requests read through the selector
    spec_kind = "Tool"
    object_kwarg = "tool"
    version_serializer_class = ToolVersionSerializer
    create_service = services.tool_create
    update_service = services.tool_update_draft
    publish_service = services.tool_publish
    import_service = services.tool_import

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Tool.objects.none()
        filters = filters_from(self.request, ToolFilterForm) if self.action == "list" else {}
        return selectors.tool_list(user=self.request.user, filters=filters)

    def versions_of(self, tool):
        return selectors.toolversion_list(tool=tool)

    def version_of(self, tool, version):
        return selectors.toolversion_get(tool=tool, version=version)

    def answer(self, tool, code=status.HTTP_200_OK) -> Response:
        """Return the tool as the API shows it, read again through the selector (fresh annotations)."""
        return Response(ToolSerializer(selectors.tool_get(user=self.request.user, pk=tool.pk)).data, status=code)

    @extend_schema(
        request=McpImportSerializer, responses={200: McpImportResultSerializer, 201: McpImportResultSerializer}
    )
    @action(detail=False, methods=["post"], url_path="import-mcp", url_name="import-mcp")
    def import_mcp(self, request):
        """Import an MCP server's tools: create one per server tool or replace the earlier drafts; all or nothing."""
        serializer = McpImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        team = team_get(user=request.user, slug=data.pop("team"))
        tools = mcp_tools_import(
            actor=request.user,
            team=team,
            transport=data["transport"],
            url=data.get("url"),
            command=data.get("command"),
            prefix=data["prefix"],
            publish_version=data.get("publish_version") or None,
        )
        rows = [{"tool": self.answer(tool).data, **tool.mcp_import} for tool in tools]
        created = any(row["status"] == "created" for row in rows)
        return Response({"tools": rows}, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=None, responses=ToolImpactSerializer(many=True))
    @action(detail=True, methods=["get"])
    def impact(self, request, pk=None):
        """List, for each version, the agent versions using it and whether they are live."""
        rows = selectors.tool_impact(tool=self.get_object())
        return Response(ToolImpactSerializer(rows, many=True).data)

    @extend_schema(request=ToolDeprecateSerializer, responses=ToolSerializer)
    @action(detail=True, methods=["post"])
    def deprecate(self, request, pk=None):
        """Deprecate the tool: existing agent versions keep it, new ones cannot use it."""
        tool = self.get_object()
        serializer = ToolDeprecateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.tool_deprecate(actor=request.user, tool=tool, reason=serializer.validated_data["reason"])
        return self.answer(tool)

    @extend_schema(request=None, responses=ToolSerializer)
    @action(detail=True, methods=["post"])
    def undeprecate(self, request, pk=None):
        """Make the tool usable by new agent versions again."""
        tool = services.tool_undeprecate(actor=request.user, tool=self.get_object())
        return self.answer(tool)
