from django.contrib import admin

from apps.core.admin import ReadOnlyModelAdmin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    """Read-only: the audit log is changed by nobody, admins included."""

    list_display = ["seq", "created_at", "actor_label", "action", "outcome", "team_slug", "object_repr"]
    list_filter = ["outcome", "actor_type"]
    search_fields = ["action", "actor_label", "object_repr", "request_id"]


class AuditedModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose saves and deletes write an audit event in the same transaction.

    The admin is a platform admin's escape hatch; it must not be a way around the audit log.
    """

    def save_model(self, request, obj, form, change):
        from django.db import transaction

        from .services import audit_record

        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit_record(
                actor=request.user,
                action=f"admin.{'change' if change else 'add'}.{obj._meta.model_name}",
                obj=obj,
                team=obj if obj._meta.model_name == "team" else getattr(obj, "team", None),
                after={"changed_fields": list(form.changed_data)},
            )

    def delete_model(self, request, obj):
        from django.db import transaction

        from .services import audit_record

        with transaction.atomic():
            audit_record(
                actor=request.user, action=f"admin.delete.{obj._meta.model_name}", obj=obj, before={"repr": str(obj)}
            )
            super().delete_model(request, obj)

    def get_actions(self, request):
        # Bulk delete bypasses delete_model; removing it keeps every delete audited.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
