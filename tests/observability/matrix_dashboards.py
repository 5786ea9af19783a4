"""Permission-matrix rows for observability dashboards (see tests/matrix.py).

Every member, the auditor and the admin read dashboards (team.view). An outsider (a member of
support only) gets their own team's fleet and costs, and a 404 for payments' agent or team.
"""

from tests.matrix import everyone

MEMBERS = dict(outsider=404)
AGENT = "/observability/agents/{dash_agent}/"

PAGES = [
    ("fleet_dashboard", "get", "/observability/", None, everyone(200)),
    ("fleet_dashboard_all", "get", "/observability/?team=all&range=30d", None, everyone(200)),
    ("fleet_dashboard_payments", "get", "/observability/?team=payments", None, everyone(200, **MEMBERS)),
    ("fleet_dashboard_csv", "get", "/observability/?format=csv&chart=tools", None, everyone(200)),
    ("fleet_dashboard_bad_range", "get", "/observability/?range=forever", None, everyone(400)),
    ("team_costs", "get", "/observability/costs/", None, everyone(200)),
    ("team_costs_payments", "get", "/observability/costs/?team=payments&range=7d", None, everyone(200, **MEMBERS)),
    ("team_costs_csv", "get", "/observability/costs/?format=csv&chart=by_day", None, everyone(200)),
    ("agent_dashboard", "get", AGENT, None, everyone(200, **MEMBERS)),
    ("agent_dashboard_csv", "get", AGENT + "?format=csv&chart=errors", None, everyone(200, **MEMBERS)),
]
API: list = []


def setup(world) -> dict:
    """Create in payments an agent with one finished run, so its dashboard has numbers."""
    from tests.runtime.matrix import SIMPLE_SCRIPT, runtime_world

    rt = runtime_world(world)
    agent = rt.agent("dash-bot", script=SIMPLE_SCRIPT)
    rt.run(agent, {"ticket": "T-1"})
    return {"dash_agent": agent.pk}
