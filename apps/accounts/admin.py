from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from guardian.admin import GuardedModelAdminMixin

from apps.audit.admin import AuditedModelAdmin

from .models import ApiToken, Membership, SsoGroupMapping, Team, User


@admin.register(User)
class UserAdmin(AuditedModelAdmin, BaseUserAdmin):
    fieldsets = [
        *BaseUserAdmin.fieldsets,
        ("Fleetdeck", {"fields": ["display_name", "org_role", "org_role_source", "is_break_glass", "sso_subject"]}),
    ]
    list_display = ["username", "email", "org_role", "is_break_glass", "is_active"]


@admin.register(Team)
class TeamAdmin(GuardedModelAdminMixin, AuditedModelAdmin):
    """Object grants beyond team roles are given here (Object permissions)."""

    list_display = ["slug", "name", "monthly_budget"]


@admin.register(SsoGroupMapping)
class SsoGroupMappingAdmin(AuditedModelAdmin):
    list_display = ["group", "team", "role"]


@admin.register(Membership)
class MembershipAdmin(AuditedModelAdmin):
    list_display = ["user", "team", "role", "source"]
    readonly_fields = ["source"]


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedModelAdmin):
    """Tokens are created where they can be shown once (UI, API, command); here they are only read."""

    list_display = ["name", "prefix", "user", "team", "scopes", "expires_at", "revoked_at"]
    readonly_fields = ["prefix", "token_hash", "last_used_at"]

    def has_add_permission(self, request):
        return False
