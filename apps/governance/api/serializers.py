from rest_framework import serializers

from ..models import GranteeType, Secret, SecretGrant
from ..selectors import grantee_labels


def _labels(serializer, grants) -> dict:
    """Return grantee labels, from the view's batch when it computed them (lists), else looked up."""
    labels = serializer.context.get("labels")
    if labels is None:
        return grantee_labels(grants)
    return labels


class SecretSerializer(serializers.ModelSerializer):
    """A secret's metadata. There is no field for the value: it is never returned."""

    team = serializers.SlugRelatedField(slug_field="slug", read_only=True, help_text="null for organisation secrets")
    scope = serializers.SerializerMethodField()
    value_set = serializers.SerializerMethodField(help_text="Always true: a secret always has a (hidden) value.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    used_by = serializers.SerializerMethodField()

    class Meta:
        model = Secret
        fields = [
            "id",
            "team",
            "scope",
            "name",
            "description",
            "value_set",
            "created_at",
            "created_by",
            "rotated_at",
            "last_used_at",
            "last_used_by",
            "used_by",
        ]
        read_only_fields = fields

    def get_scope(self, secret) -> str:
        return "team" if secret.team_id else "org"

    def get_value_set(self, secret) -> bool:
        return bool(secret.ciphertext)

    def get_used_by(self, secret) -> list[str]:
        grants = list(secret.grants.all())
        labels = _labels(self, grants)
        return sorted(labels[(g.grantee_type, g.grantee_id)] for g in grants)


class SecretCreateSerializer(serializers.Serializer):
    team = serializers.SlugField(
        max_length=50, allow_null=True, help_text="The team's slug, or null for an organisation secret (admins)."
    )
    name = serializers.CharField(max_length=63, help_text="How tools and agents refer to it, e.g. crm-api-key.")
    description = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    value = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Write-only: stored encrypted, never returned.",
    )


class SecretUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=300, allow_blank=True)


class SecretValueSerializer(serializers.Serializer):
    value = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Write-only: the new value, stored encrypted, never returned.",
    )


class SecretGrantSerializer(serializers.ModelSerializer):
    secret_name = serializers.CharField(source="secret.name", read_only=True)
    grantee = serializers.SerializerMethodField(help_text="A readable label, e.g. 'tool payments/crm-lookup'.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SecretGrant
        fields = ["id", "secret", "secret_name", "grantee_type", "grantee_id", "grantee", "created_at", "created_by"]
        read_only_fields = fields

    def get_grantee(self, grant) -> str:
        return _labels(self, [grant])[(grant.grantee_type, grant.grantee_id)]


class SecretGrantCreateSerializer(serializers.Serializer):
    secret = serializers.IntegerField(min_value=1, help_text="The secret's id.")
    grantee_type = serializers.ChoiceField(choices=GranteeType.choices)
    grantee_id = serializers.IntegerField(min_value=1, help_text="The id of the provider, tool or agent.")
