from rest_framework import serializers

from apps.core.registry_api import (  # noqa: F401 - re-exported: the tool API declares its schema with them
    RegistryChangeSerializer,
    RegistryCompareSerializer,
    RegistryCreateSerializer,
    RegistryImportSerializer,
    RegistryPublishSerializer,
    RegistryUpdateSerializer,
    RegistryVersionRefSerializer,
)

from ..models import Tool, ToolVersion
from ..selectors import tool_permissions
from ..specs import MCP_TRANSPORTS


class ToolSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    latest_version = serializers.CharField(read_only=True, allow_null=True, help_text="The highest published version.")
    kind = serializers.SerializerMethodField(help_text="Of the latest version, else of the draft.")
    side_effect = serializers.SerializerMethodField(help_text="Of the latest version, else of the draft.")
    permissions_required = serializers.SerializerMethodField(help_text="Of the latest version, else of the draft.")

    class Meta:
        model = Tool
        fields = [
            "id",
            "team",
            "name",
            "description",
            "owner",
            "kind",
            "side_effect",
            "permissions_required",
            "latest_version",
            "deprecated",
            "deprecated_at",
            "draft_spec",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_kind(self, tool) -> str | None:
        return getattr(tool, "current_kind", None) or tool.draft_spec.get("kind")

    def get_side_effect(self, tool) -> str | None:
        return getattr(tool, "current_side_effect", None) or tool.draft_spec.get("side_effect")

    def get_permissions_required(self, tool) -> list[str]:
        return tool_permissions(tool)


class ToolVersionSerializer(serializers.ModelSerializer):
    tool = serializers.CharField(source="tool.name", read_only=True)
    # Plain strings, not enums: "kind" names other choice sets elsewhere in the API.
    kind = serializers.CharField(read_only=True, help_text="http, python, agent_handoff, mcp or context.")
    side_effect = serializers.CharField(read_only=True, help_text="read or write.")
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    ref = serializers.CharField(read_only=True, help_text="name@version, as agents refer to it.")

    class Meta:
        model = ToolVersion
        fields = [
            "tool",
            "version",
            "ref",
            "content_hash",
            "kind",
            "side_effect",
            "permissions_required",
            "spec",
            "author",
            "created_at",
            "release_notes",
        ]
        read_only_fields = fields


class ToolImportResultSerializer(serializers.Serializer):
    tool = ToolSerializer()
    created = serializers.BooleanField(help_text="True when the tool was new, false when its draft was replaced.")
    published_version = serializers.CharField(allow_null=True)


class ToolAgentUseSerializer(serializers.Serializer):
    agent = serializers.CharField()
    agent_id = serializers.IntegerField()
    version = serializers.CharField(help_text="The agent version using the tool version.")
    live = serializers.ListField(child=serializers.CharField(), help_text="Channels where that agent version is live.")


class ToolImpactSerializer(serializers.Serializer):
    version = serializers.CharField(source="version.version")
    agent_versions = ToolAgentUseSerializer(many=True)


class ToolDeprecateSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, help_text="Why, and what to use instead.")


class McpImportSerializer(serializers.Serializer):
    team = serializers.SlugField(max_length=50, help_text="The slug of the team to import into.")
    transport = serializers.ChoiceField(choices=MCP_TRANSPORTS, default="streamable_http")
    url = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, help_text="For streamable_http: the server's URL."
    )
    command = serializers.ListField(
        child=serializers.CharField(max_length=2000),
        max_length=32,
        required=False,
        help_text="For stdio: the program (allowed by a platform admin) and its arguments.",
    )
    prefix = serializers.CharField(
        max_length=40, required=False, allow_blank=True, default="", help_text="Put before every tool's name."
    )
    publish_version = serializers.CharField(
        max_length=32, required=False, allow_blank=True, help_text="Optional: publish new or changed tools as this."
    )


class McpImportedToolSerializer(serializers.Serializer):
    tool = ToolSerializer()
    status = serializers.ChoiceField(
        choices=["created", "updated", "unchanged"], help_text="Whether the tool was new, its draft replaced, or same."
    )
    published_version = serializers.CharField(allow_null=True)


class McpImportResultSerializer(serializers.Serializer):
    tools = McpImportedToolSerializer(many=True, help_text="In the order the server lists them.")
