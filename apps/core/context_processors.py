"""What every page's shell needs: the current team, the user's role there, the navigation."""

from django.conf import settings

NAV = [
    (
        "Build",
        [("Studio", "studio"), ("Agents", "agents"), ("Tools", "tools"), ("Prompts", "prompts"), ("Models", "models")],
    ),
    ("Run", [("Runs", "runs"), ("Approvals", "approvals"), ("Context", "context"), ("Workflows", "workflows")]),
    ("Observe", [("Observability", "observability"), ("Evaluations", "evals"), ("Gateway", "gateway")]),
    ("Govern", [("Inventory", "inventory"), ("Policies", "policies"), ("Secrets", "secrets")]),
]


def shell(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"oidc_enabled": settings.OIDC_ENABLED}
    from apps.accounts.permissions import has_perm, role_label
    from apps.accounts.teams import current_team

    team, teams = current_team(request)
    return {
        "oidc_enabled": settings.OIDC_ENABLED,
        "nav_sections": NAV,
        "current_team": team,
        "visible_teams": teams,
        "current_role": role_label(user, team),
        "can_view_audit": has_perm(user, "audit.view"),
    }
