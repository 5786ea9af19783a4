"""Permission-matrix rows for agents, the Studio and the inventory (see tests/matrix.py)."""

from tests.matrix import everyone

MEMBERS = dict(outsider=404)
EDITORS = dict(outsider=404, viewer=403, operator=403, auditor=403)  # builder, owner, admin may
OWNERS = dict(outsider=404, viewer=403, operator=403, builder=403, auditor=403)  # owner, admin may

DRAFT_FORM = {
    "model": "simulated/sim-small",
    "prompt_mode": "inline",
    "prompt_inline": "Be brief.",
    "prompt_variables": "",
    "tools": ["kb.search"],
    "max_steps": "5",
    "max_tokens": "1000",
    "max_cost_usd": "0.5",
    "max_wall_seconds": "60",
    "session_window_turns": "10",
    "context_spaces": "",
    "secrets": "",
    "input_schema": "",
    "output_schema": "",
}
# Block style: the matrix fills {placeholders} in data, so no braces here.
DOCUMENT = """apiVersion: fleetdeck/v1
kind: Agent
metadata:
  name: imported-bot
spec:
  model: simulated/sim-small
  prompt:
    inline: Be kind.
"""
A = "/agents/{agent}"
AGENT_API = "/api/v1/agents/{agent}"

PAGES = [
    ("agent_list", "get", "/agents/", None, everyone(200)),
    ("studio", "get", "/agents/studio/", None, everyone(200)),
    (
        "studio_create",
        "post",
        "/agents/studio/",
        {"name": "new-bot", "risk_tier": "low", "data_classification": "internal", "tags": ""},
        # The outsider creates it in their own current team (support); the auditor has no role anywhere.
        everyone(302, viewer=403, operator=403, auditor=403),
    ),
    ("agent_import", "get", "/agents/import/", None, everyone(200)),
    ("inventory", "get", "/agents/inventory/", None, everyone(200)),
    ("inventory_csv", "get", "/agents/inventory/export.csv", None, everyone(200)),
    ("inventory_json", "get", "/agents/inventory/export.json", None, everyone(200)),
    ("agent_detail", "get", A + "/", None, everyone(200, **MEMBERS)),
    (
        "agent_update",
        "post",
        A + "/",
        {"description": "x", "risk_tier": "low", "data_classification": "internal", "tags": "", "owner": "ben"},
        everyone(302, **EDITORS),
    ),
    ("agent_studio", "get", A + "/studio/", None, everyone(200, **MEMBERS)),
    ("agent_draft_save", "post", A + "/studio/", DRAFT_FORM, everyone(302, **EDITORS)),
    ("agent_publish", "post", A + "/publish/", {"version": "2.0.0"}, everyone(302, **EDITORS)),
    (
        "agent_promote",
        "post",
        A + "/promote/",
        {"version": "1.1.0", "channel": "production", "reason": "go"},
        everyone(302, **OWNERS),
    ),
    ("agent_rollback", "post", A + "/rollback/", {"channel": "staging", "reason": "back"}, everyone(302, **EDITORS)),
    ("agent_retire", "post", A + "/retire/", {"reason": "done"}, everyone(302, **OWNERS)),
    ("agent_diff", "get", A + "/diff/", None, everyone(200, **MEMBERS)),
    ("agent_export", "get", A + "/export/?version=1.0.0", None, everyone(200, **MEMBERS)),
    ("agent_access", "get", A + "/access/", None, everyone(200, **MEMBERS)),
    (
        "agent_grant",
        "post",
        A + "/access/",
        {"username": "xavier", "permission": "run.approve", "action": "add"},
        everyone(302, **OWNERS),
    ),
    ("agentversion_detail", "get", A + "/versions/1.0.0/", None, everyone(200, **MEMBERS)),
]

