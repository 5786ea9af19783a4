"""Single sign-on through mozilla-django-oidc, with roles mapped from the provider's groups claim.

At every SSO login the user's SSO-sourced memberships and organisation role are made to match the
groups claim exactly, so removing someone from a group at the provider removes the membership at
their next login. Group names map to roles in two ways (README, 'Single sign-on'):
- by convention: `<prefix>:<team-slug>:<role>`, `<prefix>:platform-admin`, `<prefix>:security-auditor`
  (prefix from FLEETDECK_OIDC_GROUP_PREFIX, default `fleetdeck`);
- by an SsoGroupMapping row, for group names the organisation already has.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.crypto import get_random_string
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from .auth import auth_login_failed, auth_login_succeeded
from .models import OrgRole, SsoGroupMapping, Team, TeamRole
from .permissions import ROLE_ORDER
from .services import user_sync_sso_roles

logger = logging.getLogger(__name__)

_ORG_GROUPS = {"platform-admin": OrgRole.PLATFORM_ADMIN, "security-auditor": OrgRole.SECURITY_AUDITOR}
_ORG_RANK = [OrgRole.PLATFORM_ADMIN, OrgRole.SECURITY_AUDITOR]


def roles_from_groups(groups) -> tuple[dict[Team, str], str]:
    """Return ({team: highest team role}, org role) that the group names grant."""
    if isinstance(groups, str):
        groups = [groups]
    groups = [g for g in (groups or []) if isinstance(g, str)]
    prefix = settings.FLEETDECK_OIDC_GROUP_PREFIX
    wanted_team_roles: dict[str, set[str]] = {}
    org_roles: set[str] = set()
    for group in groups:
        parts = group.split(":")
        if parts[0] != prefix:
            continue
        if len(parts) == 2 and parts[1] in _ORG_GROUPS:
            org_roles.add(_ORG_GROUPS[parts[1]])
        elif len(parts) == 3 and parts[2] in TeamRole.values:
            wanted_team_roles.setdefault(parts[1], set()).add(parts[2])
    teams_by_slug = {t.slug: t for t in Team.objects.filter(slug__in=wanted_team_roles)}
    team_roles: dict[Team, set[str]] = {teams_by_slug[s]: r for s, r in wanted_team_roles.items() if s in teams_by_slug}
    for mapping in SsoGroupMapping.objects.filter(group__in=groups).select_related("team"):
        if mapping.team_id and mapping.role in TeamRole.values:
            team_roles.setdefault(mapping.team, set()).add(mapping.role)
        elif not mapping.team_id and mapping.role in OrgRole.values:
            org_roles.add(mapping.role)
    best = {team: next(r for r in ROLE_ORDER if r in roles) for team, roles in team_roles.items()}
    org_role = next((r for r in _ORG_RANK if r in org_roles), OrgRole.NONE)
    return best, org_role


class FleetdeckOIDCBackend(OIDCAuthenticationBackend):
    """Find users by the provider's subject, check the ID token's audience, and sync roles."""

    def authenticate(self, request, **kwargs):
        try:
            return super().authenticate(request, **kwargs)
        except jwt.DecodeError:
            # A token response without a usable ID token: the provider's fault, a failed login.
            request.fleetdeck_sso_failure = "the provider's token response had no valid ID token"
            return None
        except requests.RequestException as exc:
            # A replayed or expired code, or a provider that is down: a failed login, not a 500.
            status = getattr(getattr(exc, "response", None), "status_code", None)
            reason = (
                f"the provider refused the sign-in (HTTP {status})" if status else "the provider could not be reached"
            )
            request.fleetdeck_sso_failure = reason
            logger.warning("SSO login failed: %s", reason)
            return None

    def get_payload_data(self, token, key):
        """Verify the ID token's signature, audience, issuer (when configured) and expiry."""
        payload = super().get_payload_data(token, key)
        expected_aud = getattr(settings, "OIDC_RP_EXPECTED_AUDIENCE", None) or self.OIDC_RP_CLIENT_ID
        issuer = getattr(settings, "OIDC_OP_ISSUER", None)
        try:
            jwt.decode(
                token,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                audience=expected_aud,
                issuer=issuer,
                options={"require": ["exp", "iat", "sub", "aud"]},
                leeway=60,  # tolerate a provider clock a little ahead or behind
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"The ID token was refused: {exc}.") from None
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        """Fetch userinfo and refuse it unless it is about the ID token's subject (OIDC Core 5.3.2)."""
        claims = super().get_userinfo(access_token, id_token, payload)
        if claims.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo response is about another subject than the ID token.")
        return claims

    def verify_claims(self, claims) -> bool:
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(sso_subject=claims["sub"])

    @staticmethod
    def _claim(claims, name: str, default: str = "") -> str:
        """Return a string claim, or the default when the provider sent it null or not a string."""
        value = claims.get(name)
        return value[:150] if isinstance(value, str) else default

    def _username_for(self, claims) -> str:
        base = (self._claim(claims, "preferred_username") or self._claim(claims, "email") or str(claims["sub"]))[:140]
        username = base
        while self.UserModel.objects.filter(username=username).exists():
            username = f"{base}-{get_random_string(4).lower()}"
        return username

    def create_user(self, claims):
        user = self.UserModel(
            username=self._username_for(claims),
            sso_subject=claims["sub"],
            email=self._claim(claims, "email"),
            first_name=self._claim(claims, "given_name"),
            last_name=self._claim(claims, "family_name"),
            display_name=self._claim(claims, "name"),
        )
        user.set_unusable_password()
        user.save()
        from apps.audit.services import audit_record

        audit_record(
            actor="system:sso", action="user.create", obj=user, after={"username": user.username, "source": "sso"}
        )
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        fields = {
            "email": self._claim(claims, "email", user.email),
            "display_name": self._claim(claims, "name", user.display_name),
            "first_name": self._claim(claims, "given_name", user.first_name),
            "last_name": self._claim(claims, "family_name", user.last_name),
        }
        changed = [k for k, v in fields.items() if getattr(user, k) != v]
        for key in changed:
            setattr(user, key, fields[key])
        if changed:
            user.save(update_fields=changed)
        if not user.is_active:
            return user  # refused by the callback view; a disabled account's roles are left as they are
        team_roles, org_role = roles_from_groups(claims.get(settings.FLEETDECK_OIDC_GROUPS_CLAIM, []))
        user_sync_sso_roles(user=user, team_roles=team_roles, org_role=org_role)
        return user


