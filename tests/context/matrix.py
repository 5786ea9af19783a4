"""Permission-matrix rows for context spaces (see tests/matrix.py)."""

from tests.matrix import everyone

READ = dict(outsider=404)
WRITE = dict(outsider=404, viewer=403, auditor=403)  # operator, builder, owner, admin may (context.write)
MANAGE = dict(outsider=404, viewer=403, operator=403, auditor=403)  # builder, owner, admin may (context.manage)
A = dict(anonymous=401)

C = "/context/{ctx_space}"
API = "/api/v1/context/spaces/{ctx_space}"
# No braces in string data: the matrix fills {placeholders} in it.
FACT_FORM = {"kind": "fact", "key": "", "title": "", "body": "A new fact.", "metadata": ""}

PAGES = [
    ("ctx_space_list", "get", "/context/", None, everyone(200)),
    # The outsider works in their own current team (support), where they are owner.
    ("ctx_space_create_page", "get", "/context/new/", None, everyone(200, viewer=403, operator=403, auditor=403)),
    (
        "ctx_space_create",
        "post",
        "/context/new/",
        {"name": "new-space", "description": ""},
        everyone(302, viewer=403, operator=403, auditor=403),
    ),
    ("ctx_space_detail", "get", C + "/", None, everyone(200, **READ)),
    ("ctx_space_search", "get", C + "/?q=refund&kind=fact", None, everyone(200, **READ)),
    ("ctx_space_update", "post", C + "/edit/", {"description": "Changed."}, everyone(302, **MANAGE)),
    ("ctx_space_delete_page", "get", C + "/delete/", None, everyone(200, **MANAGE)),
    ("ctx_space_delete", "post", C + "/delete/", None, everyone(302, **MANAGE)),
    ("ctx_entry_create_page", "get", C + "/entries/new/?kind=document", None, everyone(200, **WRITE)),
    ("ctx_entry_create", "post", C + "/entries/new/?kind=fact", FACT_FORM, everyone(302, **WRITE)),
    (
        "ctx_decision_record",
        "post",
        C + "/entries/new/?kind=decision",
        {"kind": "decision", "title": "Pause refunds", "rationale": "Provider down.", "decided_by": ""},
        everyone(302, **WRITE),
    ),
    ("ctx_entry_detail", "get", C + "/entries/{ctx_entry}/", None, everyone(200, **READ)),
    ("ctx_decision_detail", "get", C + "/entries/{ctx_decision}/", None, everyone(200, **READ)),
    ("ctx_entry_update_page", "get", C + "/entries/{ctx_entry}/edit/", None, everyone(200, **WRITE)),
    (
        "ctx_entry_update",
        "post",
        C + "/entries/{ctx_entry}/edit/",
        {"key": "refund-days", "title": "Refunds", "body": "3 days.", "metadata": ""},
        everyone(302, **WRITE),
    ),
    ("ctx_entry_delete", "post", C + "/entries/{ctx_entry}/delete/", None, everyone(302, **WRITE)),
    (
        "ctx_state_write",
        "post",
        C + "/state/",
        {"key": "new-key", "value": "[1, 2]", "expected_version": "0"},
        everyone(302, **WRITE),
    ),
    ("ctx_state_detail", "get", C + "/state/mode/", None, everyone(200, **READ)),
    ("ctx_state_missing", "get", C + "/state/missing/", None, everyone(404)),
    (
        "ctx_state_update",
        "post",
        C + "/state/mode/",
        {"key": "mode", "value": '"busy"', "expected_version": "1"},
        everyone(302, **WRITE),
    ),
    (
        "ctx_state_conflict",
        "post",
        C + "/state/mode/",
        {"key": "mode", "value": '"busy"', "expected_version": "7"},
        everyone(409, **WRITE),
    ),
    ("ctx_grant_set", "post", C + "/grants/", {"agent": "{ctx_agent}", "access": "write"}, everyone(302, **MANAGE)),
    ("ctx_grant_revoke", "post", C + "/grants/{ctx_grant}/revoke/", None, everyone(302, **MANAGE)),
]

