"""Alert pages: events (unacknowledged first) with acknowledgement, and the rules of the team.

Reads go through the alert selectors (apps/observability/alerts.py): another team's rule or event
is a 404. Forms are shown only to those who may use them (a 403 otherwise, audited); the services
check the permission again when they write.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.permissions import require
from apps.accounts.teams import current_team
from apps.core.exceptions import ServiceError
from apps.core.registry_views import page_of
from apps.core.validation import add_service_error
from apps.core.views import login_required_view

from .. import selectors, services
from ..forms import AlertRuleForm
from ..models import AlertRule

STATE_TABS = {"open": False, "acknowledged": True, "all": None}


@require_GET
@login_required_view
def alert_event_list_view(request):
    tab = request.GET.get("state") if request.GET.get("state") in STATE_TABS else "all"
    events = selectors.alert_event_list(user=request.user, acknowledged=STATE_TABS[tab])
    page, query = page_of(request, events)
    items = [(event, selectors.can_acknowledge(request.user, event.team)) for event in page]
    team, _ = current_team(request)
    context = {
        "page": page,
        "query": query,
        "tab": tab,
        "items": items,
        "open_count": selectors.alert_event_list(user=request.user, acknowledged=False).count(),
        "can_manage": team is not None and selectors.can_manage_alerts(request.user, team),
    }
    return render(request, "observability/alert_event_list.html", context)


@require_GET
@login_required_view
def alert_event_detail_view(request, pk: int):
    event = selectors.alert_event_get(user=request.user, pk=pk)
    context = {
        "event": event,
        "can_acknowledge": event.acknowledged_at is None and selectors.can_acknowledge(request.user, event.team),
        "webhook": services.webhook_origin(event.rule.webhook_url),
    }
    return render(request, "observability/alert_event_detail.html", context)


@require_POST
@login_required_view
def alert_event_acknowledge_view(request, pk: int):
    event = selectors.alert_event_get(user=request.user, pk=pk)
    try:
        services.alert_event_acknowledge(actor=request.user, event=event)
        messages.success(request, f"Acknowledged: {event.message}")
    except ServiceError as exc:
        messages.error(request, exc.message)
    back = request.POST.get("next") or ""
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("observability:alert_event_list")


@require_GET
@login_required_view
def alert_rule_list_view(request):
    team, _ = current_team(request)
    rules = [
        (rule, services.webhook_origin(rule.webhook_url), selectors.can_manage_alerts(request.user, rule.team))
        for rule in selectors.alert_rule_list(user=request.user)
    ]
    context = {
        "rules": rules,
        "team": team,
        "can_manage": team is not None and selectors.can_manage_alerts(request.user, team),
    }
    return render(request, "observability/alert_rule_list.html", context)


def _form_page(request, form, *, team, rule=None, status: int = 200):
    context = {"form": form, "team": team, "rule": rule}
    return render(request, "observability/alert_rule_form.html", context, status=status)


@login_required_view
def alert_rule_create_view(request):
    team, _ = current_team(request)
    if team is None:
        return _form_page(request, None, team=None)
    require(request.user, "alert.manage", team)  # the form is for those who may create (403, audited)
    form = AlertRuleForm(request.POST or None, team=team)
    if request.method == "POST":
        if form.is_valid():
            try:
                rule = services.alert_rule_create(actor=request.user, team=team, **form.cleaned_data)
                messages.success(request, f"Alert rule {rule.name} created; it is evaluated every minute.")
                return redirect("observability:alert_rule_list")
            except ServiceError as exc:
                add_service_error(form, exc)
        return _form_page(request, form, team=team, status=400)
    return _form_page(request, form, team=team)


@login_required_view
def alert_rule_edit_view(request, pk: int):
    rule = selectors.alert_rule_get(user=request.user, pk=pk)
    require(request.user, "alert.manage", rule.team)
    initial = {f: getattr(rule, f) for f in services.RULE_FIELDS}
    form = AlertRuleForm(request.POST or None, team=rule.team, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            try:
                services.alert_rule_update(actor=request.user, rule=rule, **form.cleaned_data)
                messages.success(request, f"Alert rule {rule.name} saved.")
                return redirect("observability:alert_rule_list")
            except ServiceError as exc:
                add_service_error(form, exc)
        return _form_page(request, form, team=rule.team, rule=rule, status=400)
    return _form_page(request, form, team=rule.team, rule=rule)


@login_required_view
def alert_rule_delete_view(request, pk: int):
    rule: AlertRule = selectors.alert_rule_get(user=request.user, pk=pk)
    if request.method == "POST":
        services.alert_rule_delete(actor=request.user, rule=rule)
        messages.success(request, f"Alert rule {rule.name} deleted with its events.")
        return redirect("observability:alert_rule_list")
    require(request.user, "alert.manage", rule.team)  # the confirmation is for those who may delete
    return render(
        request, "observability/alert_rule_confirm_delete.html", {"rule": rule, "event_count": rule.events.count()}
    )


urlpatterns = [
    path("alerts/", alert_event_list_view, name="alert_event_list"),
    path("alerts/events/<int:pk>/", alert_event_detail_view, name="alert_event_detail"),
    path("alerts/events/<int:pk>/acknowledge/", alert_event_acknowledge_view, name="alert_event_acknowledge"),
    path("alerts/rules/", alert_rule_list_view, name="alert_rule_list"),
    path("alerts/rules/new/", alert_rule_create_view, name="alert_rule_create"),
    path("alerts/rules/<int:pk>/edit/", alert_rule_edit_view, name="alert_rule_edit"),
    path("alerts/rules/<int:pk>/delete/", alert_rule_delete_view, name="alert_rule_delete"),
]
