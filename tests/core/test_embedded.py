"""`make run`'s embedded default: web, worker and beat start together on SQLite and the filesystem broker."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return None, b""


@pytest.fixture
def embedded(tmp_path):
    """Migrate and seed a fresh var/ folder, start the embedded runner, stop it at the end."""
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        {"FLEETDECK_VAR_DIR": str(tmp_path), "FLEETDECK_PORT": str(port), "FLEETDECK_WORKER_HEARTBEAT_SECONDS": "1"}
    )
    for args in (["migrate", "--noinput"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, timeout=180
        )
    log = open(tmp_path / "run.log", "w")  # noqa: SIM115 - closed in the teardown below
    proc = subprocess.Popen(
        [sys.executable, "scripts/run_embedded.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    yield proc, f"http://127.0.0.1:{port}", tmp_path
    if proc.poll() is None:
        proc.kill()
    log.close()


def test_make_run_serves_the_platform_with_a_live_worker_and_stops_on_ctrl_c(embedded):
    proc, base, var = embedded
    deadline = time.monotonic() + 90
    status, body = None, b""
    while time.monotonic() < deadline:
        status, body = _get(f"{base}/readyz")
        if status == 200:
            break
        assert proc.poll() is None, (var / "run.log").read_text()[-3000:]
        time.sleep(0.5)
    assert status == 200, f"/readyz never became ready: {body!r}\n{(var / 'run.log').read_text()[-3000:]}"
    checks = json.loads(body)["checks"]
    assert checks["broker"]["ok"] and checks["worker"]["ok"] and checks["database"]["ok"]
    assert _get(f"{base}/login/")[0] == 200
    assert (var / "fleetdeck.sqlite3").exists() and (var / "broker").is_dir()

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=40) == 0
    log = (var / "run.log").read_text()
    assert "Stopped web, worker and beat." in log
    assert _get(f"{base}/healthz")[0] is None  # the web server is gone too


def test_seed_demo_is_idempotent_and_prints_every_role(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env["FLEETDECK_VAR_DIR"] = str(tmp_path)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )
    first = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    second = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0 and second.returncode == 0
    assert first.stdout == second.stdout  # same users, same password: nothing duplicated
    for role in ("owner", "builder", "operator", "viewer", "security auditor", "break-glass"):
        assert role in first.stdout
    verify = subprocess.run(
        [sys.executable, "manage.py", "audit_verify"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 0 and "intact" in verify.stdout
