"""Permission-matrix rows for OTLP ingest at /v1/traces (see tests/matrix.py).

Ingest takes only an API token with the ingest scope (tested in test_ingest.py): a signed-in
session, whatever its role, is no credential there, so every row answers 401; other methods 405.
"""

from tests.matrix import everyone

PAGES: list = []
API = [
    ("otlp_traces", "post", "/v1/traces", {}, everyone(401, anonymous=401)),
    ("otlp_traces_get", "get", "/v1/traces", None, everyone(405, anonymous=405)),
]


def setup(world) -> dict:
    return {}
