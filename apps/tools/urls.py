from django.urls import path

from . import views

app_name = "tools"
urlpatterns = [
    path("", views.tool_list_view, name="tool_list"),
    path("new/", views.tool_create_view, name="tool_create"),
    path("import/", views.tool_import_view, name="tool_import"),
    path("import-mcp/", views.tool_import_mcp_view, name="tool_import_mcp"),
    path("<int:pk>/", views.tool_detail_view, name="tool_detail"),
    path("<int:pk>/versions/<str:version>/", views.toolversion_detail_view, name="toolversion_detail"),
    path("<int:pk>/diff/", views.tool_diff_view, name="tool_diff"),
    path("<int:pk>/export/", views.tool_export_view, name="tool_export"),
    path("<int:pk>/impact/", views.tool_impact_view, name="tool_impact"),
    path("<int:pk>/deprecate/", views.tool_deprecate_view, name="tool_deprecate"),
    path("<int:pk>/undeprecate/", views.tool_undeprecate_view, name="tool_undeprecate"),
]
