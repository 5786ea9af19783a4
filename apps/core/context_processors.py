"""What every page's shell needs: the current team, the user's role there, the navigation."""

from django.conf import settings
from django.urls import NoReverseMatch, reverse

# (label, area, URL name of the built page). Until an area's page exists, its placeholder says
# what will live there; once the URL name resolves, the navigation links the real page.
NAV = [
    (
        "Build",
        [
            ("Studio", "studio", "agents:studio"),
            ("Agents", "agents", "agents:agent_list"),
            ("Tools", "tools", "tools:tool_list"),
            ("Prompts", "prompts", "prompts:prompt_list"),
            ("Models", "models", "catalog:model_list"),
        ],
    ),
    (
        "Run",
        [
            ("Runs", "runs", "runtime:run_list"),
            ("Approvals", "approvals", "runtime:approval_list"),
            ("Context", "context", "context:space_list"),
            ("Workflows", "workflows", None),
        ],
    ),
    (
        "Observe",
        [
            ("Fleet dashboard", "observability", "observability:fleet_dashboard"),
            ("Team costs", "observability", "observability:team_costs"),
            ("Traces", "observability", "observability:trace_list"),
            ("Alerts", "observability", "observability:alert_event_list"),
            ("Evaluations", "evals", None),
            ("Gateway", "gateway", None),
        ],
    ),
    (
        "Govern",
        [
            ("Inventory", "inventory", "agents:inventory"),
            ("Policies", "policies", None),
            ("Secrets", "secrets", "governance:secret_list"),
        ],
    ),
]


def _href(area: str, url_name: str | None) -> str:
    if url_name:
        try:
            return reverse(url_name)
        except NoReverseMatch:
            pass
    return reverse("core:area", args=[area])


def navigation() -> list[tuple[str, list[tuple[str, str]]]]:
    """Return the navigation sections as (title, [(label, href)])."""
    return [(title, [(label, _href(area, name)) for label, area, name in items]) for title, items in NAV]


def shell(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"oidc_enabled": settings.OIDC_ENABLED}
    from apps.accounts.permissions import has_perm, role_label
    from apps.accounts.teams import current_team

    team, teams = current_team(request)
    return {
        "oidc_enabled": settings.OIDC_ENABLED,
        "nav_sections": navigation(),
        "current_team": team,
        "visible_teams": teams,
        "current_role": role_label(user, team),
        "can_view_audit": has_perm(user, "audit.view"),
    }
