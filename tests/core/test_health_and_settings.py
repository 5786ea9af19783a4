"""Health endpoints and the production settings' refusals and deploy checks."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from apps.core.models import WorkerHeartbeat

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_answers_without_touching_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency(client, db):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert "no worker has ever reported" in body["checks"]["worker"]["error"]

    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="w1@test", seen_at=now, started_at=now)
    assert client.get("/readyz").status_code == 200

    WorkerHeartbeat.objects.filter(hostname="w1@test").update(seen_at=now - timedelta(minutes=5))
    stale = client.get("/readyz")
    assert stale.status_code == 503 and "older than" in stale.json()["checks"]["worker"]["error"]


def _manage(*args, env_overrides):
    unset = {"SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_secret_key_or_hosts(tmp_path):
    base = {"FLEETDECK_ENV": "production", "FLEETDECK_VAR_DIR": str(tmp_path)}
    no_key = _manage("check", env_overrides={**base, "ALLOWED_HOSTS": "fleet.example.com"})
    assert no_key.returncode != 0 and "SECRET_KEY is required" in no_key.stderr
    no_hosts = _manage("check", env_overrides={**base, "SECRET_KEY": "k" * 60})
    assert no_hosts.returncode != 0 and "ALLOWED_HOSTS is required" in no_hosts.stderr


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        "FLEETDECK_ENV": "production",
        "FLEETDECK_VAR_DIR": str(tmp_path),
        "SECRET_KEY": "production-grade-secret-" + "x9Y8z7W6v5" * 5,
        "ALLOWED_HOSTS": "fleet.example.com",
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_malformed_boolean_setting_is_named(tmp_path):
    result = _manage("check", env_overrides={"FLEETDECK_VAR_DIR": str(tmp_path), "DEBUG": "maybe"})
    assert result.returncode != 0 and "DEBUG='maybe' is not a boolean" in result.stderr
