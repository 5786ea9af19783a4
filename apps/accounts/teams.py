"""The team the user is working in, kept in the session and chosen with the team switcher."""

from .selectors import team_list

SESSION_KEY = "fleetdeck_team"


def current_team(request):
    """Return (current team or None, the teams the user may switch to)."""
    cached = getattr(request, "_fleetdeck_current_team", None)
    if cached is not None:
        return cached
    teams = list(team_list(user=request.user))
    wanted = request.session.get(SESSION_KEY)
    team = next((t for t in teams if t.slug == wanted), None) or (teams[0] if teams else None)
    request._fleetdeck_current_team = (team, teams)
    return team, teams


def current_team_set(request, team) -> None:
    request.session[SESSION_KEY] = team.slug
    request._fleetdeck_current_team = None
