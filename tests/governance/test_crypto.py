"""Encryption at rest: Fernet keys from FLEETDECK_SECRET_KEYS, a development key, rotation."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from apps.audit.models import AuditEvent
from apps.governance import crypto
from apps.governance.models import Secret
from apps.governance.services import secret_create, secret_grant, secret_read_for_use
from tests.governance.conftest import VALUE

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def test_values_are_stored_encrypted_and_decrypt_again(world, team_secret):
    stored = Secret.objects.get(pk=team_secret.pk).ciphertext
    assert VALUE not in stored and len(stored) > len(VALUE)
    assert crypto.decrypt(stored) == VALUE


def test_without_keys_development_derives_a_key_from_secret_key(settings):
    settings.FLEETDECK_SECRET_KEYS = []
    settings.PRODUCTION = False
    token = crypto.encrypt("hello")
    assert Fernet(crypto.development_key()).decrypt(token.encode()) == b"hello"
    settings.SECRET_KEY = "another-" * 8
    with pytest.raises(crypto.SecretDecryptError, match="FLEETDECK_SECRET_KEYS"):
        crypto.decrypt(token)


def test_production_requires_the_keys_at_first_use(world, settings):
    settings.FLEETDECK_SECRET_KEYS = []
    settings.PRODUCTION = True
    with pytest.raises(ImproperlyConfigured, match="FLEETDECK_SECRET_KEYS"):
        secret_create(actor=world["owner"], team=world.team, name="k", value="v")
    assert not Secret.objects.exists()


def test_a_malformed_key_is_refused_without_echoing_it(settings):
    settings.FLEETDECK_SECRET_KEYS = [KEY_A, "not-a-fernet-key-but-sensitive"]
    with pytest.raises(ImproperlyConfigured) as exc:
        crypto.encrypt("v")
    assert "item 2" in str(exc.value) and "not-a-fernet-key-but-sensitive" not in str(exc.value)


def test_rotation_re_encrypts_every_secret_with_the_newest_key(world, settings, tool, capsys):
    settings.FLEETDECK_SECRET_KEYS = [KEY_A]
    secret = secret_create(actor=world["owner"], team=world.team, name="a", value=VALUE)
    secret_create(actor=world["admin"], team=None, name="b", value="second")
    secret_grant(actor=world["owner"], secret=secret, grantee_type="tool", grantee=tool)

    settings.FLEETDECK_SECRET_KEYS = [KEY_B, KEY_A]
    call_command("rotate_secret_key")
    assert "Re-encrypted 2 secret(s)" in capsys.readouterr().out
    event = AuditEvent.objects.get(action="secret.rotate_key")
    assert event.metadata["count"] == 2 and event.actor_label == "system:rotate_secret_key"

    settings.FLEETDECK_SECRET_KEYS = [KEY_B]  # the old key is gone: everything still opens
    secret.refresh_from_db()
    assert secret_read_for_use(secret=secret, grantee_type="tool", grantee_id=tool.pk, purpose="test") == VALUE
    assert crypto.decrypt(Secret.objects.get(name="b").ciphertext) == "second"


def test_rotation_changes_nothing_when_a_secret_cannot_be_opened(world, settings):
    settings.FLEETDECK_SECRET_KEYS = [KEY_A]
    secret_create(actor=world["owner"], team=world.team, name="a", value="one")
    before = Secret.objects.get(name="a").ciphertext
    settings.FLEETDECK_SECRET_KEYS = [KEY_B]  # the key it was written with is missing
    with pytest.raises(CommandError, match="payments/a cannot be re-encrypted; nothing was changed"):
        call_command("rotate_secret_key")
    assert Secret.objects.get(name="a").ciphertext == before
    assert not AuditEvent.objects.filter(action="secret.rotate_key").exists()


def test_generate_prints_a_usable_key(capsys):
    call_command("rotate_secret_key", "--generate")
    Fernet(capsys.readouterr().out.strip().encode())
