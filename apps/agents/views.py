"""Agent pages and the Studio: validate input, call one service or selector, render."""

from __future__ import annotations

import csv
import io
import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.accounts.permissions import has_perm
from apps.accounts.teams import current_team
from apps.core.exceptions import ServiceError
from apps.core.registry_views import diff_page, export_response
from apps.core.validation import add_service_error
from apps.core.versioning import next_versions
from apps.core.views import login_required_view

from . import selectors, services
from .forms import (
    AgentCreateForm,
    AgentGrantForm,
    AgentMetaForm,
    DraftForm,
    ImportForm,
    InventoryFilterForm,
    PromoteForm,
    PublishForm,
    RetireForm,
    RollbackForm,
    form_field_for,
)


def _rights(user, agent) -> dict:
    return {
        "can_edit": has_perm(user, "registry.edit", agent.team, agent) and agent.status == "active",
        "can_promote": has_perm(user, "agent.promote", agent.team, agent) and agent.status == "active",
    }


@login_required_view
def agent_list_view(request):
    form = InventoryFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    team, _ = current_team(request)
    agents = selectors.agent_list(user=request.user, filters=filters)
    page = Paginator(agents, 50).get_page(request.GET.get("page"))
    can_create = team is not None and has_perm(request.user, "registry.edit", team)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"page": page, "form": form, "can_create": can_create, "query": query.urlencode()}
    return render(request, "agents/agent_list.html", context)


@login_required_view
def studio_view(request):
    """Start a new agent in the current team (the Studio's front door)."""
    team, _ = current_team(request)
    form = AgentCreateForm(request.POST or None)
    if request.method == "POST" and team is not None and form.is_valid():
        try:
            agent = services.agent_create(actor=request.user, team=team, **form.cleaned_data)
            messages.success(request, f"Agent {agent.name} created: now design its draft.")
            return redirect("agents:agent_studio", pk=agent.pk)
        except ServiceError as exc:
            add_service_error(form, exc)
    drafts = selectors.agent_list(user=request.user, team=team).filter(versions__isnull=True) if team else []
    status = 400 if request.method == "POST" else 200
    can_create = team is not None and has_perm(request.user, "registry.edit", team)
    return render(
        request,
        "agents/studio.html",
        {"form": form, "team": team, "drafts": drafts, "can_create": can_create},
        status=status,
    )


def _draft_form(request, agent, data=None):
    choices = selectors.studio_choices(team=agent.team, agent=agent)
    form = DraftForm(
        data,
        initial=DraftForm.initial_from_spec(agent.draft_spec),
        model_choices=[("", "—"), *choices["models"]],
        prompt_choices=choices["prompts"],
        tool_choices=[(t["name"], t["name"]) for t in choices["tools"]],
        handoff_choices=choices["handoffs"],
    )
    return form, choices


