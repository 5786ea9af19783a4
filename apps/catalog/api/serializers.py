from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Model, ModelStatus, Provider, ProviderKind


def _enum_schema(choices) -> dict:
    return {
        "type": "string",
        "enum": [value for value, _ in choices],
        "description": "\n".join(f"* `{value}` - {label}" for value, label in choices),
    }


# Named schema components: "status" and "kind" are field names other areas use for other choices.
@extend_schema_field(_enum_schema(ModelStatus.choices), component_name="ModelStatusEnum")
class ModelStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=ModelStatus.choices, **kwargs)


@extend_schema_field(_enum_schema(ProviderKind.choices), component_name="ProviderKindEnum")
class ProviderKindField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=ProviderKind.choices, **kwargs)


class ProviderSerializer(serializers.ModelSerializer):
    api_key_secret = serializers.SlugRelatedField(
        slug_field="name", read_only=True, help_text="The name of the organisation secret holding the API key."
    )
    kind = ProviderKindField(read_only=True)
    has_api_key = serializers.SerializerMethodField()

    class Meta:
        model = Provider
        fields = [
            "name",
            "display_name",
            "kind",
            "base_url",
            "api_key_secret",
            "has_api_key",
            "timeout_seconds",
            "max_retries",
            "enabled",
            "created_at",
        ]
        read_only_fields = fields

    def get_has_api_key(self, provider) -> bool:
        return provider.api_key_secret_id is not None


def _refuse_identity_changes(serializer, fields: tuple[str, ...], message: str) -> None:
    """Answer 400 naming the field when a patch tries to change what specs refer to (instead of ignoring it)."""
    sent = [name for name in fields if name in serializer.initial_data]
    if sent:
        raise serializers.ValidationError({name: [message] for name in sent})


class ProviderUpdateSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    kind = ProviderKindField(required=False)
    base_url = serializers.CharField(
        max_length=500, required=False, allow_blank=True, help_text="An http(s) URL, e.g. http://vllm:8000/v1."
    )
    api_key_secret = serializers.CharField(
        max_length=63,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="The name of an organisation secret; null or empty for none.",
    )
    timeout_seconds = serializers.IntegerField(min_value=1, max_value=3600, required=False)
    max_retries = serializers.IntegerField(min_value=0, max_value=10, required=False)
    enabled = serializers.BooleanField(required=False)

    def validate(self, attrs):
        if type(self) is ProviderUpdateSerializer:
            _refuse_identity_changes(
                self, ("name",), "A provider's name is how specs refer to it: it cannot change. Add another provider."
            )
        return attrs


class ProviderCreateSerializer(ProviderUpdateSerializer):
    name = serializers.CharField(max_length=63, help_text="Used in model references: <provider>/<model>.")
    kind = ProviderKindField()


class ModelSerializer(serializers.ModelSerializer):
    provider = serializers.SlugRelatedField(slug_field="name", read_only=True)
    ref = serializers.CharField(read_only=True, help_text="How agent specs name the model: <provider>/<model>.")
    status = ModelStatusField(read_only=True)

    class Meta:
        model = Model
        fields = [
            "id",
            "ref",
            "provider",
            "name",
            "display_name",
            "status",
            "input_price_per_mtok",
            "output_price_per_mtok",
            "cached_input_price_per_mtok",
            "context_window",
            "max_output_tokens",
            "supports_tools",
            "notes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


def _price(help_text: str):
    return serializers.DecimalField(max_digits=12, decimal_places=6, min_value=0, required=False, help_text=help_text)


class ModelUpdateSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    status = ModelStatusField(required=False)
    input_price_per_mtok = _price("USD per million input tokens.")
    output_price_per_mtok = _price("USD per million output tokens.")
    cached_input_price_per_mtok = _price("USD per million cached input tokens.")
    context_window = serializers.IntegerField(min_value=1, max_value=100_000_000, required=False)
    max_output_tokens = serializers.IntegerField(min_value=1, max_value=100_000_000, required=False)
    supports_tools = serializers.BooleanField(required=False)
    notes = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    def validate(self, attrs):
        if type(self) is ModelUpdateSerializer:
            _refuse_identity_changes(
                self,
                ("provider", "name"),
                "A model's provider and name are how specs refer to it: they cannot change. "
                "Add a new model and deprecate this one.",
            )
        return attrs


class ModelCreateSerializer(ModelUpdateSerializer):
    provider = serializers.CharField(max_length=63, help_text="The provider's name, e.g. openai.")
    name = serializers.CharField(max_length=100, help_text="The provider's model id, e.g. gpt-4o-mini.")
