"""Sign-in and sign-out, teams and members, API tokens: validate, call one service, render."""

from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model, login, logout
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from apps.core.exceptions import ServiceError
from apps.core.validation import add_service_error
from apps.core.views import login_required_view

from . import selectors, services
from .auth import auth_login_failed, auth_login_succeeded, auth_logout, login_throttled
from .backends import password_login_mode
from .forms import (
    GrantForm,
    LoginForm,
    MembershipAddForm,
    MembershipRoleForm,
    TeamCreateForm,
    TeamForm,
    TokenCreateForm,
)
from .permissions import allowed_token_scopes, has_perm
from .teams import current_team, current_team_set


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("core:home")


@sensitive_post_parameters("password")
@require_http_methods(["GET", "POST"])
def login_view(request):
    mode = password_login_mode()
    form = LoginForm(request.POST or None)
    status = 200
    if request.GET.get("sso") == "failed":
        messages.error(
            request, "Single sign-on did not complete. Try again, or ask your administrator about your access."
        )
    if request.method == "POST":
        if mode == "off":
            form.add_error(None, "Password sign-in is switched off here: use single sign-on.")
            status = 403
        elif form.is_valid():
            username = form.cleaned_data["username"]
            if login_throttled(username=username):
                auth_login_failed(username=username, method="password", reason="throttled")
                form.add_error(None, "Too many failed sign-ins. Wait 15 minutes and try again, or use single sign-on.")
                status = 429
            else:
                user = authenticate(request, username=username, password=form.cleaned_data["password"])
                if user is None:
                    auth_login_failed(
                        username=username, method="password", reason="bad credentials or password login not allowed"
                    )
                    form.add_error(None, "Wrong username or password, or this account must use single sign-on.")
                    status = 400
                else:
                    login(request, user)
                    auth_login_succeeded(user=user, method="password")
                    return redirect(_safe_next(request))
        else:
            status = 400
    context = {"form": form, "password_mode": mode, "next": request.GET.get("next", "")}
    return render(request, "accounts/login.html", context, status=status)


@require_POST
def logout_view(request):
    user = request.user
    auth_logout(user=user)
    if user.is_authenticated and request.session.get("oidc_id_token"):
        from django.conf import settings

        from .oidc import provider_logout_url

        url = provider_logout_url(request) if settings.OIDC_OP_LOGOUT_URL else None
        logout(request)
        return redirect(url or "accounts:login")
    logout(request)
    return redirect("accounts:login")


@require_POST
@login_required_view
def team_switch_view(request):
    team = selectors.team_get(user=request.user, slug=request.POST.get("team", ""))
    current_team_set(request, team)
    return redirect(_safe_next(request))


@login_required_view
def team_list_view(request):
    form = TeamCreateForm(request.POST or None) if request.method == "POST" else TeamCreateForm()
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(actor=request.user, **form.cleaned_data)
            messages.success(request, f"Team {team.name} created.")
            return redirect("accounts:team_detail", slug=team.slug)
        except ServiceError as exc:
            add_service_error(form, exc)
    teams = selectors.team_list(user=request.user)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "accounts/team_list.html",
        {"teams": teams, "form": form, "can_create": has_perm(request.user, "team.create")},
        status=status,
    )


