"""A test-only Celery task that is slow on its first delivery, to prove a killed worker loses no work.

Loaded into test workers with `--include tests.core.celery_probe`; never part of the app.
"""

import time
from pathlib import Path

from platform_site.celery import app

FIRST_DELIVERY_SLEEP_SECONDS = 60


@app.task(name="tests.probe_slow")
def probe_slow(path: str) -> str:
    """Append "started" to the file; finish at once on a redelivery, else sleep long enough to be killed."""
    marker = Path(path)
    delivered_before = marker.exists() and "started" in marker.read_text()
    with marker.open("a") as handle:
        handle.write("started\n")
    if not delivered_before:
        time.sleep(FIRST_DELIVERY_SLEEP_SECONDS)
    with marker.open("a") as handle:
        handle.write("finished\n")
    return "finished"
