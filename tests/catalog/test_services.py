"""Catalog services and selectors: admins change it, every change is audited, specs resolve models."""

from decimal import Decimal

import pytest

from apps.audit.models import AuditEvent
from apps.catalog.models import Model, Provider
from apps.catalog.selectors import model_check_selectable, model_list, model_resolve
from apps.catalog.services import (
    catalog_seed_defaults,
    model_create,
    model_update,
    provider_create,
    provider_update,
)
from apps.core.exceptions import AccessDenied, ServiceError
from apps.governance.models import SecretGrant
from apps.governance.services import secret_create, secret_delete, secret_revoke_grant


@pytest.fixture
def seeded(world):
    catalog_seed_defaults()


def test_seed_creates_the_default_catalog_once_and_keeps_admin_changes(world):
    created = catalog_seed_defaults()
    assert created["providers"] == ["simulated", "openai", "anthropic"]
    statuses = dict((m.ref, m.status) for m in Model.objects.select_related("provider"))
    assert statuses == {
        "simulated/sim-small": "approved",
        "simulated/sim-large": "approved",
        "openai/gpt-4o-mini": "approved",
        "openai/gpt-4o": "approved",
        "openai/gpt-3.5-turbo": "deprecated",
        "anthropic/claude-3-5-sonnet": "approved",
        "anthropic/claude-2": "blocked",
    }
    small = model_resolve(ref="simulated/sim-small")
    assert (small.input_price_per_mtok, small.output_price_per_mtok) == (Decimal("0.5"), Decimal("1.5"))
    assert "Simulated" in small.notes
    assert Provider.objects.get(name="openai").base_url == "https://api.openai.com/v1"
    assert AuditEvent.objects.filter(action="model.create", actor_label="system:seed_catalog").count() == 7

    model_update(actor=world["admin"], model=small, input_price_per_mtok=Decimal("9"))
    events = AuditEvent.objects.count()
    assert catalog_seed_defaults() == {"providers": [], "models": []}
    assert Model.objects.count() == 7 and AuditEvent.objects.count() == events
    assert model_resolve(ref="simulated/sim-small").input_price_per_mtok == Decimal("9")


def test_only_platform_admins_change_the_catalog(world):
    for role in ("owner", "builder", "auditor", "outsider"):
        with pytest.raises(AccessDenied):
            provider_create(actor=world[role], name="vllm", kind="openai_compatible", base_url="http://vllm/v1")
    provider = provider_create(actor=world["admin"], name="vllm", kind="openai_compatible", base_url="http://vllm/v1")
    event = AuditEvent.objects.get(action="provider.create")
    assert event.actor_label == "ada" and event.after["base_url"] == "http://vllm/v1"
    with pytest.raises(AccessDenied):
        model_create(actor=world["owner"], provider=provider, name="llama-3")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "vllm", "kind": "openai_compatible"}, "base_url"),
        ({"name": "sim2", "kind": "simulated", "base_url": "http://x.example"}, "base_url"),
        ({"name": "Bad Name", "kind": "anthropic"}, "name"),
        ({"name": "x", "kind": "nonsense"}, "kind"),
        ({"name": "x", "kind": "openai_compatible", "base_url": "not a url"}, "base_url"),
        ({"name": "openai", "kind": "openai_compatible", "base_url": "http://x.example"}, "name"),
        ({"name": "slow", "kind": "anthropic", "timeout_seconds": 0}, "timeout_seconds"),
    ],
)
def test_bad_provider_input_names_the_field_and_writes_nothing(world, seeded, kwargs, field):
    before = (Provider.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ServiceError) as exc:
        provider_create(actor=world["admin"], **kwargs)
    assert exc.value.field == field
    assert (Provider.objects.count(), AuditEvent.objects.count()) == before


def test_provider_key_is_an_org_secret_granted_to_it_and_replaced_cleanly(world, seeded):
    admin = world["admin"]
    old = secret_create(actor=admin, team=None, name="openai-key", value="sk-old")
    new = secret_create(actor=admin, team=None, name="openai-key-2", value="sk-new")
    team_secret = secret_create(actor=admin, team=world.team, name="team-key", value="sk-team")
    openai = Provider.objects.get(name="openai")

    with pytest.raises(ServiceError) as exc:
        provider_update(actor=admin, provider=openai, api_key_secret=team_secret)
    assert exc.value.field == "api_key_secret" and "organisation secret" in exc.value.message
    assert Provider.objects.get(name="openai").api_key_secret is None

    provider_update(actor=admin, provider=openai, api_key_secret=old)
    assert SecretGrant.objects.filter(secret=old, grantee_type="provider", grantee_id=openai.pk).exists()
    grant = SecretGrant.objects.get(secret=old)
    with pytest.raises(ServiceError, match="uses this secret as its API key"):
        secret_revoke_grant(actor=admin, grant=grant)
    with pytest.raises(ServiceError, match="still granted to provider openai"):
        secret_delete(actor=admin, secret=old)

    provider_update(actor=admin, provider=openai, api_key_secret=new)
    assert not SecretGrant.objects.filter(secret=old).exists()
    assert SecretGrant.objects.filter(secret=new, grantee_id=openai.pk).exists()
    update = AuditEvent.objects.filter(action="provider.update").latest("seq")
    assert update.before["api_key_secret"] == "openai-key" and update.after["api_key_secret"] == "openai-key-2"
    assert AuditEvent.objects.filter(action="secret.revoke_grant").exists()

    with pytest.raises(ServiceError) as exc:
        provider_update(actor=admin, provider=Provider.objects.get(name="simulated"), api_key_secret=new)
    assert exc.value.field == "api_key_secret"
    with pytest.raises(ServiceError) as exc:
        provider_update(actor=admin, provider=openai, name="renamed")
    assert exc.value.field == "name"