@login_required_view
def team_detail_view(request, slug: str):
    team = selectors.team_get(user=request.user, slug=slug)
    team_form = TeamForm(
        initial={"name": team.name, "description": team.description, "monthly_budget": team.monthly_budget}
    )
    add_form = MembershipAddForm()
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "update":
                team_form = TeamForm(request.POST)
                if team_form.is_valid():
                    services.team_update(actor=request.user, team=team, **team_form.cleaned_data)
                    messages.success(request, "Team saved.")
                    return redirect("accounts:team_detail", slug=team.slug)
            elif action == "add_member":
                add_form = MembershipAddForm(request.POST)
                if add_form.is_valid():
                    user = (
                        get_user_model()
                        .objects.filter(username=add_form.cleaned_data["username"], is_active=True)
                        .first()
                    )
                    if user is None:
                        add_form.add_error(
                            "username", "No active user with this username. They must sign in once first."
                        )
                    else:
                        services.membership_add(
                            actor=request.user, team=team, user=user, role=add_form.cleaned_data["role"]
                        )
                        messages.success(request, f"{user.username} added as {add_form.cleaned_data['role']}.")
                        return redirect("accounts:team_detail", slug=team.slug)
            elif action in {"add_grant", "remove_grant"}:
                grant_form = GrantForm(request.POST)
                if not grant_form.is_valid():
                    raise ServiceError("Give a username and a permission to grant.")
                user = (
                    get_user_model()
                    .objects.filter(username=grant_form.cleaned_data["username"], is_active=True)
                    .first()
                )
                if user is None:
                    raise ServiceError("No active user with this username.")
                service = services.team_grant_add if action == "add_grant" else services.team_grant_remove
                service(actor=request.user, team=team, user=user, perm=grant_form.cleaned_data["permission"])
                messages.success(request, "Grant saved." if action == "add_grant" else "Grant removed.")
                return redirect("accounts:team_detail", slug=team.slug)
            elif action in {"change_role", "remove_member"}:
                membership = selectors.membership_get(user=request.user, pk=_int(request.POST.get("membership")))
                if membership.team_id != team.pk:
                    raise ServiceError("That membership belongs to another team.")
                if action == "remove_member":
                    services.membership_remove(actor=request.user, membership=membership)
                    messages.success(request, f"{membership.user.username} removed.")
                else:
                    role_form = MembershipRoleForm(request.POST)
                    if not role_form.is_valid():
                        raise ServiceError("Pick a role: owner, builder, operator or viewer.", field="role")
                    services.membership_change_role(
                        actor=request.user, membership=membership, role=role_form.cleaned_data["role"]
                    )
                    messages.success(request, f"{membership.user.username} is now {membership.role}.")
                return redirect("accounts:team_detail", slug=team.slug)
            else:
                messages.error(request, "Unknown action.")
        except ServiceError as exc:
            messages.error(request, exc.message)
        status = 400
    context = {
        "team": team,
        "memberships": selectors.membership_list(user=request.user, team=team),
        "team_form": team_form,
        "add_form": add_form,
        "can_change": has_perm(request.user, "team.change", team),
        "can_manage_members": has_perm(request.user, "membership.manage", team),
        "grants": selectors.team_grant_list(user=request.user, team=team),
        "grant_form": GrantForm(),
    }
    return render(request, "accounts/team_detail.html", context, status=status)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@login_required_view
def token_list_view(request):
    team, _ = current_team(request)
    form = TokenCreateForm(request.POST or None) if request.method == "POST" else TokenCreateForm()
    created = None
    status = 200
    if request.method == "POST":
        if team is None:
            form.add_error(None, "You are not in a team yet: a token acts within one team.")
        elif form.is_valid():
            try:
                token, secret = services.token_create(actor=request.user, team=team, **form.cleaned_data)
                created = {"token": token, "secret": secret}
                form = TokenCreateForm()
            except ServiceError as exc:
                add_service_error(form, exc)
        status = 200 if created else 400
    context = {
        "form": form,
        "created": created,
        "tokens": selectors.token_list(user=request.user),
        "allowed_scopes": sorted(allowed_token_scopes(request.user, team)) if team else [],
    }
    return render(request, "accounts/apitoken_list.html", context, status=status)


@require_POST
@login_required_view
def token_revoke_view(request, pk: int):
    token = selectors.token_get(user=request.user, pk=pk)
    try:
        services.token_revoke(actor=request.user, token=token)
        messages.success(request, f"Token {token.name} revoked: it no longer works.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("accounts:apitoken_list")
