from django.urls import path

from . import views

app_name = "agents"
urlpatterns = [
    path("", views.agent_list_view, name="agent_list"),
    path("studio/", views.studio_view, name="studio"),
    path("import/", views.agent_import_view, name="agent_import"),
    path("inventory/", views.inventory_view, name="inventory"),
    path("inventory/export.csv", views.inventory_export_view, {"fmt": "csv"}, name="inventory_export_csv"),
    path("inventory/export.json", views.inventory_export_view, {"fmt": "json"}, name="inventory_export_json"),
    path("<int:pk>/", views.agent_detail_view, name="agent_detail"),
    path("<int:pk>/studio/", views.agent_studio_view, name="agent_studio"),
    path("<int:pk>/publish/", views.agent_publish_view, name="agent_publish"),
    path("<int:pk>/promote/", views.agent_promote_view, name="agent_promote"),
    path("<int:pk>/rollback/", views.agent_rollback_view, name="agent_rollback"),
    path("<int:pk>/retire/", views.agent_retire_view, name="agent_retire"),
    path("<int:pk>/diff/", views.agent_diff_view, name="agent_diff"),
    path("<int:pk>/export/", views.agent_export_view, name="agent_export"),
    path("<int:pk>/access/", views.agent_access_view, name="agent_access"),
    path("<int:pk>/versions/<str:version>/", views.agentversion_detail_view, name="agentversion_detail"),
]
