from django.urls import path

from . import views

app_name = "context"
urlpatterns = [
    path("", views.space_list_view, name="space_list"),
    path("new/", views.space_create_view, name="space_create"),
    path("<int:pk>/", views.space_detail_view, name="space_detail"),
    path("<int:pk>/edit/", views.space_update_view, name="space_update"),
    path("<int:pk>/delete/", views.space_delete_view, name="space_delete"),
    path("<int:pk>/entries/new/", views.entry_create_view, name="entry_create"),
    path("<int:pk>/entries/<int:entry_pk>/", views.entry_detail_view, name="entry_detail"),
    path("<int:pk>/entries/<int:entry_pk>/edit/", views.entry_update_view, name="entry_update"),
    path("<int:pk>/entries/<int:entry_pk>/delete/", views.entry_delete_view, name="entry_delete"),
    path("<int:pk>/state/", views.state_write_view, name="state_write"),
    path("<int:pk>/state/<str:key>/", views.state_detail_view, name="state_detail"),
    path("<int:pk>/grants/", views.grant_set_view, name="grant_set"),
    path("<int:pk>/grants/<int:grant_pk>/revoke/", views.grant_revoke_view, name="grant_revoke"),
]
