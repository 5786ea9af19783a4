"""Writes for accounts: each checks permission once, changes, and audits in one transaction."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from apps.audit.services import audit_record, snapshot
from apps.core.exceptions import ServiceError
from apps.core.validation import full_clean_or_error

from .models import ApiToken, Membership, OrgRole, Source, Team, TeamRole, TokenScope, User
from .permissions import PERMISSIONS, allowed_token_scopes, forget_roles, require
from .tokens import token_generate

TEAM_FIELDS = ["slug", "name", "description", "monthly_budget"]
TOKEN_MAX_DAYS = 366


def team_create(*, actor, slug: str, name: str, description: str = "", monthly_budget: Decimal | int = 0) -> Team:
    """Create a team (platform admins only)."""
    require(actor, "team.create")
    team = Team(slug=slug, name=name, description=description, monthly_budget=monthly_budget)
    full_clean_or_error(team)
    with transaction.atomic():
        team.save()
        audit_record(actor=actor, action="team.create", obj=team, team=team, after=snapshot(team, TEAM_FIELDS))
    return team


def team_update(*, actor, team: Team, **changes) -> Team:
    """Change a team's name, description or monthly budget."""
    require(actor, "team.change", team)
    unknown = set(changes) - {"name", "description", "monthly_budget"}
    if unknown:
        raise ServiceError(f"These fields cannot be changed here: {', '.join(sorted(unknown))}.")
    before = snapshot(team, TEAM_FIELDS)
    for key, value in changes.items():
        setattr(team, key, value)
    full_clean_or_error(team)
    with transaction.atomic():
        team.save()
        audit_record(
            actor=actor, action="team.update", obj=team, team=team, before=before, after=snapshot(team, TEAM_FIELDS)
        )
    return team


def _check_role(role: str) -> None:
    if role not in TeamRole.values:
        raise ServiceError(f"'{role}' is not a team role: choose one of {', '.join(TeamRole.values)}.", field="role")


def membership_add(*, actor, team: Team, user: User, role: str, source: str = Source.LOCAL) -> Membership:
    """Add a user to a team with a role."""
    require(actor, "membership.manage", team)
    return _membership_add(actor=actor, team=team, user=user, role=role, source=source)


def _membership_add(*, actor, team, user, role, source) -> Membership:
    _check_role(role)
    try:
        with transaction.atomic():
            membership = Membership.objects.create(team=team, user=user, role=role, source=source)
            audit_record(
                actor=actor,
                action="membership.add",
                obj=membership,
                team=team,
                after={"user": user.username, "role": role, "source": source},
            )
    except IntegrityError:
        raise ServiceError(f"{user.username} is already a member of {team.name}.", field="user") from None
    forget_roles(user)
    return membership


def _owners_left(team: Team, *, without: Membership) -> int:
    return team.memberships.filter(role=TeamRole.OWNER).exclude(pk=without.pk).count()


def membership_change_role(*, actor, membership: Membership, role: str) -> Membership:
    """Change a member's role; a team keeps at least one owner."""
    require(actor, "membership.manage", membership.team)
    return _membership_change_role(actor=actor, membership=membership, role=role)


def _membership_change_role(*, actor, membership, role, allow_no_owner: bool = False) -> Membership:
    _check_role(role)
    before = {"role": membership.role}
    if (
        not allow_no_owner
        and membership.role == TeamRole.OWNER
        and role != TeamRole.OWNER
        and not _owners_left(membership.team, without=membership)
    ):
        raise ServiceError("A team needs at least one owner: make someone else owner first.", field="role")
    with transaction.atomic():
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            actor=actor,
            action="membership.change_role",
            obj=membership,
            team=membership.team,
            before=before,
            after={"role": role},
        )
    forget_roles(membership.user)
    return membership


def membership_remove(*, actor, membership: Membership) -> None:
    """Remove a member from a team; a team keeps at least one owner."""
    require(actor, "membership.manage", membership.team)
    _membership_remove(actor=actor, membership=membership)


def _membership_remove(*, actor, membership, allow_no_owner: bool = False) -> None:
    if (
        not allow_no_owner
        and membership.role == TeamRole.OWNER
        and not _owners_left(membership.team, without=membership)
    ):
        raise ServiceError("A team needs at least one owner: make someone else owner before removing this one.")
    team, user = membership.team, membership.user
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="membership.remove",
            obj=membership,
            team=team,
            before={"user": user.username, "role": membership.role, "source": membership.source},
        )
        membership.delete()
    forget_roles(user)


def user_sync_sso_roles(*, user: User, team_roles: dict[Team, str], org_role: str) -> dict:
    """Make the user's SSO-sourced memberships and org role match the provider's groups exactly.

    Memberships granted in Fleetdeck (source local) are left alone; SSO ones not in the claims go.
    Returns what changed. Acts as the system: the provider, not a person, is the source.
    """
    actor = "system:sso"
    changes = {"added": [], "changed": [], "removed": [], "org_role": None}
    with transaction.atomic():
        current = {m.team_id: m for m in user.memberships.select_related("team")}
        wanted = {team.pk: (team, role) for team, role in team_roles.items()}
        for team_id, (team, role) in wanted.items():
            membership = current.get(team_id)
            if membership is None:
                _membership_add(actor=actor, team=team, user=user, role=role, source=Source.SSO)
                changes["added"].append(f"{team.slug}:{role}")
            elif membership.source == Source.SSO and membership.role != role:
                _membership_change_role(actor=actor, membership=membership, role=role, allow_no_owner=True)
                changes["changed"].append(f"{team.slug}:{role}")
        for team_id, membership in current.items():
            if membership.source == Source.SSO and team_id not in wanted:
                _membership_remove(actor=actor, membership=membership, allow_no_owner=True)
                changes["removed"].append(membership.team.slug)
        if user.org_role_source == Source.SSO or (org_role and not user.org_role):
            if user.org_role != org_role:
                before = {"org_role": user.org_role}
                user.org_role = org_role
                user.org_role_source = Source.SSO
                user.save(update_fields=["org_role", "org_role_source"])
                audit_record(
                    actor=actor, action="user.org_role_sync", obj=user, before=before, after={"org_role": org_role}
                )
                changes["org_role"] = org_role
    forget_roles(user)
    return changes


