"""API of the observability area: spans, traces and rollups; alert rules and events."""

from . import alerts, traces

urlpatterns = [*traces.urlpatterns, *alerts.urlpatterns]
