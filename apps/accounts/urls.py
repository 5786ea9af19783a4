from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("teams/", views.team_list_view, name="team_list"),
    path("teams/switch/", views.team_switch_view, name="team_switch"),
    path("teams/<slug:slug>/", views.team_detail_view, name="team_detail"),
    path("tokens/", views.token_list_view, name="apitoken_list"),
    path("tokens/<int:pk>/revoke/", views.token_revoke_view, name="apitoken_revoke"),
]
