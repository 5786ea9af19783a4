from django.urls import path

from . import views

app_name = "core"
urlpatterns = [
    path("", views.home_view, name="home"),
    path("area/<slug:area>/", views.area_placeholder_view, name="area"),
]
