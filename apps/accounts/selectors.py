"""Reads filtered by what the actor may see: another team's object is simply not there (404)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from guardian.shortcuts import get_objects_for_user

from .models import ApiToken, Membership, Team
from .permissions import has_perm, request_token, sees_every_team


def team_list(*, user) -> QuerySet[Team]:
    """Return the teams the user may see: every team for admins and auditors, else members and grants."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Team.objects.none()
    if sees_every_team(user):
        teams = Team.objects.all()
    else:
        granted = get_objects_for_user(user, "accounts.view_team", klass=Team, accept_global_perms=False)
        teams = Team.objects.filter(pk__in=user.memberships.values("team_id")) | Team.objects.filter(
            pk__in=granted.values("pk")
        )
    token = request_token(user)
    if token is not None:
        teams = teams.filter(pk=token.team_id)
    return teams.distinct().order_by("name")


def team_get(*, user, slug: str) -> Team:
    """Return the team if the user may see it, else raise Http404."""
    try:
        return team_list(user=user).get(slug=slug)
    except Team.DoesNotExist:
        raise Http404("No such team.") from None


def membership_list(*, user, team: Team | None = None) -> QuerySet[Membership]:
    """Return memberships of the teams the user may see (of one team if given)."""
    qs = Membership.objects.filter(team__in=team_list(user=user)).select_related("user", "team")
    if team is not None:
        qs = qs.filter(team=team)
    return qs.order_by("team__name", "user__username")


def membership_get(*, user, pk: int) -> Membership:
    try:
        return membership_list(user=user).get(pk=pk)
    except Membership.DoesNotExist:
        raise Http404("No such membership.") from None


def token_list(*, user, team: Team | None = None) -> QuerySet[ApiToken]:
    """Return the user's own tokens, plus every token of the teams where they may manage tokens."""
    teams = team_list(user=user)
    managed = [t.pk for t in teams if has_perm(user, "token.manage", t)]
    qs = ApiToken.objects.filter(team__in=teams).filter(user=user) | ApiToken.objects.filter(team_id__in=managed)
    if team is not None:
        qs = qs.filter(team=team)
    return qs.select_related("user", "team", "revoked_by").distinct().order_by("-created_at")


def token_get(*, user, pk: int) -> ApiToken:
    try:
        return token_list(user=user).get(pk=pk)
    except ApiToken.DoesNotExist:
        raise Http404("No such token.") from None


def team_grant_list(*, user, team: Team) -> list[dict]:
    """Return the object grants on a team the user may see: [{user, permission}]."""
    from guardian.shortcuts import get_users_with_perms

    from .permissions import PERMISSIONS

    by_codename = {p.grant_codename.split(".")[1]: p.name for p in PERMISSIONS.values() if p.grant_codename}
    team = team_get(user=user, slug=team.slug)
    grants = get_users_with_perms(team, attach_perms=True, with_group_users=False, with_superusers=False)
    return sorted(
        (
            {"user": u.username, "permission": by_codename[c]}
            for u, codes in grants.items()
            for c in codes
            if c in by_codename
        ),
        key=lambda g: (g["user"], g["permission"]),
    )
