from django.contrib import admin


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Read-only in the admin: the object changes through its services (validated, audited), or never."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
