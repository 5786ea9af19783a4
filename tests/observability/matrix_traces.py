"""Permission-matrix rows for the trace pages and the traces, spans and rollups API (see tests/matrix.py).

Every member reads traces (team.view); another team's trace is a 404; auditors and admins read every team.
"""

from tests.matrix import everyone

MEMBERS = dict(outsider=404)
ANON = dict(anonymous=401)  # the API answers 401 to anonymous callers

TRACE = "/observability/traces/{obs_trace}"

PAGES = [
    ("trace_list", "get", "/observability/traces/", None, everyone(200)),
    (
        "trace_list_filtered",
        "get",
        "/observability/traces/?status=ok&range=7d&model=gpt-4o-mini&tool=stock.lookup&source=otlp&q=checkout",
        None,
        everyone(200),
    ),
    ("trace_detail", "get", TRACE + "/", None, everyone(200, **MEMBERS)),
    ("trace_span_json", "get", TRACE + "/spans/{obs_span}/", None, everyone(200, **MEMBERS)),
]

API = [
    ("api_traces", "get", "/api/v1/traces/?range=7d", None, everyone(200, **ANON)),
    ("api_trace", "get", "/api/v1/traces/{obs_trace}/", None, everyone(200, **ANON, **MEMBERS)),
    ("api_spans", "get", "/api/v1/spans/?trace_id={obs_trace}", None, everyone(200, **ANON)),
    ("api_rollups", "get", "/api/v1/rollups/?group_by=day", None, everyone(200, **ANON)),
]


def setup(world) -> dict:
    """Store an external (OTLP) trace of three spans in payments."""
    from apps.catalog.services import catalog_seed_defaults
    from tests.observability.test_traces import otlp_trace

    catalog_seed_defaults()
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    otlp_trace(world.team, trace_id=trace_id)
    return {"obs_trace": trace_id, "obs_span": "b2" * 8}