API = [
    ("api_ctx_spaces", "get", "/api/v1/context/spaces/", None, everyone(200, **A)),
    ("api_ctx_spaces_filtered", "get", "/api/v1/context/spaces/?team=payments&q=ctx", None, everyone(200, **A)),
    (
        "api_ctx_space_create",
        "post",
        "/api/v1/context/spaces/",
        {"team": "payments", "name": "api-space"},
        everyone(201, **A, **MANAGE),
    ),
    ("api_ctx_space", "get", API + "/", None, everyone(200, **A, **READ)),
    ("api_ctx_space_patch", "patch", API + "/", {"description": "Changed."}, everyone(200, **A, **MANAGE)),
    ("api_ctx_space_put", "put", API + "/", {"description": "Changed."}, everyone(405, **A)),
    ("api_ctx_space_delete", "delete", API + "/", None, everyone(204, **A, **MANAGE)),
    ("api_ctx_entries", "get", API + "/entries/?kind=fact", None, everyone(200, **A, **READ)),
    (
        "api_ctx_entry_add",
        "post",
        API + "/entries/",
        {"kind": "fact", "key": "new-fact", "body": "A new fact."},
        everyone(201, **A, **WRITE),
    ),
    (
        "api_ctx_decision_record",
        "post",
        API + "/entries/",
        {"kind": "decision", "title": "Pause refunds", "body": "Provider down."},
        everyone(201, **A, **WRITE),
    ),
    ("api_ctx_entry", "get", API + "/entries/{ctx_entry}/", None, everyone(200, **A, **READ)),
    ("api_ctx_entry_patch", "patch", API + "/entries/{ctx_entry}/", {"body": "3 days."}, everyone(200, **A, **WRITE)),
    ("api_ctx_entry_delete", "delete", API + "/entries/{ctx_entry}/", None, everyone(204, **A, **WRITE)),
    # Decisions are append-only: refused to everyone who may write at all.
    ("api_ctx_decision_patch", "patch", API + "/entries/{ctx_decision}/", {"body": "x"}, everyone(400, **A, **WRITE)),
    ("api_ctx_state", "get", API + "/state/", None, everyone(200, **A, **READ)),
    ("api_ctx_state_key", "get", API + "/state/mode/", None, everyone(200, **A, **READ)),
    (
        "api_ctx_state_put",
        "put",
        API + "/state/mode/",
        {"value": "busy", "expected_version": 1},
        everyone(200, **A, **WRITE),
    ),
    (
        "api_ctx_state_conflict",
        "put",
        API + "/state/mode/",
        {"value": "busy", "expected_version": 7},
        everyone(409, **A, **WRITE),
    ),
    ("api_ctx_search", "get", API + "/search/?q=refund", None, everyone(200, **A, **READ)),
    ("api_ctx_grants", "get", API + "/grants/", None, everyone(200, **A, **READ)),
    (
        "api_ctx_grant_set",
        "post",
        API + "/grants/",
        {"agent": "ctx-reader", "access": "write"},
        everyone(201, **A, **MANAGE),
    ),
    ("api_ctx_grant_revoke", "delete", API + "/grants/{ctx_grant}/", None, everyone(204, **A, **MANAGE)),
]


def setup(world) -> dict:
    """Create space ctx-matrix in payments: a fact, a decision, state "mode" at version 1, and agent ctx-reader
    granted read."""
    from apps.agents.models import Agent
    from apps.context import services

    builder = world["builder"]
    space = services.context_space_create(actor=builder, team=world.team, name="ctx-matrix")
    entry = services.context_entry_add(
        actor=builder, space=space, kind="fact", key="refund-days", title="Refunds", body="A refund takes 5 days."
    )
    decision = services.context_decision_record(actor=builder, space=space, title="Keep it", rationale="It works.")
    services.context_state_write(actor=builder, space=space, key="mode", value="normal", expected_version=0)
    agent = Agent.objects.create(
        team=world.team,
        name="ctx-reader",
        draft_spec={"memory": {"context_spaces": [{"space": "ctx-matrix", "access": "read"}]}},
    )
    grant = services.context_grant_set(actor=builder, space=space, agent=agent, access="read")
    return {
        "ctx_space": space.pk,
        "ctx_entry": entry.pk,
        "ctx_decision": decision.pk,
        "ctx_agent": agent.pk,
        "ctx_grant": grant.pk,
    }