class SsoAuthenticateView(OIDCAuthenticationRequestView):
    """Start an SSO login; answer 404 when SSO is not configured rather than failing loudly."""

    def __init__(self, *args, **kwargs):
        if not settings.OIDC_ENABLED:
            self.disabled = True
            return
        self.disabled = False
        super().__init__(*args, **kwargs)

    def get(self, request):
        if self.disabled:
            raise Http404("Single sign-on is not configured on this server.")
        return super().get(request)


class AuditedCallbackView(OIDCAuthenticationCallbackView):
    """Finish an SSO login; audit success and failure, and answer bad callbacks with a clear 400."""

    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured on this server.")
        try:
            return super().get(request)
        except SuspiciousOperation as exc:
            auth_login_failed(username="", method="sso", reason=str(exc)[:200])
            return render(
                request,
                "accounts/sso_error.html",
                {"reason": "The sign-in response did not match a sign-in started here, or its token was not valid."},
                status=400,
            )

    def login_success(self):
        response = super().login_success()
        auth_login_succeeded(user=self.user, method="sso")
        return response

    def login_failure(self):
        reason = self.request.GET.get("error_description") or self.request.GET.get("error") or "sign-in not completed"
        backend_failure = getattr(self.request, "fleetdeck_sso_failure", None)
        auth_login_failed(username="", method="sso", reason=(backend_failure or reason)[:200])
        return super().login_failure()


def provider_logout_url(request) -> str:
    """Return the provider's end-session URL so signing out here also signs out there."""
    params = {"post_logout_redirect_uri": request.build_absolute_uri(reverse("accounts:login"))}
    id_token = request.session.get("oidc_id_token")
    if id_token:
        params["id_token_hint"] = id_token
    if getattr(settings, "OIDC_RP_CLIENT_ID", None):
        params["client_id"] = settings.OIDC_RP_CLIENT_ID
    return f"{settings.OIDC_OP_LOGOUT_URL}?{urlencode(params)}"
