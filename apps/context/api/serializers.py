from rest_framework import serializers

from ..models import Access, ContextEntry, ContextGrant, ContextSpace, ContextState, ContextStateVersion, EntryKind


class ContextSpaceSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    entry_count = serializers.IntegerField(read_only=True, help_text="Facts, documents and decisions.")
    decision_count = serializers.IntegerField(read_only=True)
    state_count = serializers.IntegerField(read_only=True)
    grant_count = serializers.IntegerField(read_only=True, help_text="Agents granted the space.")

    class Meta:
        model = ContextSpace
        fields = [
            "id",
            "team",
            "name",
            "description",
            "created_by",
            "created_at",
            "entry_count",
            "decision_count",
            "state_count",
            "grant_count",
        ]
        read_only_fields = fields


class ContextSpaceCreateSerializer(serializers.Serializer):
    team = serializers.SlugField(max_length=50, help_text="The slug of the team it belongs to.")
    name = serializers.CharField(max_length=63, help_text="Lowercase, e.g. support-kb; agents' specs name it.")
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ContextSpaceUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=2000, allow_blank=True)


class ContextEntrySerializer(serializers.ModelSerializer):
    # Plain strings: "kind" carries other choice sets elsewhere in the API (tools, providers).
    kind = serializers.CharField(read_only=True, help_text="fact, document or decision.")

    class Meta:
        model = ContextEntry
        fields = [
            "id",
            "kind",
            "key",
            "title",
            "body",
            "metadata",
            "author",
            "decided_by",
            "run_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ContextEntryListSerializer(ContextEntrySerializer):
    """An entry in a list: the start of its body only (documents may be 200 KB)."""

    summary = serializers.SerializerMethodField(help_text="The first 300 characters of the body.")
    body_chars = serializers.SerializerMethodField()

    class Meta(ContextEntrySerializer.Meta):
        fields = [f for f in ContextEntrySerializer.Meta.fields if f != "body"] + ["summary", "body_chars"]
        read_only_fields = fields

    def get_summary(self, entry) -> str:
        return entry.body[:300]

    def get_body_chars(self, entry) -> int:
        return len(entry.body)


class ContextEntryCreateSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=16, help_text="fact, document or decision.")
    key = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    body = serializers.CharField(trim_whitespace=False, help_text="The text; a decision's rationale.")
    decided_by = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="", help_text="Decisions: who decided."
    )
    metadata = serializers.JSONField(required=False, default=dict)

    def validate_kind(self, value: str) -> str:
        if value not in EntryKind.values:
            raise serializers.ValidationError(f"'{value}' is not a kind of entry: use fact, document or decision.")
        return value


class ContextEntryUpdateSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=100, required=False, allow_blank=True)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    body = serializers.CharField(trim_whitespace=False, required=False)
    metadata = serializers.JSONField(required=False)


class ContextStateVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContextStateVersion
        fields = ["version", "value", "author", "run_id", "created_at"]
        read_only_fields = fields


class ContextStateSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContextState
        fields = ["key", "value", "version", "updated_by", "updated_at"]
        read_only_fields = fields


class ContextStateDetailSerializer(ContextStateSerializer):
    history = serializers.SerializerMethodField(help_text="Earlier values too, newest first (at most 50).")

    class Meta(ContextStateSerializer.Meta):
        fields = [*ContextStateSerializer.Meta.fields, "history"]
        read_only_fields = fields

    def get_history(self, state) -> list[dict]:
        from ..selectors import context_state_history

        return ContextStateVersionSerializer(context_state_history(state=state), many=True).data


class ContextStateWriteSerializer(serializers.Serializer):
    value = serializers.JSONField(help_text="Any JSON value.")
    expected_version = serializers.IntegerField(
        min_value=0, help_text="The version you read (0 to create the key); a mismatch answers 409."
    )


class ContextConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    current_version = serializers.IntegerField()


class ContextSearchResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    key = serializers.CharField()
    title = serializers.CharField()
    snippet = serializers.CharField(help_text="Text around the match, matched words marked «like this».")
    rank = serializers.FloatField()
    author = serializers.CharField()
    run_id = serializers.IntegerField(allow_null=True)
    updated_at = serializers.DateTimeField()


class ContextGrantSerializer(serializers.ModelSerializer):
    agent = serializers.CharField(source="agent.name", read_only=True)
    granted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ContextGrant
        fields = ["id", "agent", "agent_id", "access", "granted_by", "created_at"]
        read_only_fields = fields


class ContextGrantSetSerializer(serializers.Serializer):
    agent = serializers.CharField(max_length=63, help_text="The agent's name (or id), in the space's team.")
    access = serializers.ChoiceField(choices=Access.choices)
