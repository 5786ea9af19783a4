from django.urls import path

from . import views

app_name = "audit"
urlpatterns = [
    path("", views.audit_event_list_view, name="auditevent_list"),
    path("export.csv", views.audit_event_export_view, {"fmt": "csv"}, name="auditevent_export_csv"),
    path("export.jsonl", views.audit_event_export_view, {"fmt": "jsonl"}, name="auditevent_export_jsonl"),
    path("verify/", views.audit_verify_view, name="audit_verify"),
]
