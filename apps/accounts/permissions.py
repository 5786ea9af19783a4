"""The one place that knows who may do what (STYLE.md 3).

Permissions are named `<area>.<action>`. A user holds a permission on a team through
- an organisation role: platform admins hold every permission everywhere; security auditors
  hold every read permission everywhere (and nothing else);
- a team role from a membership (owner > builder > operator > viewer);
- an object grant through django-guardian on the team, for grants beyond team roles.
A request made with an API token is further limited to the token's team and scopes.

Later areas add their permissions to PERMISSIONS and ROLE_PERMISSIONS here, nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.core.exceptions import AccessDenied

from .models import OrgRole, TeamRole, TokenScope


@dataclass(frozen=True)
class Permission:
    name: str
    description: str
    read_only: bool = False
    # The guardian codename granting it on one team object, where object grants make sense.
    grant_codename: str | None = None
    # Whether it needs the team to be given (False for organisation-wide permissions).
    team_scoped: bool = True
    # The token scope a request made with an API token needs for it.
    scope: str = TokenScope.READ
    # The guardian codename granting it on one object of another model (e.g. one agent).
    object_codename: str | None = None


PERMISSIONS: dict[str, Permission] = {
    p.name: p
    for p in [
        Permission(
            "team.view",
            "See the team, its members and its objects",
            read_only=True,
            grant_codename="accounts.view_team",
        ),
        Permission(
            "team.change",
            "Rename the team, edit its description and budget",
            grant_codename="accounts.change_team",
            scope=TokenScope.WRITE,
        ),
        Permission("team.create", "Create teams", team_scoped=False, scope=TokenScope.WRITE),
        Permission(
            "membership.manage",
            "Add, change and remove members",
            grant_codename="accounts.manage_members",
            scope=TokenScope.WRITE,
        ),
        Permission("token.create", "Create API tokens for oneself in the team", scope=TokenScope.WRITE),
        Permission(
            "token.manage",
            "Revoke any API token of the team",
            grant_codename="accounts.manage_tokens",
            scope=TokenScope.WRITE,
        ),
        Permission("audit.view", "Read and export the audit log", read_only=True, team_scoped=False),
        Permission("sso.manage", "Edit SSO group mappings", team_scoped=False, scope=TokenScope.WRITE),
        # Registry (issue #3): the model catalog is the organisation's decision; the rest is per team.
        Permission("catalog.manage", "Add and change providers and models", team_scoped=False, scope=TokenScope.WRITE),
        Permission(
            "registry.edit", "Create and edit tools, prompts and agents; publish versions", scope=TokenScope.WRITE
        ),
        Permission(
            "agent.promote",
            "Promote an agent's version to production, roll back, retire",
            scope=TokenScope.WRITE,
            object_codename="agents.promote_agent",
        ),
        Permission("secret.manage", "Create, rotate, delete and grant the team's secrets", scope=TokenScope.WRITE),
        Permission("run.start", "Run agents", scope=TokenScope.RUN, object_codename="agents.run_agent"),
        Permission(
            "run.approve",
            "Approve or reject tool calls waiting for a person",
            scope=TokenScope.RUN,
            object_codename="agents.approve_agent",
        ),
        # Runtime (issue #4): webhooks and schedules start runs without a person, so builders set them up.
        Permission(
            "trigger.manage", "Create, rotate and delete an agent's webhooks and schedules", scope=TokenScope.WRITE
        ),
        # Shared context spaces: builders create spaces and grant them to agents; operators edit their content.
        Permission("context.manage", "Create and delete context spaces; grant them to agents", scope=TokenScope.WRITE),
        Permission(
            "context.write",
            "Add and edit facts, documents, decisions and state in context spaces",
            scope=TokenScope.WRITE,
        ),
        # Observability (issue #5): every member reads dashboards and traces (team.view); alert
        # rules are set up by builders, and operators acknowledge what fires. Ingest needs a
        # token with the ingest scope, which builders and owners may make.
        Permission("alert.manage", "Create, change and delete alert rules", scope=TokenScope.WRITE),
        Permission("alert.acknowledge", "Acknowledge alert events", scope=TokenScope.WRITE),
        Permission("telemetry.ingest", "Send traces to /v1/traces", scope=TokenScope.INGEST),
    ]
}

_VIEWER = {"team.view", "token.create"}
_OPERATOR = _VIEWER | {"run.start", "run.approve", "context.write", "alert.acknowledge"}
_BUILDER = _OPERATOR | {"registry.edit", "trigger.manage", "context.manage", "alert.manage", "telemetry.ingest"}
_OWNER = _BUILDER | {"team.change", "membership.manage", "token.manage", "agent.promote", "secret.manage"}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    TeamRole.VIEWER: frozenset(_VIEWER),
    TeamRole.OPERATOR: frozenset(_OPERATOR),
    TeamRole.BUILDER: frozenset(_BUILDER),
    TeamRole.OWNER: frozenset(_OWNER),
}

# The token scopes each team role may put on its own tokens: a token never exceeds its maker.
ROLE_TOKEN_SCOPES: dict[str, frozenset[str]] = {
    TeamRole.VIEWER: frozenset({TokenScope.READ}),
    TeamRole.OPERATOR: frozenset({TokenScope.READ, TokenScope.RUN}),
    TeamRole.BUILDER: frozenset({TokenScope.READ, TokenScope.WRITE, TokenScope.RUN, TokenScope.INGEST}),
    TeamRole.OWNER: frozenset({TokenScope.READ, TokenScope.WRITE, TokenScope.RUN, TokenScope.INGEST}),
}

ROLE_ORDER = [TeamRole.OWNER, TeamRole.BUILDER, TeamRole.OPERATOR, TeamRole.VIEWER]


def request_token(user):
    """Return the API token the user authenticated with on this request, if any."""
    return getattr(user, "_fleetdeck_token", None)


def _team_id(team) -> int | None:
    if team is None:
        return None
    return team if isinstance(team, int) else team.pk


def role_in(user, team) -> str | None:
    """Return the user's team role in the team, or None (cached on the user for the request)."""
    if user is None or not user.is_authenticated:
        return None
    cache = getattr(user, "_fleetdeck_roles", None)
    if cache is None:
        cache = dict(user.memberships.values_list("team_id", "role"))
        user._fleetdeck_roles = cache
    return cache.get(_team_id(team))


