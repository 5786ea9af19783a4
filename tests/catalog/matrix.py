"""Permission-matrix rows for the catalog area (see tests/matrix.py).

The catalog is organisation-wide: every signed-in user reads it, only platform admins change it.
"""

from tests.matrix import everyone

ADMIN_ONLY_PAGE = dict(outsider=403, viewer=403, operator=403, builder=403, owner=403, auditor=403)
MODEL_FORM = {
    "display_name": "New",
    "status": "approved",
    "input_price_per_mtok": "1",
    "output_price_per_mtok": "2",
    "cached_input_price_per_mtok": "0.5",
    "context_window": "8192",
    "max_output_tokens": "1024",
    "supports_tools": "on",
    "notes": "",
}
PROVIDER_FORM = {
    "display_name": "vLLM",
    "kind": "openai_compatible",
    "base_url": "http://vllm.internal:8000/v1",
    "api_key_secret": "",
    "timeout_seconds": "30",
    "max_retries": "1",
    "enabled": "on",
}

PAGES = [
    ("catalog_models", "get", "/catalog/", None, everyone(200)),
    ("catalog_models_filtered", "get", "/catalog/?status=approved&provider=openai", None, everyone(200)),
    ("catalog_model_create_page", "get", "/catalog/models/new/", None, everyone(200, **ADMIN_ONLY_PAGE)),
    (
        "catalog_model_create",
        "post",
        "/catalog/models/new/",
        {"provider": "openai", "name": "gpt-new", **MODEL_FORM},
        everyone(302, **ADMIN_ONLY_PAGE),
    ),
    (
        "catalog_model_edit_page",
        "get",
        "/catalog/models/{catalog_model}/edit/",
        None,
        everyone(200, **ADMIN_ONLY_PAGE),
    ),
    (
        "catalog_model_edit",
        "post",
        "/catalog/models/{catalog_model}/edit/",
        MODEL_FORM,
        everyone(302, **ADMIN_ONLY_PAGE),
    ),
    ("catalog_model_missing", "get", "/catalog/models/999999/edit/", None, everyone(404)),
    ("catalog_providers", "get", "/catalog/providers/", None, everyone(200)),
    ("catalog_provider_create_page", "get", "/catalog/providers/new/", None, everyone(200, **ADMIN_ONLY_PAGE)),
    (
        "catalog_provider_create",
        "post",
        "/catalog/providers/new/",
        {"name": "vllm", **PROVIDER_FORM},
        everyone(302, **ADMIN_ONLY_PAGE),
    ),
    ("catalog_provider_edit_page", "get", "/catalog/providers/openai/edit/", None, everyone(200, **ADMIN_ONLY_PAGE)),
    (
        "catalog_provider_edit",
        "post",
        "/catalog/providers/openai/edit/",
        {**PROVIDER_FORM, "display_name": "OpenAI"},
        everyone(302, **ADMIN_ONLY_PAGE),
    ),
    ("catalog_provider_missing", "get", "/catalog/providers/nope/edit/", None, everyone(404)),
]

API_ADMIN_ONLY = dict(anonymous=401, outsider=403, viewer=403, operator=403, builder=403, owner=403, auditor=403)

API = [
    ("api_providers", "get", "/api/v1/providers/", None, everyone(200, anonymous=401)),
    ("api_provider", "get", "/api/v1/providers/openai/", None, everyone(200, anonymous=401)),
    ("api_provider_missing", "get", "/api/v1/providers/nope/", None, everyone(404, anonymous=401)),
    (
        "api_provider_create",
        "post",
        "/api/v1/providers/",
        {"name": "vllm", "kind": "openai_compatible", "base_url": "http://vllm.internal:8000/v1"},
        everyone(201, **API_ADMIN_ONLY),
    ),
    (
        "api_provider_patch",
        "patch",
        "/api/v1/providers/openai/",
        {"timeout_seconds": 30},
        everyone(200, **API_ADMIN_ONLY),
    ),
    ("api_models", "get", "/api/v1/models/", None, everyone(200, anonymous=401)),
    (
        "api_models_filtered",
        "get",
        "/api/v1/models/?status=approved&provider=openai",
        None,
        everyone(200, anonymous=401),
    ),
    ("api_model", "get", "/api/v1/models/{catalog_model}/", None, everyone(200, anonymous=401)),
    (
        "api_model_create",
        "post",
        "/api/v1/models/",
        {"provider": "openai", "name": "o1-mini", "input_price_per_mtok": "1.1", "output_price_per_mtok": "4.4"},
        everyone(201, **API_ADMIN_ONLY),
    ),
    (
        "api_model_patch",
        "patch",
        "/api/v1/models/{catalog_model}/",
        {"status": "deprecated"},
        everyone(200, **API_ADMIN_ONLY),
    ),
]


def setup(world) -> dict:
    """Create the openai provider with gpt-4o-mini; return the model's id.

    Only these rows: other areas' setups create the simulated provider their own way.
    """
    from apps.catalog.models import Model, Provider

    provider, _ = Provider.objects.get_or_create(
        name="openai",
        defaults={"display_name": "OpenAI", "kind": "openai_compatible", "base_url": "https://api.openai.com/v1"},
    )
    model, _ = Model.objects.get_or_create(
        provider=provider,
        name="gpt-4o-mini",
        defaults={"input_price_per_mtok": "0.15", "output_price_per_mtok": "0.6", "context_window": 128000},
    )
    return {"catalog_model": model.pk}
