"""Tool pages: list, builder, versions, diff, spec files, impact and deprecation.

Each view validates input, calls one service or selector, and renders. People without
`registry.edit` on the tool's team see the same pages read-only, without forms.
"""

from __future__ import annotations

import json
import shlex

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.selectors import membership_list
from apps.accounts.teams import current_team
from apps.core.drafts import version_previous, version_suggestions
from apps.core.exceptions import ServiceError
from apps.core.registry_views import (
    REGISTRY_ACTIONS,
    can_edit,
    diff_page,
    export_response,
    import_page,
    page_of,
    registry_action,
    registry_forms,
)
from apps.core.views import login_required_view

from . import selectors, services
from .forms import (
    SPEC_FIELD_MAP,
    DeprecateForm,
    ToolBuilderForm,
    ToolCreateForm,
    ToolFilterForm,
    error_to_form,
)
from .mcp_import import mcp_tools_import
from .models import ToolKind
from .specs import tool_spec_check_grants, tool_spec_validate

# A starting definition for the builder, one per kind, so a new tool begins from something that works.
STARTER_CONFIG = {
    ToolKind.HTTP: {"method": "GET", "url": "https://api.example.com/items/{id}"},
    ToolKind.PYTHON: {"code": "def main(**arguments):\n    return {}\n", "entrypoint": "main"},
    ToolKind.HANDOFF: {"agent": "other-agent"},
    ToolKind.MCP: {"transport": "streamable_http", "url": "https://mcp.example.com/mcp", "tool_name": "search"},
    ToolKind.CONTEXT: {"operation": "search", "space": "shared"},
}
TOOL_SERVICES = {
    "publish": services.tool_publish,
    "set_owner": services.tool_set_owner,
    "update_draft": services.tool_update_draft,
}
STARTER_PARAMETERS = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}


@require_GET
@login_required_view
def tool_list_view(request):
    form = ToolFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    team, _ = current_team(request)
    page, query = page_of(request, selectors.tool_list(user=request.user, filters=filters))
    context = {
        "form": form,
        "page": page,
        "query": query,
        "rows": [(t, selectors.tool_permissions(t)) for t in page],
        "can_create": can_edit(request.user, team),
    }
    return render(request, "tools/tool_list.html", context)


@login_required_view
def tool_create_view(request):
    team, _ = current_team(request)
    kind = request.GET.get("kind") if request.GET.get("kind") in ToolKind.values else ToolKind.HTTP
    initial = ToolBuilderForm.initial_from_spec({"kind": kind, "config": STARTER_CONFIG[kind]})
    if kind == ToolKind.HTTP:
        initial["parameters"] = json.dumps(STARTER_PARAMETERS, indent=2)
    form = ToolCreateForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if team is None:
            form.add_error(None, "You are not in a team yet: a tool belongs to one team.")
        elif form.is_valid():
            try:
                tool = services.tool_create(
                    actor=request.user,
                    team=team,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    spec=form.spec(),
                )
                messages.success(request, f"Tool {tool.name} created. Publish its draft when it is ready.")
                return redirect("tools:tool_detail", pk=tool.pk)
            except ServiceError as exc:
                error_to_form(form, exc, SPEC_FIELD_MAP)
        status = 400
    context = {"form": form, "team": team, "can_create": can_edit(request.user, team), "kinds": ToolKind.choices}
    return render(request, "tools/tool_create.html", context, status=status)


