"""The permission matrix: every role against every page and API endpoint, with the expected answer.

Every later feature adds its rows here. Roles: anonymous, a member of another team (outsider),
the four team roles in team `payments`, the security auditor and the platform admin.
Another team's object is a 404; a known object without the permission is a 403.
"""

from __future__ import annotations

import importlib

import pytest

from apps.audit.models import AuditEvent
from tests.matrix import LOGIN, ONLY_READERS_OF_AUDIT, ROLES, TEAM_MEMBERS_ONLY, everyone

# Areas that add rows (each module: PAGES, API, optional setup(world) -> ids for placeholders).
AREA_MATRICES = [
    "tests.catalog.matrix",
    "tests.governance.matrix",
    "tests.tools.matrix",
    "tests.prompts.matrix",
    "tests.agents.matrix",
    "tests.context.matrix",
    "tests.runtime.matrix",
    "tests.observability.matrix_dashboards",
    "tests.observability.matrix_traces",
    "tests.observability.matrix_alerts",
    "tests.observability.matrix_ingest",
]

# (id, method, path, data, expected status by role)
PAGES = [
    ("home", "get", "/", None, everyone(200)),
    ("team_list", "get", "/teams/", None, everyone(200)),
    ("team_detail", "get", "/teams/payments/", None, everyone(200, **TEAM_MEMBERS_ONLY)),
    ("team_detail_other", "get", "/teams/support/", None, everyone(404, outsider=200, auditor=200, admin=200)),
    ("team_missing", "get", "/teams/nope/", None, everyone(404)),
    ("tokens", "get", "/tokens/", None, everyone(200)),
    ("audit", "get", "/audit/", None, everyone(200, **ONLY_READERS_OF_AUDIT)),
    ("audit_csv", "get", "/audit/export.csv", None, everyone(200, **ONLY_READERS_OF_AUDIT)),
    ("audit_jsonl", "get", "/audit/export.jsonl", None, everyone(200, **ONLY_READERS_OF_AUDIT)),
    ("audit_verify", "get", "/audit/verify/", None, everyone(200, **ONLY_READERS_OF_AUDIT)),
    ("area", "get", "/area/studio/", None, everyone(200)),
    ("area_missing", "get", "/area/nope/", None, everyone(404)),
    ("admin", "get", "/admin/", None, everyone(302, admin=200)),
    ("healthz", "get", "/healthz", None, everyone(200, anonymous=200)),
    ("login_page", "get", "/login/", None, everyone(200, anonymous=200)),
    ("logout", "post", "/logout/", None, everyone(302)),
    # Public, and 503 here because no worker has reported a heartbeat in the test database.
    ("readyz", "get", "/readyz", None, everyone(503, anonymous=503)),
    (
        "team_update",
        "post",
        "/teams/payments/",
        {"action": "update", "name": "Payments", "description": "", "monthly_budget": "10"},
        everyone(403, outsider=404, owner=302, admin=302),
    ),
    (
        "team_add_member",
        "post",
        "/teams/payments/",
        {"action": "add_member", "username": "newbie", "role": "viewer"},
        everyone(403, outsider=404, owner=302, admin=302),
    ),
    (
        "team_add_grant",
        "post",
        "/teams/payments/",
        {"action": "add_grant", "username": "newbie", "permission": "team.view"},
        everyone(403, outsider=404, owner=302, admin=302),
    ),
    (
        "team_create",
        "post",
        "/teams/",
        {"slug": "new-team", "name": "New", "description": "", "monthly_budget": "0"},
        everyone(403, admin=302),
    ),
    ("team_switch", "post", "/teams/switch/", {"team": "payments"}, everyone(302, outsider=404)),
    ("token_create", "post", "/tokens/", {"name": "ci", "scopes": ["read"]}, everyone(200, auditor=403)),
    (
        "token_revoke",
        "post",
        "/tokens/{builder_token}/revoke/",
        None,
        everyone(404, builder=302, owner=302, admin=302, anonymous=LOGIN),
    ),
]

