"""Permission-matrix rows for observability alerts and /metrics (see tests/matrix.py).

Everyone who sees a team reads its alert rules and events (team.view); builders, owners and admins
manage rules (alert.manage); operators and up acknowledge events (alert.acknowledge). The rule form
works in the current team: the outsider's is their own team (support), so they may create there.
/metrics is for platform admins (401 for anonymous scrapers, 403 for everyone else) unless
FLEETDECK_METRICS_TOKEN is set.
"""

from tests.matrix import everyone

MEMBERS = dict(outsider=404)
MANAGERS = dict(outsider=404, viewer=403, operator=403, auditor=403)  # builder, owner, admin may
ACKNOWLEDGERS = dict(outsider=404, viewer=403, auditor=403)  # operator, builder, owner, admin may
ANON = dict(anonymous=401)

RULE = "/observability/alerts/rules/{al_rule}"
EVENT = "/observability/alerts/events/{al_event}"
RULE_FORM = {"name": "Slow runs", "kind": "latency_p95", "threshold": "2000", "window_minutes": "60", "enabled": "on"}

PAGES = [
    ("alert_event_list", "get", "/observability/alerts/", None, everyone(200)),
    ("alert_event_list_open", "get", "/observability/alerts/?state=open", None, everyone(200)),
    ("alert_event_detail", "get", EVENT + "/", None, everyone(200, **MEMBERS)),
    ("alert_event_acknowledge", "post", EVENT + "/acknowledge/", None, everyone(302, **ACKNOWLEDGERS)),
    ("alert_rule_list", "get", "/observability/alerts/rules/", None, everyone(200)),
    (
        "alert_rule_create_form",
        "get",
        "/observability/alerts/rules/new/",
        None,
        everyone(200, **{**MANAGERS, "outsider": 200}),
    ),
    (
        "alert_rule_create",
        "post",
        "/observability/alerts/rules/new/",
        RULE_FORM,
        everyone(302, **{**MANAGERS, "outsider": 302}),
    ),
    ("alert_rule_edit_form", "get", RULE + "/edit/", None, everyone(200, **MANAGERS)),
    ("alert_rule_edit", "post", RULE + "/edit/", RULE_FORM, everyone(302, **MANAGERS)),
    ("alert_rule_delete_form", "get", RULE + "/delete/", None, everyone(200, **MANAGERS)),
    ("alert_rule_delete", "post", RULE + "/delete/", None, everyone(302, **MANAGERS)),
    ("metrics", "get", "/metrics", None, everyone(403, anonymous=401, admin=200)),
]

API = [
    ("api_alert_rules", "get", "/api/v1/alert-rules/", None, everyone(200, **ANON)),
    (
        "api_alert_rule_create",
        "post",
        "/api/v1/alert-rules/",
        {"team": "payments", "name": "api-rule", "kind": "failure_rate", "threshold": "25"},
        everyone(201, **ANON, **MANAGERS),
    ),
    ("api_alert_rule", "get", "/api/v1/alert-rules/{al_rule}/", None, everyone(200, **ANON, **MEMBERS)),
    (
        "api_alert_rule_patch",
        "patch",
        "/api/v1/alert-rules/{al_rule}/",
        {"threshold": "30"},
        everyone(200, **ANON, **MANAGERS),
    ),
    ("api_alert_rule_delete", "delete", "/api/v1/alert-rules/{al_rule}/", None, everyone(204, **ANON, **MANAGERS)),
    ("api_alert_events", "get", "/api/v1/alert-events/", None, everyone(200, **ANON)),
    ("api_alert_event", "get", "/api/v1/alert-events/{al_event}/", None, everyone(200, **ANON, **MEMBERS)),
    (
        "api_alert_event_acknowledge",
        "post",
        "/api/v1/alert-events/{al_event}/acknowledge/",
        None,
        everyone(200, **ANON, **ACKNOWLEDGERS),
    ),
]


def setup(world) -> dict:
    """Create in payments a failure-rate rule and an event it fired (recorded as evaluation records it)."""
    from apps.observability.models import AlertEvent
    from apps.observability.services import alert_rule_create

    rule = alert_rule_create(
        actor=world["builder"], team=world.team, name="Payments failures", kind="failure_rate", threshold=25
    )
    event = AlertEvent.objects.create(
        team=world.team, rule=rule, value=60.0, threshold=25.0, message="Failure rate of runs 60.0% is above 25%"
    )
    return {"al_rule": rule.pk, "al_event": event.pk}
