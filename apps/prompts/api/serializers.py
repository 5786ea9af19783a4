from rest_framework import serializers

from ..models import Prompt, PromptLabel, PromptVersion


class PromptLabelSerializer(serializers.ModelSerializer):
    # Plain strings: "name" carries other choice sets elsewhere in the API.
    name = serializers.CharField(read_only=True, help_text="production or staging.")
    version = serializers.CharField(source="version.version", read_only=True)
    candidate = serializers.CharField(source="candidate.version", read_only=True, allow_null=True, default=None)
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = PromptLabel
        fields = ["name", "version", "candidate", "rollout_percent", "updated_at", "updated_by"]
        read_only_fields = fields


class PromptSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    latest_version = serializers.CharField(read_only=True, allow_null=True, help_text="The highest published version.")
    labels = PromptLabelSerializer(many=True, read_only=True)

    class Meta:
        model = Prompt
        fields = [
            "id",
            "team",
            "name",
            "description",
            "owner",
            "latest_version",
            "labels",
            "draft_spec",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PromptVersionSerializer(serializers.ModelSerializer):
    prompt = serializers.CharField(source="prompt.name", read_only=True)
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    ref = serializers.CharField(read_only=True, help_text="name@version, as agents refer to it.")

    class Meta:
        model = PromptVersion
        fields = ["prompt", "version", "ref", "content_hash", "spec", "author", "created_at", "release_notes"]
        read_only_fields = fields


class PromptLabelSetSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=32, help_text="production or staging.")
    version = serializers.CharField(max_length=32, help_text="The published version the label points at.")
    candidate = serializers.CharField(
        max_length=32, required=False, allow_blank=True, allow_null=True, help_text="A newer version to roll out."
    )
    rollout_percent = serializers.IntegerField(
        required=False, default=0, help_text="Share (0-99) of keyed callers served the candidate."
    )


class PromptRenderSerializer(serializers.Serializer):
    version = serializers.CharField(
        max_length=40, required=False, allow_blank=True, help_text="A version or label; without it, the draft."
    )
    variables = serializers.DictField(child=serializers.JSONField(), required=False, default=dict)


class PromptRenderedSerializer(serializers.Serializer):
    version = serializers.CharField(allow_null=True, help_text="The version rendered (null: the draft).")
    text = serializers.CharField()


class PromptImportResultSerializer(serializers.Serializer):
    prompt = PromptSerializer()
    created = serializers.BooleanField(help_text="True when the prompt was new, false when its draft was replaced.")
    published_version = serializers.CharField(allow_null=True)
