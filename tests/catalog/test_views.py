"""Catalog pages: what a reader sees, and how an admin adds and changes providers and models."""

import pytest

from apps.audit.models import AuditEvent
from apps.catalog.models import Model, Provider
from apps.catalog.services import catalog_seed_defaults
from apps.governance.models import SecretGrant
from apps.governance.services import secret_create


@pytest.fixture
def seeded(world):
    catalog_seed_defaults()


def test_every_signed_in_user_reads_the_catalog_with_status_prices_and_window(client, world, seeded):
    client.force_login(world["outsider"])
    html = client.get("/catalog/").content.decode()
    assert 'data-model="openai/gpt-4o-mini"' in html and "$0.15" in html and "$0.60" in html and "$0.075" in html
    assert "128000" in html and "Deprecated" in html and "Blocked" in html
    assert "Add a model" not in html and "/edit/" not in html


def test_the_catalog_filters_by_status_and_provider(client, world, seeded):
    client.force_login(world["viewer"])
    html = client.get("/catalog/", {"status": "blocked"}).content.decode()
    assert 'data-model="anthropic/claude-2"' in html and 'data-model="openai/gpt-4o"' not in html
    html = client.get("/catalog/", {"provider": "simulated"}).content.decode()
    assert 'data-model="simulated/sim-large"' in html and "openai/" not in html
    response = client.get("/catalog/", {"status": "nonsense"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()


def test_admin_adds_a_model_and_bad_input_is_shown_beside_the_field(client, world, seeded):
    client.force_login(world["admin"])
    assert "Add a model" in client.get("/catalog/").content.decode()
    form = {
        "provider": "openai",
        "name": "o1-mini",
        "status": "approved",
        "input_price_per_mtok": "1.1",
        "output_price_per_mtok": "4.4",
        "cached_input_price_per_mtok": "0.55",
        "context_window": "128000",
        "max_output_tokens": "200000",
        "supports_tools": "on",
    }
    response = client.post("/catalog/models/new/", form)
    assert response.status_code == 400
    assert "cannot exceed the context window" in response.content.decode()
    assert not Model.objects.filter(name="o1-mini").exists()

    response = client.post("/catalog/models/new/", {**form, "max_output_tokens": "65536"})
    assert response.status_code == 302
    assert str(Model.objects.get(name="o1-mini").cached_input_price_per_mtok) == "0.550000"
    assert "o1-mini added" in client.get("/catalog/").content.decode()


def test_admin_deprecates_a_model_from_its_edit_page(client, world, seeded):
    client.force_login(world["admin"])
    model = Model.objects.get(name="gpt-4o")
    page = client.get(f"/catalog/models/{model.pk}/edit/").content.decode()
    assert 'value="2.500000"' in page
    response = client.post(
        f"/catalog/models/{model.pk}/edit/",
        {
            "display_name": "GPT-4o",
            "status": "deprecated",
            "input_price_per_mtok": "2.5",
            "output_price_per_mtok": "10",
            "cached_input_price_per_mtok": "1.25",
            "context_window": "128000",
            "max_output_tokens": "16384",
            "notes": "Move to gpt-4o-mini.",
        },
    )
    assert response.status_code == 302
    model.refresh_from_db()
    assert model.status == "deprecated" and not model.supports_tools and model.notes == "Move to gpt-4o-mini."
    event = AuditEvent.objects.get(action="model.update")
    assert event.before["status"] == "approved" and event.after["status"] == "deprecated"


def test_provider_pages_show_the_key_by_name_and_admin_sets_it(client, world, seeded):
    secret_create(actor=world["admin"], team=None, name="openai-key", value="sk-live-123456")
    client.force_login(world["admin"])
    form = {
        "display_name": "OpenAI",
        "kind": "openai_compatible",
        "base_url": "",
        "api_key_secret": "openai-key",
        "timeout_seconds": "60",
        "max_retries": "2",
        "enabled": "on",
    }
    response = client.post("/catalog/providers/openai/edit/", form)
    assert response.status_code == 400 and "needs its base URL" in response.content.decode()
    response = client.post("/catalog/providers/openai/edit/", {**form, "base_url": "https://api.openai.com/v1"})
    assert response.status_code == 302
    provider = Provider.objects.get(name="openai")
    assert provider.api_key_secret.name == "openai-key"
    assert SecretGrant.objects.filter(grantee_type="provider", grantee_id=provider.pk).exists()
    client.force_login(world["viewer"])
    html = client.get("/catalog/providers/").content.decode()
    assert "openai-key" in html and "sk-live-123456" not in html and "Add a provider" not in html


def test_admin_adds_an_in_cluster_provider(client, world):
    client.force_login(world["admin"])
    response = client.post(
        "/catalog/providers/new/",
        {
            "name": "vllm",
            "display_name": "",
            "kind": "openai_compatible",
            "base_url": "http://vllm:8000/v1",
            "timeout_seconds": "30",
            "max_retries": "0",
        },
    )
    assert response.status_code == 302
    provider = Provider.objects.get(name="vllm")
    assert provider.display_name == "vllm" and not provider.enabled
    response = client.post(
        "/catalog/providers/new/", {"name": "vllm", "kind": "simulated", "timeout_seconds": "1", "max_retries": "0"}
    )
    assert response.status_code == 400 and "already exists" in response.content.decode()


def test_non_admins_are_refused_the_forms_and_the_refusal_is_audited(client, world, seeded):
    client.force_login(world["owner"])
    assert client.get("/catalog/models/new/").status_code == 403
    assert client.post("/catalog/providers/new/", {"name": "x", "kind": "anthropic"}).status_code == 403
    assert AuditEvent.objects.filter(action="permission.denied", metadata__permission="catalog.manage").count() == 2
    assert not Provider.objects.filter(name="x").exists()
