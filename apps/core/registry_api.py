"""API actions every versioned registry viewset shares: versions, one version, diff, export, import.

A viewset declares its serializers and how to read versions; its schema is declared per action with
extend_schema_view (see ToolViewSet), since the answers' shapes differ per registry.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.accounts.selectors import team_get

from .drafts import document_metadata
from .registry import spec_file_response, version_compare, version_pair


class RegistryCreateSerializer(serializers.Serializer):
    team = serializers.SlugField(max_length=50, help_text="The slug of the team it belongs to.")
    name = serializers.CharField(max_length=100, help_text="Lowercase, e.g. crm-lookup; referred to as name@version.")
    description = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, help_text="A summary for people."
    )
    owner = serializers.CharField(
        max_length=150, required=False, help_text="Username of a team member; defaults to you."
    )
    spec = serializers.JSONField(help_text="The first draft spec (a tool's or a prompt's, see the spec file format).")


class RegistryUpdateSerializer(serializers.Serializer):
    spec = serializers.JSONField(required=False, help_text="The new draft spec (replaces the draft).")
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    owner = serializers.CharField(max_length=150, required=False, help_text="Username of a team member.")


class RegistryPublishSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=32, help_text="major.minor.patch, greater than the latest.")
    release_notes = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class RegistryVersionRefSerializer(serializers.Serializer):
    version = serializers.CharField()
    content_hash = serializers.CharField()


class RegistryChangeSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="Dotted path of the changed field.")
    change = serializers.ChoiceField(choices=["added", "removed", "changed"])
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


# "from" is a Python keyword, so the class is built from a dict of its fields.
RegistryCompareSerializer = type(
    "RegistryCompareSerializer",
    (serializers.Serializer,),
    {
        "from": RegistryVersionRefSerializer(),
        "to": RegistryVersionRefSerializer(),
        "changes": RegistryChangeSerializer(many=True),
    },
)


class RegistryImportSerializer(serializers.Serializer):
    team = serializers.SlugField(max_length=50, help_text="The slug of the team to import into.")
    document = serializers.CharField(
        max_length=512 * 1024, trim_whitespace=False, help_text="The spec file's text (YAML or JSON)."
    )
    publish_version = serializers.CharField(
        max_length=32, required=False, allow_blank=True, help_text="Optional: publish the imported draft as this."
    )
    release_notes = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


VERSION_PATH = OpenApiParameter("version", str, OpenApiParameter.PATH, description="A published version, e.g. 1.2.0.")
EXPORT_PARAMETERS = [
    OpenApiParameter("format", str, enum=["yaml", "json"], description="The file format (default yaml)."),
    OpenApiParameter("version", str, description="A published version; without it, the draft."),
]
EXPORT_RESPONSES = {
    (200, "application/yaml"): OpenApiResponse(OpenApiTypes.STR, description="A fleetdeck/v1 spec file."),
    (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="A fleetdeck/v1 spec file."),
}
DIFF_PARAMETERS = [
    OpenApiParameter("a", str, description="The older version (default: the second latest)."),
    OpenApiParameter("b", str, description="The newer version (default: the latest)."),
]


def filters_from(request, form_class) -> dict:
    """Return the list filters in the query string, or answer 400 naming the bad one."""
    form = form_class(request.query_params)
    if not form.is_valid():
        raise ValidationError({field: list(errors) for field, errors in form.errors.items()})
    return form.cleaned_data


class RegistryActionsMixin:
    """Add create, draft update, publish, versions, diff, export and import to a tools or prompts viewset.

    The viewset sets `spec_kind` ("Tool"), `object_kwarg` ("tool": how its services name the object),
    `version_serializer_class`, the services `create_service`, `update_service`, `publish_service`
    and `import_service`, and implements `versions_of(obj)`, `version_of(obj, version)` and
    `answer(obj, code)` (the object as the API shows it).
    """

    spec_kind = ""
    object_kwarg = ""
    version_serializer_class = None
    create_service = update_service = publish_service = import_service = None

    def _service(self, name):
        return getattr(type(self), f"{name}_service")  # a plain function, not bound to the viewset

    def perform_content_negotiation(self, request, force=False):
        # `?format=yaml|json` chooses the spec file of export, not a DRF renderer.
        return super().perform_content_negotiation(request, force=force or self.action == "export")

    def create(self, request):
        """Create it with its first draft."""
        serializer = RegistryCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        team = team_get(user=request.user, slug=data.pop("team"))
        obj = self._service("create")(actor=request.user, team=team, **data)
        return self.answer(obj, status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        """Replace the draft spec, and/or change the description or the owner."""
        obj = self.get_object()
        serializer = RegistryUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not serializer.validated_data:
            raise ValidationError({"spec": ["Send spec, description or owner to change."]})
        obj = self._service("update")(actor=request.user, **{self.object_kwarg: obj}, **serializer.validated_data)
        return self.answer(obj)

    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        """Publish the draft as a new immutable version."""
        obj = self.get_object()
        serializer = RegistryPublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = self._service("publish")(
            actor=request.user,
            **{self.object_kwarg: obj},
            version=serializer.validated_data["version"],
            notes=serializer.validated_data["release_notes"],
        )
        return Response(self.version_serializer_class(version).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        """List the published versions, newest first."""
        page = self.paginate_queryset(self.versions_of(self.get_object()))
        return self.get_paginated_response(self.version_serializer_class(page, many=True).data)

    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version>[^/]+)", url_name="version-detail")
    def version_detail(self, request, pk=None, version=None):
        """Return one published version (read only: versions never change)."""
        return Response(self.version_serializer_class(self.version_of(self.get_object(), version)).data)

    @action(detail=True, methods=["get"])
    def diff(self, request, pk=None):
        """Compare two published versions (default: the two latest)."""
        versions = self.versions_of(self.get_object())
        older, newer = version_pair(versions, request.query_params.get("a"), request.query_params.get("b"))
        return Response(version_compare(older, newer))

    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """Download the draft, or a published version, as a spec file."""
        obj = self.get_object()
        version = request.query_params.get("version")
        fmt = request.query_params.get("format", "yaml")
        if fmt not in {"yaml", "json"}:
            raise ValidationError({"format": ["Use format=yaml or format=json."]})
        spec = self.version_of(obj, version).spec if version else obj.draft_spec
        return spec_file_response(
            kind=self.spec_kind,
            name=f"{obj.name}-{version or 'draft'}",
            metadata=document_metadata(obj),
            spec=spec,
            fmt=fmt,
        )

    @action(detail=False, methods=["post"], url_path="import", url_name="import")
    def import_document(self, request):
        """Create from a spec file, or replace the draft of the one named in it; optionally publish. All or nothing."""
        serializer = RegistryImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        team = team_get(user=request.user, slug=data["team"])
        obj, published, created = self._service("import")(
            actor=request.user,
            team=team,
            text=data["document"],
            publish_version=data.get("publish_version") or None,
            notes=data["release_notes"],
        )
        body = {
            self.spec_kind.lower(): self.answer(obj).data,
            "created": created,
            "published_version": published.version if published else None,
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