@login_required_view
def agent_studio_view(request, pk: int):
    """Edit the agent's draft: model, prompt, tools, limits, memory, handoffs; publish it."""
    agent = selectors.agent_get(user=request.user, pk=pk)
    rights = _rights(request.user, agent)
    form, choices = _draft_form(request, agent, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            pinned = {ref.split("@")[0]: ref for ref in agent.draft_spec.get("tools", [])}
            try:
                services.agent_update_draft(actor=request.user, agent=agent, spec=form.to_spec(pinned_tools=pinned))
                messages.success(request, "Draft saved and valid: it can be published.")
                return redirect("agents:agent_studio", pk=agent.pk)
            except ServiceError as exc:
                add_service_error(form, exc, form_field_for)
        status = 400
    versions = selectors.agent_version_list(agent=agent)
    latest = versions.first()
    suggestions = next_versions(latest.version if latest else None)
    publish_form = PublishForm(initial={"version": suggestions["minor"] if latest else "1.0.0"})
    pinned = {ref.split("@")[0]: ref.split("@")[1] for ref in agent.draft_spec.get("tools", []) if "@" in ref}
    context = {
        "agent": agent,
        "form": form,
        "publish_form": publish_form,
        "suggestions": suggestions,
        "versions": versions,
        "tools": [{**t, "pinned": pinned.get(t["name"])} for t in choices["tools"]],
        "prompt_variables_json": json.dumps(choices["prompt_variables"]),
        "draft_json": json.dumps(agent.draft_spec, indent=2),
        **rights,
    }
    return render(request, "agents/agent_studio.html", context, status=status)


@require_POST
@login_required_view
def agent_publish_view(request, pk: int):
    agent = selectors.agent_get(user=request.user, pk=pk)
    form = PublishForm(request.POST)
    if form.is_valid():
        try:
            version = services.agent_publish(
                actor=request.user,
                agent=agent,
                version=form.cleaned_data["version"],
                notes=form.cleaned_data["release_notes"],
            )
            messages.success(request, f"Published {agent.name} {version.version}.")
            return redirect("agents:agent_detail", pk=agent.pk)
        except ServiceError as exc:
            where = form_field_for(exc.field)
            messages.error(request, f"Not published: {exc.message}" + (f" (field {exc.field})" if where else ""))
    else:
        messages.error(request, "Not published: give a version like 1.0.0.")
    return redirect("agents:agent_studio", pk=agent.pk)


@login_required_view
def agent_detail_view(request, pk: int):
    agent = selectors.agent_get(user=request.user, pk=pk)
    versions = selectors.agent_version_list(agent=agent)
    meta_form = AgentMetaForm(
        initial={
            "description": agent.description,
            "risk_tier": agent.risk_tier,
            "data_classification": agent.data_classification,
            "tags": ", ".join(agent.tags),
            "owner": agent.owner.username if agent.owner else "",
        }
    )
    status = 200
    if request.method == "POST":
        meta_form = AgentMetaForm(request.POST)
        if meta_form.is_valid():
            try:
                services.agent_update(actor=request.user, agent=agent, **meta_form.cleaned_data)
                messages.success(request, "Saved.")
                return redirect("agents:agent_detail", pk=agent.pk)
            except ServiceError as exc:
                add_service_error(meta_form, exc)
        status = 400
    context = {
        "agent": agent,
        "versions": versions,
        "channels": selectors.channel_map(agent),
        "promotions": agent.promotions.select_related("from_version", "to_version", "actor")[:50],
        "meta_form": meta_form,
        "promote_form": PromoteForm(
            auto_id="promote-%s", initial={"version": versions.first().version if versions else ""}
        ),
        "rollback_form": RollbackForm(auto_id="rollback-%s"),
        "retire_form": RetireForm(),
        **_rights(request.user, agent),
    }
    return render(request, "agents/agent_detail.html", context, status=status)


def _channel_action(request, pk: int, form_class, call, done: str):
    agent = selectors.agent_get(user=request.user, pk=pk)
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("agents:agent_detail", pk=agent.pk)
    try:
        call(agent, form.cleaned_data)
        messages.success(request, done)
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("agents:agent_detail", pk=agent.pk)


@require_POST
@login_required_view
def agent_promote_view(request, pk: int):
    def call(agent, d):
        version = selectors.agent_version_get(agent=agent, version=d["version"])
        services.agent_promote(
            actor=request.user, agent=agent, version=version, channel=d["channel"], reason=d["reason"]
        )

    return _channel_action(request, pk, PromoteForm, call, "Promoted.")


@require_POST
@login_required_view
def agent_rollback_view(request, pk: int):
    def call(agent, d):
        version = selectors.agent_version_get(agent=agent, version=d["version"]) if d.get("version") else None
        services.agent_rollback(
            actor=request.user, agent=agent, channel=d["channel"], reason=d["reason"], version=version
        )

    return _channel_action(request, pk, RollbackForm, call, "Rolled back.")


@require_POST
@login_required_view
def agent_retire_view(request, pk: int):
    return _channel_action(
        request,
        pk,
        RetireForm,
        lambda agent, d: services.agent_retire(actor=request.user, agent=agent, reason=d["reason"]),
        "Retired.",
    )


@login_required_view
def agentversion_detail_view(request, pk: int, version: str):
    agent = selectors.agent_get(user=request.user, pk=pk)
    row = selectors.agent_version_get(agent=agent, version=version)
    return render(
        request,
        "agents/agentversion_detail.html",
        {
            "agent": agent,
            "version": row,
            "spec_json": json.dumps(row.spec, indent=2),
            "tools": row.tool_versions.select_related("tool"),
        },
    )


@login_required_view
def agent_diff_view(request, pk: int):
    agent = selectors.agent_get(user=request.user, pk=pk)
    return diff_page(
        request,
        versions=selectors.agent_version_list(agent=agent),
        object_name=f"{agent.team.slug}/{agent.name}",
        back_url=reverse("agents:agent_detail", args=[agent.pk]),
    )


@login_required_view
def agent_export_view(request, pk: int):
    agent = selectors.agent_get(user=request.user, pk=pk)
    return export_response(
        request,
        obj=agent,
        kind="Agent",
        version_get=lambda v: selectors.agent_version_get(agent=agent, version=v),
        metadata=services.agent_document_metadata(agent),
    )


@login_required_view
def agent_import_view(request):
    team, _ = current_team(request)
    form = ImportForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if team is None:
            form.add_error(None, "You are not in a team: an agent belongs to one.")
        elif form.is_valid():
            try:
                agent = services.agent_import(
                    actor=request.user,
                    team=team,
                    text=form.text(),
                    publish_version=form.cleaned_data["publish_version"] or None,
                )
                messages.success(request, f"Imported {agent.name}.")
                return redirect("agents:agent_detail", pk=agent.pk)
            except ServiceError as exc:
                form.add_error(None, f"{exc.field + ': ' if exc.field else ''}{exc.message}")
        status = 400
    return render(request, "agents/agent_import.html", {"form": form, "team": team}, status=status)


@login_required_view
def agent_access_view(request, pk: int):
    agent = selectors.agent_get(user=request.user, pk=pk)
    form = AgentGrantForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            from django.contrib.auth import get_user_model

            user = get_user_model().objects.filter(username=form.cleaned_data["username"], is_active=True).first()
            if user is None:
                form.add_error("username", "No active user with this username.")
            else:
                try:
                    services.agent_grant_change(
                        actor=request.user,
                        agent=agent,
                        user=user,
                        perm=form.cleaned_data["permission"],
                        grant=form.cleaned_data["action"] == "add",
                    )
                    messages.success(request, "Grant saved.")
                    return redirect("agents:agent_access", pk=agent.pk)
                except ServiceError as exc:
                    add_service_error(form, exc)
        status = 400
    context = {
        "agent": agent,
        "access": selectors.agent_access(agent=agent),
        "grants": selectors.agent_grant_list(agent=agent),
        "grant_form": form,
        "can_grant": has_perm(request.user, "membership.manage", agent.team),
    }
    return render(request, "agents/agent_access.html", context, status=status)


INVENTORY_COLUMNS = [
    "team",
    "name",
    "owner",
    "status",
    "risk_tier",
    "data_classification",
    "external",
    "production_version",
    "staging_version",
    "model",
    "tools",
    "permissions",
    "secrets",
    "last_run_at",
    "cost_7d_usd",
]


@login_required_view
def inventory_view(request):
    form = InventoryFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    agents = selectors.inventory_list(user=request.user, filters=filters)
    page = Paginator(agents, 50).get_page(request.GET.get("page"))
    rows = selectors.inventory_rows(page)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "agents/inventory.html",
        {"form": form, "page": page, "rows": rows, "query": query.urlencode(), "total": page.paginator.count},
    )


def _all_rows(agents, chunk: int = 500):
    """Yield inventory rows for every agent, a chunk at a time."""
    total = agents.count()
    for start in range(0, total, chunk):
        yield from selectors.inventory_rows(agents[start : start + chunk])


@login_required_view
def inventory_export_view(request, fmt: str):
    form = InventoryFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    agents = selectors.inventory_list(user=request.user, filters=filters)
    if fmt == "json":
        body = json.dumps(list(_all_rows(agents)), indent=2)
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="fleet-inventory.json"'
        return response

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(INVENTORY_COLUMNS)
        for row in _all_rows(agents):
            row["tools"] = " ".join(f"{t['name']}@{t['version']}" for t in row["tools"])
            row["permissions"] = " ".join(row["permissions"])
            row["secrets"] = " ".join(row["secrets"])
            writer.writerow(
                [
                    "'" + str(v) if isinstance(v, str) and v[:1] in "=+-@" else v
                    for v in (row[c] for c in INVENTORY_COLUMNS)
                ]
            )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate(0)

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="fleet-inventory.csv"'
    return response
