"""Secret pages: metadata only. A value is typed into a password field, stored encrypted, never shown."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST

from apps.accounts.permissions import has_perm, require
from apps.accounts.teams import current_team
from apps.core.exceptions import ServiceError
from apps.core.validation import add_service_error
from apps.core.views import login_required_view

from . import selectors, services
from .forms import SecretCreateForm, SecretDescriptionForm, SecretGrantForm, SecretValueForm


def _with_used_by(secrets) -> list:
    """Return the secrets with `used_by` (labels of their grantees) attached, in one query per grantee type."""
    secrets = list(secrets)
    labels = selectors.grantee_labels(g for s in secrets for g in s.grants.all())
    for s in secrets:
        s.used_by = sorted(labels[(g.grantee_type, g.grantee_id)] for g in s.grants.all())
    return secrets


@login_required_view
def secret_list_view(request):
    team, _ = current_team(request)
    context = {
        "team": team,
        "secrets": _with_used_by(selectors.secret_list(user=request.user, team=team)) if team else [],
        "org_secrets": (
            _with_used_by(selectors.secret_list(user=request.user, scope="org"))
            if selectors.sees_org_secrets(request.user)
            else None
        ),
        "can_manage": team is not None and has_perm(request.user, "secret.manage", team),
        "can_manage_org": has_perm(request.user, "secret.manage", None),
    }
    return render(request, "governance/secret_list.html", context)


@sensitive_post_parameters("value")
@login_required_view
@sensitive_variables("form", "data")
def secret_create_view(request):
    team, _ = current_team(request)
    team_allowed = team is not None and has_perm(request.user, "secret.manage", team)
    org_allowed = has_perm(request.user, "secret.manage", None)
    if not (team_allowed or org_allowed):
        require(request.user, "secret.manage", team)  # refuse (403, audited)
    form = SecretCreateForm(
        request.POST or None, team=team if team_allowed else None, org_allowed=org_allowed, initial={"scope": "team"}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            secret = services.secret_create(
                actor=request.user,
                team=None if data["scope"] == "org" else team,
                name=data["name"],
                value=data["value"],
                description=data["description"],
            )
            messages.success(request, f"Secret {secret.name} created. Its value is stored encrypted and never shown.")
            return redirect("governance:secret_detail", pk=secret.pk)
        except ServiceError as exc:
            add_service_error(form, exc)
    status = 400 if request.method == "POST" else 200
    return render(request, "governance/secret_form.html", {"form": form, "team": team}, status=status)


def _render_detail(request, secret, *, status: int = 200, **forms):
    can_manage = has_perm(request.user, "secret.manage", secret.team)
    grants = list(selectors.grant_list(user=request.user, secret=secret))
    labels = selectors.grantee_labels(grants)
    for grant in grants:
        grant.label = labels[(grant.grantee_type, grant.grantee_id)]
    candidates = selectors.grantee_candidates(user=request.user, secret=secret) if can_manage else []
    context = {
        "secret": secret,
        "grants": grants,
        "can_manage": can_manage,
        "value_form": forms.get("value_form") or SecretValueForm(),
        "description_form": forms.get("description_form")
        or SecretDescriptionForm(initial={"description": secret.description}),
        "grant_form": forms.get("grant_form") or SecretGrantForm(candidates=candidates),
        "error": forms.get("error"),
    }
    return render(request, "governance/secret_detail.html", context, status=status)


@login_required_view
def secret_detail_view(request, pk: int):
    return _render_detail(request, selectors.secret_get(user=request.user, pk=pk))


@require_POST
@login_required_view
def secret_update_view(request, pk: int):
    secret = selectors.secret_get(user=request.user, pk=pk)
    form = SecretDescriptionForm(request.POST)
    if form.is_valid():
        try:
            services.secret_update(actor=request.user, secret=secret, description=form.cleaned_data["description"])
            messages.success(request, "Description saved.")
            return redirect("governance:secret_detail", pk=secret.pk)
        except ServiceError as exc:
            add_service_error(form, exc)
    return _render_detail(request, secret, status=400, description_form=form)


@sensitive_post_parameters("value")
@require_POST
@login_required_view
@sensitive_variables("form")
def secret_set_value_view(request, pk: int):
    secret = selectors.secret_get(user=request.user, pk=pk)
    form = SecretValueForm(request.POST)
    if form.is_valid():
        try:
            services.secret_set_value(actor=request.user, secret=secret, value=form.cleaned_data["value"])
            messages.success(request, f"New value of {secret.name} stored. Grants are unchanged.")
            return redirect("governance:secret_detail", pk=secret.pk)
        except ServiceError as exc:
            add_service_error(form, exc)
    return _render_detail(request, secret, status=400, value_form=form)


@require_POST
@login_required_view
def secret_grant_create_view(request, pk: int):
    secret = selectors.secret_get(user=request.user, pk=pk)
    grantee_type, _, grantee_id = request.POST.get("grantee", "").partition(":")
    try:
        grantee = selectors.grantee_get(user=request.user, grantee_type=grantee_type, grantee_id=_int(grantee_id))
        services.secret_grant(actor=request.user, secret=secret, grantee_type=grantee_type, grantee=grantee)
        messages.success(request, f"Secret {secret.name} granted.")
        return redirect("governance:secret_detail", pk=secret.pk)
    except ServiceError as exc:
        return _render_detail(request, secret, status=400, error=exc.message)


@require_POST
@login_required_view
def secret_grant_revoke_view(request, pk: int, grant_pk: int):
    secret = selectors.secret_get(user=request.user, pk=pk)
    grant = selectors.grant_get(user=request.user, pk=grant_pk)
    if grant.secret_id != secret.pk:
        return _render_detail(request, secret, status=400, error="That grant belongs to another secret.")
    try:
        services.secret_revoke_grant(actor=request.user, grant=grant)
        messages.success(request, "Grant revoked: it can no longer read this secret.")
        return redirect("governance:secret_detail", pk=secret.pk)
    except ServiceError as exc:
        return _render_detail(request, secret, status=400, error=exc.message)


@login_required_view
def secret_delete_view(request, pk: int):
    secret = selectors.secret_get(user=request.user, pk=pk)
    error = None
    if request.method == "POST":
        try:
            services.secret_delete(actor=request.user, secret=secret)
            messages.success(request, f"Secret {secret.name} deleted.")
            return redirect("governance:secret_list")
        except ServiceError as exc:
            error = exc.message
    else:
        require(request.user, "secret.manage", secret.team)  # the confirmation is for those who may delete
    status = 400 if error else 200
    return render(request, "governance/secret_confirm_delete.html", {"secret": secret, "error": error}, status=status)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