def test_model_create_and_update_are_audited_with_before_and_after(world, seeded):
    admin = world["admin"]
    provider = Provider.objects.get(name="openai")
    model = model_create(
        actor=admin,
        provider=provider,
        name="o1-mini",
        input_price_per_mtok="1.1",
        output_price_per_mtok="4.4",
        context_window=128000,
        max_output_tokens=65536,
    )
    created = AuditEvent.objects.get(action="model.create", object_id=str(model.pk))
    assert created.after["provider"] == "openai" and created.after["input_price_per_mtok"] == "1.100000"

    model_update(actor=admin, model=model, status="deprecated", output_price_per_mtok=Decimal("5"))
    event = AuditEvent.objects.get(action="model.update")
    assert event.before["status"] == "approved" and event.after["status"] == "deprecated"
    assert event.before["output_price_per_mtok"] == "4.400000" and event.after["output_price_per_mtok"] == "5.000000"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_output_tokens": 999999}, "max_output_tokens"),
        ({"input_price_per_mtok": Decimal("-1")}, "input_price_per_mtok"),
        ({"status": "retired"}, "status"),
        ({"name": "other"}, "name"),
        ({"provider": None}, "provider"),
    ],
)
def test_bad_model_changes_name_the_field_and_change_nothing(world, seeded, changes, field):
    model = model_resolve(ref="openai/gpt-4o")
    events = AuditEvent.objects.count()
    with pytest.raises(ServiceError) as exc:
        model_update(actor=world["admin"], model=model, **changes)
    assert exc.value.field == field
    fresh = Model.objects.get(pk=model.pk)
    assert (fresh.status, fresh.max_output_tokens, fresh.input_price_per_mtok) == ("approved", 16384, Decimal("2.5"))
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    ("name", "field"),
    [("gpt 4", "name"), ("", "name"), ("gpt-4o", "name")],
)
def test_bad_model_names_are_refused(world, seeded, name, field):
    with pytest.raises(ServiceError) as exc:
        model_create(actor=world["admin"], provider=Provider.objects.get(name="openai"), name=name)
    assert exc.value.field == field


def test_model_ids_with_slashes_resolve_after_the_first_slash(world, seeded):
    provider = provider_create(actor=world["admin"], name="vllm", kind="openai_compatible", base_url="http://vllm/v1")
    model = model_create(actor=world["admin"], provider=provider, name="meta-llama/Llama-3-8B")
    assert model_resolve(ref="vllm/meta-llama/Llama-3-8B") == model


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("gpt-4o-mini", "not a model reference"),
        ("", "not a model reference"),
        ("azure/gpt-4o", "no provider 'azure'"),
        ("openai/gpt-5", "has no model 'gpt-5'"),
    ],
)
def test_model_resolve_names_the_field_and_says_what_exists(world, seeded, ref, message):
    with pytest.raises(ServiceError) as exc:
        model_resolve(ref=ref)
    assert exc.value.field == "model" and message in exc.value.message
    with pytest.raises(ServiceError) as exc:
        model_resolve(ref=ref, field="spec.model")
    assert exc.value.field == "spec.model"


def test_unknown_model_error_lists_approved_models_of_the_provider(world, seeded):
    with pytest.raises(ServiceError) as exc:
        model_resolve(ref="openai/gpt-5")
    assert "openai/gpt-4o-mini" in exc.value.message and "gpt-3.5-turbo" not in exc.value.message


def test_only_approved_models_of_enabled_providers_are_selectable(world, seeded):
    model_check_selectable(model=model_resolve(ref="openai/gpt-4o-mini"))
    with pytest.raises(ServiceError) as exc:
        model_check_selectable(model=model_resolve(ref="anthropic/claude-2"))
    assert exc.value.message.startswith("Model anthropic/claude-2 is blocked: pick an approved model")
    assert exc.value.field == "model" and exc.value.code == "blocked"
    with pytest.raises(ServiceError) as exc:
        model_check_selectable(model=model_resolve(ref="openai/gpt-3.5-turbo"))
    assert "deprecated" in exc.value.message and "pick an approved model" in exc.value.message
    provider_update(actor=world["admin"], provider=Provider.objects.get(name="anthropic"), enabled=False)
    with pytest.raises(ServiceError, match="disabled"):
        model_check_selectable(model=model_resolve(ref="anthropic/claude-3-5-sonnet"))


def test_model_list_filters_by_status_and_provider_and_rejects_unknown_status(world, seeded):
    viewer = world["viewer"]
    assert [m.ref for m in model_list(user=viewer, status="deprecated")] == ["openai/gpt-3.5-turbo"]
    assert {m.provider.name for m in model_list(user=viewer, provider="anthropic")} == {"anthropic"}
    with pytest.raises(ServiceError) as exc:
        model_list(user=viewer, status="retired")
    assert exc.value.field == "status"
    from django.contrib.auth.models import AnonymousUser

    assert not model_list(user=AnonymousUser()).exists()
