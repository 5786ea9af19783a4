from django.urls import path

from . import views

app_name = "catalog"
urlpatterns = [
    path("", views.model_list_view, name="model_list"),
    path("models/new/", views.model_create_view, name="model_create"),
    path("models/<int:pk>/edit/", views.model_edit_view, name="model_edit"),
    path("providers/", views.provider_list_view, name="provider_list"),
    path("providers/new/", views.provider_create_view, name="provider_create"),
    path("providers/<str:name>/edit/", views.provider_edit_view, name="provider_edit"),
]
