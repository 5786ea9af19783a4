"""Error pages that answer API clients in JSON and people in HTML."""

from django.http import JsonResponse
from django.shortcuts import render


def _wants_json(request) -> bool:
    return request.path.startswith(("/api/", "/v1/")) or "application/json" in request.META.get("HTTP_ACCEPT", "")


def page_not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, "404.html", status=404)


def server_error(request):
    if _wants_json(request):
        return JsonResponse(
            {"detail": "Server error. The request id in X-Request-ID helps the operators find it."}, status=500
        )
    return render(request, "500.html", status=500)
