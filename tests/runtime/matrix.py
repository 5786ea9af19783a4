"""Permission-matrix rows for runs, approvals, webhooks, schedules and the budget (see tests/matrix.py).

Reading runs and approvals needs only to see the agent; starting, cancelling and deciding need
run.start / run.approve (operators and up); webhooks, schedules and the playground need
trigger.manage / registry.edit (builders and up); the daily budget needs team.change (owners).
"""

from tests.matrix import everyone

MEMBERS = dict(outsider=404)
RUNNERS = dict(outsider=404, viewer=403, auditor=403)  # operator, builder, owner, admin may
EDITORS = dict(outsider=404, viewer=403, operator=403, auditor=403)  # builder, owner, admin may
OWNERS = dict(outsider=404, viewer=403, operator=403, builder=403, auditor=403)  # owner, admin may
ANON = dict(anonymous=401)  # the API answers 401 to anonymous callers

A = "/agents/{rt_agent}"
AGENT_API = "/api/v1/agents/{rt_agent}"

# The matrix fills {placeholders} in string data, so literal braces are doubled.
PAGES = [
    ("run_list", "get", "/runs/", None, everyone(200)),
    ("run_list_filtered", "get", "/runs/?status=queued&since=24h&agent=runner-bot", None, everyone(200)),
    ("run_detail", "get", "/runs/{rt_run}/", None, everyone(200, **MEMBERS)),
    ("run_steps_json", "get", "/runs/{rt_waiting_run}/steps.json?after=0", None, everyone(200, **MEMBERS)),
    ("run_cancel", "post", "/runs/{rt_run}/cancel/", {"reason": "not needed"}, everyone(302, **RUNNERS)),
    ("run_start_form", "get", A + "/run/", None, everyone(200, **MEMBERS)),
    (
        "run_start",
        "post",
        A + "/run/",
        {"input": '{{"ticket": "T-9"}}', "channel": "production", "session": ""},
        everyone(302, **RUNNERS),
    ),
    ("playground_run", "post", A + "/playground/", {"input": '{{"ticket": "T-9"}}'}, everyone(302, **EDITORS)),
    ("agent_budget", "post", A + "/budget/", {"daily_budget_usd": "5.00"}, everyone(302, **OWNERS)),
    ("trigger_list", "get", A + "/triggers/", None, everyone(200, **MEMBERS)),
    # Creating a webhook answers with the page showing its secret once (200), like API tokens.
    (
        "webhook_create",
        "post",
        A + "/triggers/webhooks/",
        {"name": "new-hook", "channel": "production"},
        everyone(200, **EDITORS),
    ),
    (
        "schedule_create",
        "post",
        A + "/triggers/schedules/",
        {"name": "weekly", "cron": "0 7 * * 1", "timezone_name": "UTC", "input": "", "channel": "production"},
        everyone(302, **EDITORS),
    ),
    ("webhook_rotate", "post", "/webhooks/{rt_webhook}/rotate/", None, everyone(200, **EDITORS)),
    ("webhook_enabled", "post", "/webhooks/{rt_webhook}/enabled/", {"enabled": "0"}, everyone(302, **EDITORS)),
    ("webhook_delete", "post", "/webhooks/{rt_webhook}/delete/", None, everyone(302, **EDITORS)),
    ("schedule_enabled", "post", "/schedules/{rt_schedule}/enabled/", {"enabled": "0"}, everyone(302, **EDITORS)),
    ("schedule_delete", "post", "/schedules/{rt_schedule}/delete/", None, everyone(302, **EDITORS)),
    ("approval_list", "get", "/approvals/", None, everyone(200)),
    ("approval_list_decided", "get", "/approvals/?status=decided", None, everyone(200)),
    ("approval_detail", "get", "/approvals/{rt_approval}/", None, everyone(200, **MEMBERS)),
    (
        "approval_decide",
        "post",
        "/approvals/{rt_approval}/decide/",
        {"action": "approve", "comment": "fine"},
        everyone(302, **RUNNERS),
    ),
    # Public: no sign-in, the signature is the authentication; unsigned is 401 for everyone.
    ("webhook_receive", "post", "/hooks/{rt_webhook_token}/", {"ticket": "T-1"}, everyone(401, anonymous=401)),
]

