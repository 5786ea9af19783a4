from django.urls import path

from . import views

app_name = "governance"
urlpatterns = [
    path("", views.secret_list_view, name="secret_list"),
    path("new/", views.secret_create_view, name="secret_create"),
    path("<int:pk>/", views.secret_detail_view, name="secret_detail"),
    path("<int:pk>/edit/", views.secret_update_view, name="secret_update"),
    path("<int:pk>/value/", views.secret_set_value_view, name="secret_set_value"),
    path("<int:pk>/delete/", views.secret_delete_view, name="secret_delete"),
    path("<int:pk>/grants/", views.secret_grant_create_view, name="secret_grant_create"),
    path("<int:pk>/grants/<int:grant_pk>/revoke/", views.secret_grant_revoke_view, name="secret_grant_revoke"),
]
