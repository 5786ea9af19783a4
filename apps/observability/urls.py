"""Pages of the observability area: dashboards, traces and alerts (each view module lists its own)."""

from .views import alerts, dashboards, traces

app_name = "observability"
urlpatterns = [*dashboards.urlpatterns, *traces.urlpatterns, *alerts.urlpatterns]
