"""OTLP/HTTP trace ingest at POST /v1/traces (to be filled in by the ingest work)."""

from django.http import HttpResponse


def otlp_traces_view(request):
    return HttpResponse(status=501)
