"""Prompt pages: list, editor (with the variables found in the template), versions, labels, diff, spec files.

Each view validates input, calls one service or selector, and renders. People without
`registry.edit` on the prompt's team see the same pages read-only, without forms.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from apps.accounts.selectors import membership_list
from apps.accounts.teams import current_team
from apps.core.drafts import version_previous, version_suggestions
from apps.core.exceptions import ServiceError
from apps.core.registry_forms import error_to_form
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
from .forms import LabelForm, PromptCreateForm, PromptEditorForm, PromptFilterForm
from .specs import prompt_spec_validate

STARTER_SPEC = {
    "template": "You help customers of {{ company }}.\nAnswer in a friendly, precise tone.",
    "variables": [{"name": "company", "description": "The company's name.", "required": True, "default": None}],
}
PROMPT_SERVICES = {
    "publish": services.prompt_publish,
    "set_owner": services.prompt_set_owner,
    "update_draft": services.prompt_update_draft,
}
EDITOR_FIELDS = {"template": "template", "variables": "variables"}


@require_GET
@login_required_view
def prompt_list_view(request):
    form = PromptFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    team, _ = current_team(request)
    page, query = page_of(request, selectors.prompt_list(user=request.user, filters=filters))
    context = {"form": form, "page": page, "query": query, "can_create": can_edit(request.user, team)}
    return render(request, "prompts/prompt_list.html", context)


@login_required_view
def prompt_create_view(request):
    team, _ = current_team(request)
    form = PromptCreateForm(request.POST or None, initial=PromptEditorForm.initial_from_spec(STARTER_SPEC))
    status = 200
    if request.method == "POST":
        if team is None:
            form.add_error(None, "You are not in a team yet: a prompt belongs to one team.")
        elif form.is_valid():
            try:
                prompt = services.prompt_create(
                    actor=request.user,
                    team=team,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    spec=form.spec(),
                )
                messages.success(request, f"Prompt {prompt.name} created. Publish its draft when it is ready.")
                return redirect("prompts:prompt_detail", pk=prompt.pk)
            except ServiceError as exc:
                error_to_form(form, exc, EDITOR_FIELDS)
        status = 400
    detected = selectors.prompt_variables(_posted_spec(form) or STARTER_SPEC)
    context = {"form": form, "team": team, "can_create": can_edit(request.user, team), "detected": detected}
    return render(request, "prompts/prompt_create.html", context, status=status)


def _posted_spec(form) -> dict | None:
    """Return the spec as typed so far (even if invalid), for the variables panel."""
    if not form.is_bound:
        return None
    variables = form.cleaned_data.get("variables") if hasattr(form, "cleaned_data") else None
    return {"template": form.data.get("template", ""), "variables": variables if isinstance(variables, list) else []}


def _detail_context(request, prompt, **forms) -> dict:
    versions = selectors.promptversion_list(prompt=prompt)
    latest = versions.first()
    suggestions = version_suggestions(prompt.versions.all())
    editor = forms.get("editor_form")
    shown_spec = (_posted_spec(editor) if editor is not None else None) or prompt.draft_spec
    context = {
        "prompt": prompt,
        "versions": versions,
        "latest": latest,
        "labels": selectors.promptlabel_list(prompt=prompt),
        "detected": selectors.prompt_variables(shown_spec),
        "draft_json": json.dumps(prompt.draft_spec, indent=2),
        "draft_unpublished": latest is None or latest.spec != prompt.draft_spec,
        "can_edit": can_edit(request.user, prompt.team),
        "suggestions": suggestions,
        "members": membership_list(user=request.user, team=prompt.team),
        "editor_form": PromptEditorForm(initial=PromptEditorForm.initial_from_spec(prompt.draft_spec)),
        **registry_forms(prompt, latest, suggestions),
        "label_form": LabelForm(initial={"version": latest.version if latest else ""}),
    }
    context.update(forms)
    return context


@login_required_view
def prompt_detail_view(request, pk: int):
    prompt = selectors.prompt_get(user=request.user, pk=pk)
    if request.method != "POST":
        return render(request, "prompts/prompt_detail.html", _detail_context(request, prompt))
    action = request.POST.get("action")
    forms = {}
    done = registry_action(
        request,
        prompt,
        action,
        forms,
        noun="prompt",
        services=PROMPT_SERVICES,
        version_url="prompts:promptversion_detail",
    )
    if done is not None:
        return done
    if action in {"save_draft", "check", "declare"}:
        form = forms["editor_form"] = PromptEditorForm(request.POST)
        if form.is_valid():
            try:
                if action == "declare":
                    spec = PromptEditorForm.declare_detected(form.spec())
                    forms["editor_form"] = PromptEditorForm(initial=PromptEditorForm.initial_from_spec(spec))
                    messages.success(request, "Variables declared from the template: review them, then save.")
                    context = _detail_context(request, prompt, **forms)
                    context["detected"] = selectors.prompt_variables(spec)
                    return render(request, "prompts/prompt_detail.html", context)
                if action == "check":
                    prompt_spec_validate(form.spec())
                    messages.success(request, "The prompt is valid. Save the draft to keep it.")
                    return render(request, "prompts/prompt_detail.html", _detail_context(request, prompt, **forms))
                services.prompt_update_draft(actor=request.user, prompt=prompt, spec=form.spec())
                messages.success(request, "Draft saved.")
                return redirect("prompts:prompt_detail", pk=prompt.pk)
            except ServiceError as exc:
                error_to_form(form, exc, EDITOR_FIELDS)
    elif action == "set_label":
        form = forms["label_form"] = LabelForm(request.POST)
        if form.is_valid():
            try:
                label = services.prompt_label_set(
                    actor=request.user,
                    prompt=prompt,
                    name=form.cleaned_data["name"],
                    version=form.cleaned_data["version"],
                    candidate=form.cleaned_data["candidate"] or None,
                    rollout_percent=form.cleaned_data["rollout_percent"] or 0,
                )
                messages.success(request, f"Label {label.name} now points at {label.version.version}.")
                return redirect("prompts:prompt_detail", pk=prompt.pk)
            except ServiceError as exc:
                error_to_form(form, exc)
    elif action not in REGISTRY_ACTIONS:
        messages.error(request, "Unknown action: reload the page and try again.")
    return render(request, "prompts/prompt_detail.html", _detail_context(request, prompt, **forms), status=400)


@require_GET
@login_required_view
def promptversion_detail_view(request, pk: int, version: str):
    prompt = selectors.prompt_get(user=request.user, pk=pk)
    found = selectors.promptversion_get(prompt=prompt, version=version)
    labels = [
        label
        for label in selectors.promptlabel_list(prompt=prompt)
        if found.pk in (label.version_id, label.candidate_id)
    ]
    context = {
        "prompt": prompt,
        "version": found,
        "previous": version_previous(selectors.promptversion_list(prompt=prompt), found),
        "labels": labels,
    }
    return render(request, "prompts/promptversion_detail.html", context)


@require_GET
@login_required_view
def prompt_diff_view(request, pk: int):
    prompt = selectors.prompt_get(user=request.user, pk=pk)
    return diff_page(
        request,
        versions=selectors.promptversion_list(prompt=prompt),
        object_name=f"Prompt {prompt.name}",
        back_url=reverse("prompts:prompt_detail", args=[prompt.pk]),
    )


@require_GET
@login_required_view
def prompt_export_view(request, pk: int):
    prompt = selectors.prompt_get(user=request.user, pk=pk)
    return export_response(
        request, obj=prompt, kind="Prompt", version_get=lambda v: selectors.promptversion_get(prompt=prompt, version=v)
    )


@login_required_view
def prompt_import_view(request):
    return import_page(
        request,
        service=services.prompt_import,
        noun="prompt",
        template="prompts/prompt_import.html",
        detail_url="prompts:prompt_detail",
    )
