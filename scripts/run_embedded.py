"""Start the web server, a Celery worker and Celery beat together; Ctrl-C stops all three.

This is the embedded default of DESIGN.md: SQLite under var/ and kombu's filesystem broker, so
nothing but Python is needed. In production run gunicorn, workers and beat as separate services.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = os.environ.get("FLEETDECK_HOST", "127.0.0.1")
PORT = os.environ.get("FLEETDECK_PORT", "8000")

COMMANDS = {
    "web": [sys.executable, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"],
    # Two processes: one can wait on a slow tool call while the other takes the next task.
    "worker": [
        str(BIN / "celery"),
        "-A",
        "platform_site",
        "worker",
        "--loglevel=INFO",
        "--concurrency=2",
        "-n",
        "embedded@%h",
    ],
    "beat": [str(BIN / "celery"), "-A", "platform_site", "beat", "--loglevel=INFO"],
}


def main() -> int:
    procs: dict[str, subprocess.Popen] = {}
    for name, cmd in COMMANDS.items():
        # Each child gets its own process group so Ctrl-C reaches us once and we stop them in order.
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    print(f"Fleetdeck is running at http://{HOST}:{PORT}/ (web, worker and beat). Press Ctrl-C to stop.", flush=True)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with code {proc.returncode}; stopping the others.", file=sys.stderr)
                exit_code = proc.returncode or 1
                stopping = True
                break
        time.sleep(0.5)
    for proc in procs.values():
        if proc.poll() is None:
            # The main process only: Celery's warm shutdown stops its own pool children.
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    print("Stopped web, worker and beat.")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