API = [
    ("api_runs", "get", "/api/v1/runs/", None, everyone(200, **ANON)),
    ("api_runs_filtered", "get", "/api/v1/runs/?status=waiting_for_approval", None, everyone(200, **ANON)),
    ("api_run", "get", "/api/v1/runs/{rt_run}/", None, everyone(200, **ANON, **MEMBERS)),
    ("api_run_steps", "get", "/api/v1/runs/{rt_waiting_run}/steps/", None, everyone(200, **ANON, **MEMBERS)),
    (
        "api_run_start",
        "post",
        "/api/v1/runs/",
        {"agent": "{rt_agent}", "input": {"ticket": "T-9"}},
        everyone(201, **ANON, **RUNNERS),
    ),
    ("api_run_cancel", "post", "/api/v1/runs/{rt_run}/cancel/", {"reason": "x"}, everyone(200, **ANON, **RUNNERS)),
    ("api_approvals", "get", "/api/v1/approvals/", None, everyone(200, **ANON)),
    ("api_approval", "get", "/api/v1/approvals/{rt_approval}/", None, everyone(200, **ANON, **MEMBERS)),
    (
        "api_approval_decide",
        "post",
        "/api/v1/approvals/{rt_approval}/decide/",
        {"approve": True, "comment": "fine"},
        everyone(200, **ANON, **RUNNERS),
    ),
    (
        "api_agent_playground",
        "post",
        AGENT_API + "/playground/",
        {"input": {"ticket": "T-9"}},
        everyone(201, **ANON, **EDITORS),
    ),
    ("api_agent_webhooks", "get", AGENT_API + "/webhooks/", None, everyone(200, **ANON, **MEMBERS)),
    (
        "api_agent_webhook_create",
        "post",
        AGENT_API + "/webhooks/",
        {"name": "api-hook"},
        everyone(201, **ANON, **EDITORS),
    ),
    ("api_webhook", "get", "/api/v1/webhooks/{rt_webhook}/", None, everyone(200, **ANON, **MEMBERS)),
    ("api_webhook_rotate", "post", "/api/v1/webhooks/{rt_webhook}/rotate/", None, everyone(200, **ANON, **EDITORS)),
    (
        "api_webhook_enabled",
        "patch",
        "/api/v1/webhooks/{rt_webhook}/enabled/",
        {"enabled": False},
        everyone(200, **ANON, **EDITORS),
    ),
    ("api_webhook_delete", "delete", "/api/v1/webhooks/{rt_webhook}/", None, everyone(204, **ANON, **EDITORS)),
    ("api_agent_schedules", "get", AGENT_API + "/schedules/", None, everyone(200, **ANON, **MEMBERS)),
    (
        "api_agent_schedule_create",
        "post",
        AGENT_API + "/schedules/",
        {"name": "api-nightly", "cron": "0 3 * * *", "timezone": "Europe/Paris"},
        everyone(201, **ANON, **EDITORS),
    ),
    ("api_schedule", "get", "/api/v1/schedules/{rt_schedule}/", None, everyone(200, **ANON, **MEMBERS)),
    (
        "api_schedule_patch",
        "patch",
        "/api/v1/schedules/{rt_schedule}/",
        {"enabled": False},
        everyone(200, **ANON, **EDITORS),
    ),
    ("api_schedule_delete", "delete", "/api/v1/schedules/{rt_schedule}/", None, everyone(204, **ANON, **EDITORS)),
]

SIMPLE_SCRIPT = [{"answer": "Done with {input.ticket}."}]
APPROVAL_SCRIPT = [
    {"call": [{"tool": "ticket.close", "arguments": {"q": "{input.ticket}"}}]},
    {"answer": "Closed {input.ticket}."},
]


def runtime_world(world):
    """Return the tests' Runtime helper (tests/runtime/conftest.py) with the default catalog seeded."""
    from apps.catalog.services import catalog_seed_defaults
    from tests.runtime.conftest import Runtime

    catalog_seed_defaults()
    return Runtime(world)


def approval_agent(rt, name: str = "careful-bot"):
    """Create a high-risk agent whose first model call asks for a write tool, so a person must approve it."""
    from apps.tools.models import Tool

    if not Tool.objects.filter(team=rt.team, name="ticket.close").exists():
        rt.http_tool("ticket.close", "https://tickets.example.com/close/{q}", method="POST", side_effect="write")
    return rt.agent(name, risk_tier="high", tools=["ticket.close"], script=APPROVAL_SCRIPT)


def setup(world) -> dict:
    """Create in payments: an agent with a queued run, a webhook and a schedule; a run waiting for approval."""
    from apps.runtime.models import Approval
    from apps.runtime.services import schedule_create, webhook_create

    rt = runtime_world(world)
    agent = rt.agent("runner-bot", script=SIMPLE_SCRIPT)
    queued = rt.start(agent, {"ticket": "T-1"})
    waiting = rt.run(approval_agent(rt), {"ticket": "T-2"})
    webhook, _ = webhook_create(actor=rt.owner, agent=agent, name="crm")
    schedule = schedule_create(actor=rt.owner, agent=agent, name="nightly", cron="0 3 * * *")
    return {
        "rt_agent": agent.pk,
        "rt_run": queued.pk,
        "rt_waiting_run": waiting.pk,
        "rt_approval": Approval.objects.get(run=waiting).pk,
        "rt_webhook": webhook.pk,
        "rt_webhook_token": str(webhook.token),
        "rt_schedule": schedule.pk,
    }
