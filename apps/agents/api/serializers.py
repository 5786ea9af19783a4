from rest_framework import serializers

from ..models import Agent, AgentVersion, ChannelName, DataClassification, Promotion, RiskTier


class AgentSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    namespace = serializers.CharField(read_only=True)
    channels = serializers.SerializerMethodField()

    class Meta:
        model = Agent
        fields = [
            "id",
            "team",
            "namespace",
            "name",
            "owner",
            "description",
            "tags",
            "risk_tier",
            "data_classification",
            "status",
            "external",
            "channels",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_channels(self, agent) -> dict:
        return {c.name: c.version.version for c in agent.channels.all()}


class AgentCreateSerializer(serializers.Serializer):
    team = serializers.SlugField(max_length=50)
    name = serializers.CharField(max_length=63)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=20)
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices, required=False)
    data_classification = serializers.ChoiceField(choices=DataClassification.choices, required=False)
    owner = serializers.CharField(max_length=150, required=False, help_text="Username of a team member.")
    draft_spec = serializers.JSONField(required=False, help_text="An agent spec (see the spec file format).")


class AgentUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, max_length=20)
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices, required=False)
    data_classification = serializers.ChoiceField(choices=DataClassification.choices, required=False)
    owner = serializers.CharField(max_length=150, required=False)


class DraftSerializer(serializers.Serializer):
    spec = serializers.JSONField(help_text="The whole draft spec; replaces the current draft.")


class AgentVersionSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    model = serializers.CharField(source="model.ref", read_only=True)

    class Meta:
        model = AgentVersion
        fields = ["version", "content_hash", "model", "spec", "author", "created_at", "release_notes"]
        read_only_fields = fields


class PublishSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=32)
    release_notes = serializers.CharField(max_length=5000, required=False, allow_blank=True)


class PromoteSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=32)
    channel = serializers.ChoiceField(choices=ChannelName.choices)
    reason = serializers.CharField(max_length=500)


class RollbackSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=ChannelName.choices)
    reason = serializers.CharField(max_length=500)
    version = serializers.CharField(
        max_length=32, required=False, help_text="Default: the version the channel ran before."
    )


class RetireSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class PromotionSerializer(serializers.ModelSerializer):
    from_version = serializers.CharField(source="from_version.version", read_only=True, default=None)
    to_version = serializers.CharField(source="to_version.version", read_only=True)
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Promotion
        fields = ["channel", "from_version", "to_version", "is_rollback", "actor", "reason", "created_at"]
        read_only_fields = fields


class ImportSerializer(serializers.Serializer):
    team = serializers.SlugField(max_length=50)
    document = serializers.CharField(max_length=512 * 1024, help_text="The spec file's text (YAML or JSON).")
    publish_version = serializers.CharField(max_length=32, required=False, allow_blank=True)


class DiffSerializer(serializers.Serializer):
    changes = serializers.ListField(child=serializers.DictField())


class InventoryRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    team = serializers.CharField()
    name = serializers.CharField()
    namespace = serializers.CharField()
    full_name = serializers.CharField()
    owner = serializers.CharField(allow_null=True)
    status = serializers.CharField()
    risk_tier = serializers.CharField()
    data_classification = serializers.CharField()
    external = serializers.BooleanField()
    production_version = serializers.CharField(allow_null=True)
    staging_version = serializers.CharField(allow_null=True)
    model = serializers.CharField(allow_null=True)
    tools = serializers.ListField(child=serializers.DictField())
    permissions = serializers.ListField(child=serializers.CharField())
    secrets = serializers.ListField(child=serializers.CharField())
    last_run_at = serializers.DateTimeField(allow_null=True)
    cost_7d_usd = serializers.FloatField(allow_null=True)


class AgentGrantSerializer(serializers.Serializer):
    user = serializers.CharField(max_length=150)
    permission = serializers.ChoiceField(choices=["agent.promote", "run.start", "run.approve"])
