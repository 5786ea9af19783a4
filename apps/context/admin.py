from django.contrib import admin

from apps.core.admin import ReadOnlyModelAdmin

from .models import ContextEntry, ContextGrant, ContextSpace, ContextState, ContextStateVersion


@admin.register(ContextSpace)
class ContextSpaceAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "team", "created_by", "created_at"]
    search_fields = ["name", "description"]


@admin.register(ContextEntry)
class ContextEntryAdmin(ReadOnlyModelAdmin):
    list_display = ["space", "kind", "key", "title", "author", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["key", "title"]


@admin.register(ContextState)
class ContextStateAdmin(ReadOnlyModelAdmin):
    list_display = ["space", "key", "version", "updated_by", "updated_at"]


@admin.register(ContextStateVersion)
class ContextStateVersionAdmin(ReadOnlyModelAdmin):
    list_display = ["state", "version", "author", "created_at"]


@admin.register(ContextGrant)
class ContextGrantAdmin(ReadOnlyModelAdmin):
    list_display = ["space", "agent", "access", "granted_by", "created_at"]