def _detail_context(request, tool, **forms) -> dict:
    versions = selectors.toolversion_list(tool=tool)
    draft_status = None
    try:
        tool_spec_check_grants(tool=tool, spec=tool_spec_validate(tool.draft_spec, team=tool.team))
    except ServiceError as exc:
        draft_status = exc.message  # e.g. a secret not granted yet, or deleted since the draft was saved
    latest = versions.first()
    suggestions = version_suggestions(tool.versions.all())
    context = {
        "tool": tool,
        "versions": versions,
        "latest": latest,
        "draft_json": json.dumps(tool.draft_spec, indent=2),
        "draft_problem": draft_status,
        "draft_unpublished": latest is None or latest.spec != tool.draft_spec,
        "can_edit": can_edit(request.user, tool.team),
        "suggestions": suggestions,
        "members": membership_list(user=request.user, team=tool.team),
        "permissions": selectors.tool_permissions(tool),
        "builder_form": ToolBuilderForm(initial=ToolBuilderForm.initial_from_spec(tool.draft_spec)),
        **registry_forms(tool, latest, suggestions),
    }
    context.update(forms)
    return context


@login_required_view
def tool_detail_view(request, pk: int):
    tool = selectors.tool_get(user=request.user, pk=pk)
    if request.method != "POST":
        return render(request, "tools/tool_detail.html", _detail_context(request, tool))
    action = request.POST.get("action")
    forms = {}
    done = registry_action(
        request, tool, action, forms, noun="tool", services=TOOL_SERVICES, version_url="tools:toolversion_detail"
    )
    if done is not None:
        return done
    if action in {"save_draft", "check"}:
        form = forms["builder_form"] = ToolBuilderForm(request.POST)
        if form.is_valid():
            try:
                if action == "check":
                    tool_spec_validate(form.spec(), team=tool.team)
                    messages.success(request, "The definition is valid. Save the draft to keep it.")
                    return render(request, "tools/tool_detail.html", _detail_context(request, tool, **forms))
                services.tool_update_draft(actor=request.user, tool=tool, spec=form.spec())
                messages.success(request, "Draft saved.")
                return redirect("tools:tool_detail", pk=tool.pk)
            except ServiceError as exc:
                error_to_form(form, exc, SPEC_FIELD_MAP)
    elif action not in REGISTRY_ACTIONS:
        messages.error(request, "Unknown action: reload the page and try again.")
    return render(request, "tools/tool_detail.html", _detail_context(request, tool, **forms), status=400)


@require_GET
@login_required_view
def toolversion_detail_view(request, pk: int, version: str):
    tool = selectors.tool_get(user=request.user, pk=pk)
    found = selectors.toolversion_get(tool=tool, version=version)
    impact = next((row for row in selectors.tool_impact(tool=tool) if row["version"].pk == found.pk), None)
    previous = version_previous(selectors.toolversion_list(tool=tool), found)
    context = {
        "tool": tool,
        "version": found,
        "spec_json": json.dumps(found.spec, indent=2),
        "previous": previous,
        "agent_versions": impact["agent_versions"] if impact else [],
    }
    return render(request, "tools/toolversion_detail.html", context)


@require_GET
@login_required_view
def tool_diff_view(request, pk: int):
    tool = selectors.tool_get(user=request.user, pk=pk)
    return diff_page(
        request,
        versions=selectors.toolversion_list(tool=tool),
        object_name=f"Tool {tool.name}",
        back_url=reverse("tools:tool_detail", args=[tool.pk]),
    )


@require_GET
@login_required_view
def tool_export_view(request, pk: int):
    tool = selectors.tool_get(user=request.user, pk=pk)
    return export_response(
        request, obj=tool, kind="Tool", version_get=lambda v: selectors.toolversion_get(tool=tool, version=v)
    )


@login_required_view
def tool_import_view(request):
    return import_page(
        request,
        service=services.tool_import,
        noun="tool",
        template="tools/tool_import.html",
        detail_url="tools:tool_detail",
    )


