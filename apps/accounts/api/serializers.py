from rest_framework import serializers

from ..models import ApiToken, Membership, Team, TeamRole, TokenScope, User
from ..permissions import role_in


class TeamSerializer(serializers.ModelSerializer):
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["slug", "name", "description", "monthly_budget", "created_at", "my_role"]
        read_only_fields = ["created_at", "my_role"]

    def get_my_role(self, team) -> str | None:
        return role_in(self.context["request"].user, team)


class TeamUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    monthly_budget = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)


class MembershipSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "team", "user", "role", "source", "created_at"]
        read_only_fields = fields


class MembershipCreateSerializer(serializers.Serializer):
    team = serializers.SlugField(max_length=50, help_text="The team's slug.")
    user = serializers.CharField(max_length=150, help_text="The username of the person to add.")
    role = serializers.ChoiceField(choices=TeamRole.choices)


class MembershipRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=TeamRole.choices)


class ApiTokenSerializer(serializers.ModelSerializer):
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)
    status = serializers.CharField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "team",
            "user",
            "scopes",
            "status",
            "expires_at",
            "last_used_at",
            "created_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    team = serializers.SlugField(max_length=50, help_text="The slug of the team the token acts in.")
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=TokenScope.choices), min_length=1, max_length=4
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The token itself. Shown only in this response: store it now."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class MeSerializer(serializers.ModelSerializer):
    memberships = serializers.SerializerMethodField()
    token = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["username", "display_name", "email", "org_role", "memberships", "token"]
        read_only_fields = fields

    def get_memberships(self, user) -> list[dict]:
        return [{"team": m.team.slug, "role": m.role} for m in user.memberships.select_related("team")]

    def get_token(self, user) -> dict | None:
        token = getattr(user, "_fleetdeck_token", None)
        return {"prefix": token.prefix, "team": token.team.slug, "scopes": token.scopes} if token else None


class TeamGrantSerializer(serializers.Serializer):
    user = serializers.CharField(max_length=150, help_text="The username receiving the grant.")
    permission = serializers.CharField(
        max_length=50, help_text="A Fleetdeck permission, e.g. team.view or membership.manage."
    )
