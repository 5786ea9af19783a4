"""Prometheus metrics at GET /metrics (to be filled in by the alerts and metrics work)."""

from django.http import HttpResponse


def metrics_view(request):
    return HttpResponse(status=501)