class McpImportForm(forms.Form):
    """Where the MCP server is, and how to name and publish its tools (the service checks the rest)."""

    transport = forms.ChoiceField(
        choices=[("streamable_http", "Streamable HTTP (a URL)"), ("stdio", "stdio (a program the worker starts)")],
        initial="streamable_http",
    )
    url = forms.CharField(
        required=False, max_length=2000, label="URL", help_text="For streamable HTTP, e.g. https://mcp.example.com/mcp."
    )
    command = forms.CharField(
        required=False,
        max_length=2000,
        help_text="For stdio: the program and its arguments, e.g. mcp-server --stdio. "
        "A platform admin must allow the program.",
    )
    prefix = forms.CharField(
        required=False, max_length=40, help_text="Put before every tool's name, e.g. crm- gives crm-search."
    )
    publish_version = forms.CharField(
        required=False, max_length=32, help_text="Optional: publish every new or changed tool as this version."
    )

    def clean_command(self):
        try:
            return shlex.split(self.cleaned_data["command"])
        except ValueError as exc:
            raise forms.ValidationError(f"The command cannot be read ({exc}): check its quotes.") from None


@login_required_view
def tool_import_mcp_view(request):
    team, _ = current_team(request)
    form = McpImportForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if team is None:
            form.add_error(None, "You are not in a team yet: a tool belongs to one team.")
        elif form.is_valid():
            data = form.cleaned_data
            try:
                tools = mcp_tools_import(
                    actor=request.user,
                    team=team,
                    transport=data["transport"],
                    url=data["url"],
                    command=data["command"],
                    prefix=data["prefix"],
                    publish_version=data["publish_version"] or None,
                )
                counts = {key: sum(t.mcp_import["status"] == key for t in tools) for key in ("created", "updated")}
                messages.success(
                    request,
                    f"Imported {len(tools)} MCP tools into {team.slug}: {counts['created']} created, "
                    f"{counts['updated']} drafts updated, {len(tools) - sum(counts.values())} unchanged.",
                )
                return redirect(f"{reverse('tools:tool_list')}?team={team.slug}&kind=mcp")
            except ServiceError as exc:
                error_to_form(form, exc, {"version": "publish_version"})
        status = 400
    context = {"form": form, "team": team, "can_create": can_edit(request.user, team)}
    return render(request, "tools/tool_import_mcp.html", context, status=status)


def _impact_context(request, tool, **forms) -> dict:
    context = {
        "tool": tool,
        "impact": selectors.tool_impact(tool=tool),
        "can_edit": can_edit(request.user, tool.team),
        "deprecate_form": DeprecateForm(),
    }
    context["in_use"] = sum(len(row["agent_versions"]) for row in context["impact"])
    context["live"] = sum(1 for row in context["impact"] for av in row["agent_versions"] if av["live"])
    context.update(forms)
    return context


@require_GET
@login_required_view
def tool_impact_view(request, pk: int):
    tool = selectors.tool_get(user=request.user, pk=pk)
    return render(request, "tools/tool_impact.html", _impact_context(request, tool))


@require_POST
@login_required_view
def tool_deprecate_view(request, pk: int):
    tool = selectors.tool_get(user=request.user, pk=pk)
    form = DeprecateForm(request.POST)
    if form.is_valid():
        try:
            services.tool_deprecate(actor=request.user, tool=tool, reason=form.cleaned_data["reason"])
            messages.success(request, f"Tool {tool.name} is deprecated: new agent versions cannot use it.")
            return redirect("tools:tool_impact", pk=tool.pk)
        except ServiceError as exc:
            error_to_form(form, exc)
    return render(request, "tools/tool_impact.html", _impact_context(request, tool, deprecate_form=form), status=400)


@require_POST
@login_required_view
def tool_undeprecate_view(request, pk: int):
    tool = selectors.tool_get(user=request.user, pk=pk)
    try:
        services.tool_undeprecate(actor=request.user, tool=tool)
        messages.success(request, f"Tool {tool.name} can be used by new agent versions again.")
    except ServiceError as exc:
        messages.error(request, exc.message)
        return render(request, "tools/tool_impact.html", _impact_context(request, tool), status=400)
    return redirect("tools:tool_impact", pk=tool.pk)