API = [
    ("api_me", "get", "/api/v1/me/", None, everyone(200, anonymous=401)),
    ("api_teams", "get", "/api/v1/teams/", None, everyone(200, anonymous=401)),
    ("api_team", "get", "/api/v1/teams/payments/", None, everyone(200, anonymous=401, **TEAM_MEMBERS_ONLY)),
    (
        "api_team_patch",
        "patch",
        "/api/v1/teams/payments/",
        {"description": "changed"},
        everyone(403, anonymous=401, outsider=404, owner=200, admin=200),
    ),
    (
        "api_team_create",
        "post",
        "/api/v1/teams/",
        {"slug": "api-team", "name": "API team"},
        everyone(403, anonymous=401, admin=201),
    ),
    (
        "api_team_grants",
        "get",
        "/api/v1/teams/payments/grants/",
        None,
        everyone(200, anonymous=401, **TEAM_MEMBERS_ONLY),
    ),
    (
        "api_team_grant_add",
        "post",
        "/api/v1/teams/payments/grants/",
        {"user": "newbie", "permission": "team.view"},
        everyone(403, anonymous=401, outsider=404, owner=200, admin=200),
    ),
    (
        "api_team_grant_remove",
        "post",
        "/api/v1/teams/payments/grants/remove/",
        {"user": "newbie", "permission": "team.view"},
        everyone(403, anonymous=401, outsider=404, owner=200, admin=200),
    ),
    ("api_memberships", "get", "/api/v1/memberships/", None, everyone(200, anonymous=401)),
    (
        "api_membership_create",
        "post",
        "/api/v1/memberships/",
        {"team": "payments", "user": "newbie", "role": "viewer"},
        everyone(403, anonymous=401, outsider=404, owner=201, admin=201),
    ),
    ("api_tokens", "get", "/api/v1/tokens/", None, everyone(200, anonymous=401)),
    (
        "api_token_create",
        "post",
        "/api/v1/tokens/",
        {"team": "payments", "name": "ci", "scopes": ["read"]},
        everyone(201, anonymous=401, outsider=404, auditor=403),
    ),
    ("api_audit", "get", "/api/v1/audit-events/", None, everyone(200, anonymous=401, **ONLY_READERS_OF_AUDIT)),
    (
        "api_membership",
        "get",
        "/api/v1/memberships/{viewer_membership}/",
        None,
        everyone(200, anonymous=401, **TEAM_MEMBERS_ONLY),
    ),
    (
        "api_membership_patch",
        "patch",
        "/api/v1/memberships/{viewer_membership}/",
        {"role": "operator"},
        everyone(403, anonymous=401, outsider=404, owner=200, admin=200),
    ),
    (
        "api_membership_delete",
        "delete",
        "/api/v1/memberships/{viewer_membership}/",
        None,
        everyone(403, anonymous=401, outsider=404, owner=204, admin=204),
    ),
    (
        "api_token",
        "get",
        "/api/v1/tokens/{builder_token}/",
        None,
        everyone(404, anonymous=401, builder=200, owner=200, admin=200),
    ),
    (
        "api_token_revoke",
        "post",
        "/api/v1/tokens/{builder_token}/revoke/",
        None,
        everyone(404, anonymous=401, builder=200, owner=200, admin=200),
    ),
    ("api_audit_event", "get", "/api/v1/audit-events/1/", None, everyone(200, anonymous=401, **ONLY_READERS_OF_AUDIT)),
    ("api_schema", "get", "/api/v1/schema/", None, everyone(200, anonymous=401)),
    ("api_docs", "get", "/api/v1/docs/", None, everyone(200, anonymous=401)),
    ("api_redoc", "get", "/api/v1/redoc/", None, everyone(200, anonymous=401)),
]

_AREAS = [importlib.import_module(name) for name in AREA_MATRICES]
# Each row with the area that owns it (None: accounts and audit, set up by the world fixture).
ROWS = [(None, row) for row in PAGES + API] + [(area, row) for area in _AREAS for row in area.PAGES + area.API]
PAGES = PAGES + [row for area in _AREAS for row in area.PAGES]
API = API + [row for area in _AREAS for row in area.API]


def _area_ids(world, area=None) -> dict:
    """Return the ids the rows' paths use: the world's, plus the area's own objects (only its)."""
    ids = dict(world.ids)
    areas = _AREAS if area == "all" else [area] if area is not None else []
    for module in areas:
        if hasattr(module, "setup"):
            ids.update(module.setup(world))
    return ids


CASES = [
    (case_id, role, method, path, data, expected[role], area)
    for area, (case_id, method, path, data, expected) in ROWS
    for role in ROLES
]


@pytest.mark.parametrize(
    ("case_id", "role", "method", "path", "data", "expected", "area"),
    CASES,
    ids=[f"{c[0]}-{c[1]}" for c in CASES],
)
def test_permission_matrix(client, world, case_id, role, method, path, data, expected, area):
    from tests.factories import UserFactory

    UserFactory(username="newbie")
    if role != "anonymous":
        client.force_login(world[role])
    kwargs = {}
    if data is not None:
        kwargs = {"data": data, "content_type": "application/json"} if path.startswith("/api/") else {"data": data}
    denials_before = AuditEvent.objects.filter(action="permission.denied").count()
    ids = _area_ids(world, area)
    if isinstance(data, dict):
        data = {k: (v.format(**ids) if isinstance(v, str) else v) for k, v in data.items()}
        kwargs["data"] = data
    response = getattr(client, method)(path.format(**ids), **kwargs)
    assert response.status_code == expected, (
        f"{role} {method.upper()} {path}: {response.status_code}, expected {expected}"
    )
    if response.status_code == 302 and role == "anonymous":
        assert "/login/" in response["Location"]
    if response.status_code == 403 and role != "anonymous":
        # Every refusal of a signed-in user is a security event in the audit log.
        assert AuditEvent.objects.filter(action="permission.denied").count() == denials_before + 1


def test_matrix_covers_every_url(world):
    """Fail when a named URL exists that no row of the matrix exercises."""
    from django.urls import URLPattern, get_resolver, resolve

    exempt_namespaces = {"admin"}  # Django's admin: only its entry page is in the matrix
    exempt_names = {"oidc_authentication_init", "oidc_authentication_callback", "oidc_logout"}  # tests/sso

    def walk(patterns, namespace=""):
        for p in patterns:
            if isinstance(p, URLPattern):
                if p.name and p.name not in exempt_names:
                    yield f"{namespace}{p.name}"
            elif (p.namespace or "") not in exempt_namespaces:
                yield from walk(p.url_patterns, f"{namespace}{p.namespace}:" if p.namespace else namespace)

    ids = _area_ids(world, "all")
    covered = {resolve(path.format(**ids).split("?")[0]).view_name for _, _, path, _, _ in PAGES + API}
    uncovered = sorted(set(walk(get_resolver().url_patterns)) - covered)
    assert not uncovered, f"Add these URLs to the permission matrix: {uncovered}"