def user_set_org_role(*, actor, user: User, org_role: str) -> User:
    """Give a user an organisation role (platform admins only)."""
    require(actor, "team.create")
    if org_role not in OrgRole.values:
        raise ServiceError(f"'{org_role}' is not an organisation role.", field="org_role")
    before = {"org_role": user.org_role}
    with transaction.atomic():
        user.org_role = org_role
        user.org_role_source = Source.LOCAL
        user.save(update_fields=["org_role", "org_role_source"])
        audit_record(actor=actor, action="user.set_org_role", obj=user, before=before, after={"org_role": org_role})
    return user


def token_create(
    *, actor, team: Team, name: str, scopes: list[str], expires_at: datetime | None = None, user: User | None = None
) -> tuple[ApiToken, str]:
    """Create an API token for the actor in the team; return it and the secret, shown only once."""
    require(actor, "token.create", team)
    owner = user or actor
    if owner.pk != actor.pk:
        raise ServiceError("Tokens are created by the person who will use them: sign in as that user.", field="user")
    name = (name or "").strip()
    if not name:
        raise ServiceError("Give the token a name that says where it is used, e.g. 'ci-deploy'.", field="name")
    if len(name) > 100:
        raise ServiceError("The token name is too long: use at most 100 characters.", field="name")
    scopes = sorted(set(scopes or []))
    if not scopes:
        raise ServiceError(f"Pick at least one scope: {', '.join(TokenScope.values)}.", field="scopes")
    unknown = [s for s in scopes if s not in TokenScope.values]
    if unknown:
        raise ServiceError(f"Unknown scope {', '.join(unknown)}: use {', '.join(TokenScope.values)}.", field="scopes")
    allowed = allowed_token_scopes(actor, team)
    beyond = [s for s in scopes if s not in allowed]
    if beyond:
        raise ServiceError(
            f"Your role in {team.name} does not allow the scope {', '.join(beyond)} "
            f"(allowed: {', '.join(sorted(allowed)) or 'none'}).",
            field="scopes",
        )
    now = timezone.now()
    if expires_at is not None:
        if expires_at <= now:
            raise ServiceError(
                "The expiry date is in the past: pick a future date or leave it empty.", field="expires_at"
            )
        if (expires_at - now).days > TOKEN_MAX_DAYS:
            raise ServiceError(
                f"Tokens live at most {TOKEN_MAX_DAYS} days: pick an earlier expiry.", field="expires_at"
            )
    secret, prefix, digest = token_generate()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=owner, team=team, name=name, prefix=prefix, token_hash=digest, scopes=scopes, expires_at=expires_at
        )
        audit_record(
            actor=actor,
            action="token.create",
            obj=token,
            team=team,
            after={"name": name, "prefix": prefix, "scopes": scopes, "expires_at": expires_at, "user": owner.username},
        )
    return token, secret


def token_revoke(*, actor, token: ApiToken) -> ApiToken:
    """Revoke a token: its own user may, and so may whoever manages the team's tokens."""
    require(actor, "token.create" if token.user_id == actor.pk else "token.manage", token.team, obj=token)
    if token.revoked_at:
        raise ServiceError("This token is already revoked.")
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.revoked_by = actor
        token.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(
            actor=actor, action="token.revoke", obj=token, team=token.team, after={"revoked_at": token.revoked_at}
        )
    return token


def token_touch(*, token: ApiToken) -> None:
    """Record that a token was used, at most once a minute (not audited: usage, not a change)."""
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def _grantable(perm: str) -> str:
    spec = PERMISSIONS.get(perm)
    if spec is None or not spec.grant_codename:
        names = ", ".join(p.name for p in PERMISSIONS.values() if p.grant_codename)
        raise ServiceError(f"'{perm}' cannot be granted on a team: use one of {names}.", field="permission")
    return spec.grant_codename


def team_grant_add(*, actor, team: Team, user: User, perm: str) -> None:
    """Grant one permission on the team to a user outside its roles (a django-guardian object grant)."""
    _team_grant_change(actor=actor, team=team, user=user, perm=perm, grant=True)


def team_grant_remove(*, actor, team: Team, user: User, perm: str) -> None:
    """Take back an object grant on the team."""
    _team_grant_change(actor=actor, team=team, user=user, perm=perm, grant=False)


def _team_grant_change(*, actor, team: Team, user: User, perm: str, grant: bool) -> None:
    require(actor, "membership.manage", team)
    codename = _grantable(perm)
    detail = {"user": user.username, "permission": perm}
    with transaction.atomic():
        (assign_perm if grant else remove_perm)(codename, user, team)
        audit_record(
            actor=actor,
            action="grant.add" if grant else "grant.remove",
            obj=team,
            team=team,
            after=detail if grant else None,
            before=None if grant else detail,
        )
    forget_roles(user)
