from django.urls import path

from . import views

app_name = "prompts"
urlpatterns = [
    path("", views.prompt_list_view, name="prompt_list"),
    path("new/", views.prompt_create_view, name="prompt_create"),
    path("import/", views.prompt_import_view, name="prompt_import"),
    path("<int:pk>/", views.prompt_detail_view, name="prompt_detail"),
    path("<int:pk>/versions/<str:version>/", views.promptversion_detail_view, name="promptversion_detail"),
    path("<int:pk>/diff/", views.prompt_diff_view, name="prompt_diff"),
    path("<int:pk>/export/", views.prompt_export_view, name="prompt_export"),
]