API = [
    ("api_agents", "get", "/api/v1/agents/", None, everyone(200, anonymous=401)),
    (
        "api_agent_create",
        "post",
        "/api/v1/agents/",
        {"team": "payments", "name": "api-bot"},
        everyone(201, anonymous=401, **EDITORS),
    ),
    ("api_agent", "get", AGENT_API + "/", None, everyone(200, anonymous=401, **MEMBERS)),
    ("api_agent_patch", "patch", AGENT_API + "/", {"description": "changed"}, everyone(200, anonymous=401, **EDITORS)),
    ("api_agent_draft", "get", AGENT_API + "/draft/", None, everyone(200, anonymous=401, **MEMBERS)),
    (
        "api_agent_draft_put",
        "put",
        AGENT_API + "/draft/",
        {"spec": {"model": "simulated/sim-small", "prompt": {"inline": "Hi"}}},
        everyone(200, anonymous=401, **EDITORS),
    ),
    # Permission passes for editors, then the unchanged draft is refused: 400, not 403.
    (
        "api_agent_publish",
        "post",
        AGENT_API + "/publish/",
        {"version": "3.0.0"},
        everyone(400, anonymous=401, **EDITORS),
    ),
    ("api_agent_versions", "get", AGENT_API + "/versions/", None, everyone(200, anonymous=401, **MEMBERS)),
    ("api_agent_version", "get", AGENT_API + "/versions/1.0.0/", None, everyone(200, anonymous=401, **MEMBERS)),
    ("api_agent_diff", "get", AGENT_API + "/diff/?a=1.0.0&b=1.1.0", None, everyone(200, anonymous=401, **MEMBERS)),
    (
        "api_agent_promote",
        "post",
        AGENT_API + "/promote/",
        {"version": "1.1.0", "channel": "production", "reason": "go"},
        everyone(200, anonymous=401, **OWNERS),
    ),
    (
        "api_agent_rollback",
        "post",
        AGENT_API + "/rollback/",
        {"channel": "staging", "reason": "back"},
        everyone(400, anonymous=401, **EDITORS),
    ),
    ("api_agent_retire", "post", AGENT_API + "/retire/", {"reason": "done"}, everyone(200, anonymous=401, **OWNERS)),
    ("api_agent_promotions", "get", AGENT_API + "/promotions/", None, everyone(200, anonymous=401, **MEMBERS)),
    (
        "api_agent_export",
        "get",
        AGENT_API + "/export/?version=1.0.0&format=json",
        None,
        everyone(200, anonymous=401, **MEMBERS),
    ),
    (
        "api_agent_import",
        "post",
        "/api/v1/agents/import/",
        {"team": "payments", "document": DOCUMENT},
        everyone(201, anonymous=401, **EDITORS),
    ),
    ("api_agent_access", "get", AGENT_API + "/access/", None, everyone(200, anonymous=401, **MEMBERS)),
    ("api_agent_grants", "get", AGENT_API + "/grants/", None, everyone(200, anonymous=401, **MEMBERS)),
    (
        "api_agent_grant_add",
        "post",
        AGENT_API + "/grants/",
        {"user": "xavier", "permission": "run.approve"},
        everyone(200, anonymous=401, **OWNERS),
    ),
    (
        "api_agent_grant_remove",
        "post",
        AGENT_API + "/grants/remove/",
        {"user": "xavier", "permission": "run.approve"},
        everyone(200, anonymous=401, **OWNERS),
    ),
    ("api_inventory", "get", "/api/v1/inventory/", None, everyone(200, anonymous=401)),
]


def setup(world) -> dict:
    """Create an agent in payments with versions 1.0.0 and 1.1.0, 1.0.0 in staging."""
    from apps.agents import services
    from tests.agents.conftest import Registry, spec

    Registry(world)
    builder = world["builder"]
    agent = services.agent_create(actor=builder, team=world.team, name="invoice-bot")
    services.agent_update_draft(actor=builder, agent=agent, spec=spec())
    v1 = services.agent_publish(actor=builder, agent=agent, version="1.0.0")
    services.agent_update_draft(actor=builder, agent=agent, spec=spec(limits={"max_steps": 9}))
    services.agent_publish(actor=builder, agent=agent, version="1.1.0")
    services.agent_promote(actor=builder, agent=agent, version=v1, channel="staging", reason="first")
    return {"agent": agent.pk}
