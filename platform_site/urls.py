from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.core import views as core_views
from apps.observability.views.ingest import otlp_traces_view
from apps.observability.views.metrics import metrics_view

# The admin signs in through Fleetdeck's own login page, so throttling and audit apply there too.
admin.site.login = lambda request, extra_context=None: redirect_to_login(request.GET.get("next", "/admin/"))
admin.site.site_header = "Fleetdeck administration"

api_v1 = [
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.audit.api.urls")),
    path("", include("apps.catalog.api.urls")),
    path("", include("apps.governance.api.urls")),
    path("", include("apps.tools.api.urls")),
    path("", include("apps.prompts.api.urls")),
    path("", include("apps.agents.api.urls")),
    path("", include("apps.runtime.api.urls")),
    path("", include("apps.context.api.urls")),
    path("", include("apps.observability.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]

urlpatterns = [
    path("", include("apps.core.urls")),
    path("", include("apps.accounts.urls")),
    path("audit/", include("apps.audit.urls")),
    path("catalog/", include("apps.catalog.urls")),
    path("secrets/", include("apps.governance.urls")),
    path("tools/", include("apps.tools.urls")),
    path("prompts/", include("apps.prompts.urls")),
    path("agents/", include("apps.agents.urls")),
    path("", include("apps.runtime.urls")),
    path("context/", include("apps.context.urls")),
    path("observability/", include("apps.observability.urls")),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("api/v1/", include((api_v1, "api"))),
    path("admin/", admin.site.urls),
    path("healthz", core_views.healthz_view, name="healthz"),
    path("readyz", core_views.readyz_view, name="readyz"),
    # The standard OTLP/HTTP path, so any OpenTelemetry SDK's exporter needs only an endpoint and a header.
    path("v1/traces", otlp_traces_view, name="otlp_traces"),
    path("metrics", metrics_view, name="metrics"),
]

handler404 = "apps.core.errors.page_not_found"
handler500 = "apps.core.errors.server_error"
