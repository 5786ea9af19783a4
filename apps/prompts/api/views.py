"""The prompt registry API: prompts, drafts, immutable versions, labels, rendering, diffs and spec files."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.models import TokenScope
from apps.core.registry_api import (
    DIFF_PARAMETERS,
    EXPORT_PARAMETERS,
    EXPORT_RESPONSES,
    VERSION_PATH,
    RegistryActionsMixin,
    RegistryCompareSerializer,
    RegistryCreateSerializer,
    RegistryImportSerializer,
    RegistryPublishSerializer,
    RegistryUpdateSerializer,
    filters_from,
)

from .. import selectors, services
from ..forms import PromptFilterForm
from ..models import Prompt
from .serializers import (
    PromptImportResultSerializer,
    PromptLabelSerializer,
    PromptLabelSetSerializer,
    PromptRenderedSerializer,
    PromptRenderSerializer,
    PromptSerializer,
    PromptVersionSerializer,
)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("team", str, description="A team's slug."),
            OpenApiParameter("q", str, description="Part of the name or description."),
        ]
    ),
    create=extend_schema(request=RegistryCreateSerializer, responses={201: PromptSerializer}),
    partial_update=extend_schema(request=RegistryUpdateSerializer, responses=PromptSerializer),
    publish=extend_schema(request=RegistryPublishSerializer, responses={201: PromptVersionSerializer}),
    versions=extend_schema(request=None, responses=PromptVersionSerializer(many=True)),
    version_detail=extend_schema(request=None, parameters=[VERSION_PATH], responses=PromptVersionSerializer),
    diff=extend_schema(request=None, parameters=DIFF_PARAMETERS, responses=RegistryCompareSerializer),
    export=extend_schema(request=None, parameters=EXPORT_PARAMETERS, responses=EXPORT_RESPONSES),
    import_document=extend_schema(
        request=RegistryImportSerializer,
        responses={200: PromptImportResultSerializer, 201: PromptImportResultSerializer},
    ),
)
class PromptViewSet(RegistryActionsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Prompts of the teams the caller may see; builders and owners create, edit, publish and label them."""

    serializer_class = PromptSerializer
    queryset = Prompt.objects.none()  # for the schema; requests read through the selector
    spec_kind = "Prompt"
    object_kwarg = "prompt"
    version_serializer_class = PromptVersionSerializer
    create_service = services.prompt_create
    update_service = services.prompt_update_draft
    publish_service = services.prompt_publish
    import_service = services.prompt_import

    @property
    def write_scope(self) -> str:
        # Rendering is a read sent as POST (variables in the body): a read token may do it.
        return TokenScope.READ if self.action == "render_prompt" else TokenScope.WRITE

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Prompt.objects.none()
        filters = filters_from(self.request, PromptFilterForm) if self.action == "list" else {}
        return selectors.prompt_list(user=self.request.user, filters=filters)

    def versions_of(self, prompt):
        return selectors.promptversion_list(prompt=prompt)

    def version_of(self, prompt, version):
        return selectors.promptversion_get(prompt=prompt, version=version)

    def answer(self, prompt, code=status.HTTP_200_OK) -> Response:
        """Return the prompt as the API shows it, read again through the selector."""
        return Response(PromptSerializer(selectors.prompt_get(user=self.request.user, pk=prompt.pk)).data, status=code)

    @extend_schema(request=PromptLabelSetSerializer, responses=PromptLabelSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def labels(self, request, pk=None):
        """List the labels, or set one (production or staging) to a version, with an optional rollout."""
        prompt = self.get_object()
        if request.method == "POST":
            serializer = PromptLabelSetSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            services.prompt_label_set(
                actor=request.user,
                prompt=prompt,
                name=data["name"],
                version=data["version"],
                candidate=data.get("candidate") or None,
                rollout_percent=data["rollout_percent"],
            )
        return Response(PromptLabelSerializer(selectors.promptlabel_list(prompt=prompt), many=True).data)

    @extend_schema(request=PromptRenderSerializer, responses=PromptRenderedSerializer)
    @action(detail=True, methods=["post"], url_path="render", url_name="render")
    def render_prompt(self, request, pk=None):
        """Render the draft, a version or a label's version with the given variables (nothing is stored)."""
        prompt = self.get_object()
        serializer = PromptRenderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = None
        spec = prompt.draft_spec
        if data.get("version"):
            found = selectors.prompt_version_resolve(team=prompt.team, ref=f"{prompt.name}@{data['version']}")
            version, spec = found.version, found.spec
        text = selectors.prompt_render(spec=spec, variables=data["variables"])
        return Response({"version": version, "text": text})