def forget_roles(user) -> None:
    """Drop the per-request role cache after memberships changed."""
    if hasattr(user, "_fleetdeck_roles"):
        del user._fleetdeck_roles


def has_perm(user, perm: str, team=None, obj=None) -> bool:
    """Return whether the user holds the permission on the team (or organisation-wide).

    With obj (e.g. an agent), an object grant on that one object counts too.
    """
    spec = PERMISSIONS.get(perm)
    if spec is None:
        raise KeyError(f"Unknown permission {perm!r}: declare it in apps/accounts/permissions.py.")
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    token = request_token(user)
    if token is not None:
        if spec.scope not in token.scopes:
            return False
        if spec.team_scoped and _team_id(team) != token.team_id:
            return False
        if not spec.team_scoped and not spec.read_only:
            return False
    if user.is_platform_admin:
        return True
    if user.is_security_auditor and spec.read_only:
        return True
    if not spec.team_scoped or team is None:
        return False
    role = role_in(user, team)
    if role is not None and perm in ROLE_PERMISSIONS[role]:
        return True
    if spec.grant_codename and not isinstance(team, int) and user.has_perm(spec.grant_codename, team):
        return True
    if spec.object_codename and obj is not None and obj._meta.app_label == spec.object_codename.split(".")[0]:
        return user.has_perm(spec.object_codename, obj)
    return False


def require(user, perm: str, team=None, obj=None) -> None:
    """Raise AccessDenied unless the user holds the permission; services call this once per action."""
    if not has_perm(user, perm, team, obj):
        raise AccessDenied(perm=perm, team=team, obj=obj)


def allowed_token_scopes(user, team) -> frozenset[str]:
    """Return the scopes the user may put on a token for the team."""
    if user.is_platform_admin:
        return frozenset(TokenScope.values)
    role = role_in(user, team)
    scopes = ROLE_TOKEN_SCOPES.get(role, frozenset())
    if user.is_security_auditor:
        scopes = scopes | {TokenScope.READ}
    return scopes


def sees_every_team(user) -> bool:
    """Return whether the user's organisation role lets them read every team."""
    return bool(user and user.is_authenticated and (user.is_platform_admin or user.is_security_auditor))


def role_label(user, team) -> str:
    """Return the role to show beside the user's name for the team (team role, else org role)."""
    role = role_in(user, team) if team is not None else None
    if role:
        return TeamRole(role).label
    if user.is_superuser:
        return "Platform admin"
    if user.org_role:
        return OrgRole(user.org_role).label
    return "Object grant" if team is not None else "No role"
