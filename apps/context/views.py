"""Context pages: the team's spaces; a space's facts, documents, decisions, state (with versions) and grants.

Each view validates input, calls one service or selector, and renders. Viewers see every page
read-only; operators (`context.write`) add and edit content; builders (`context.manage`) create
and delete spaces and grant them to agents.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.permissions import has_perm, require
from apps.accounts.teams import current_team
from apps.core.exceptions import ServiceError
from apps.core.validation import add_service_error
from apps.core.views import login_required_view

from . import selectors, services
from .forms import DecisionForm, EntryForm, GrantForm, SearchForm, SpaceCreateForm, SpaceDescriptionForm, StateWriteForm
from .models import EntryKind

SECTION_LIMIT = 100


def _can_write(user, space) -> bool:
    return has_perm(user, "context.write", space.team)


def _can_manage(user, team) -> bool:
    return team is not None and has_perm(user, "context.manage", team)


@require_GET
@login_required_view
def space_list_view(request):
    team, _ = current_team(request)
    spaces = selectors.context_space_list(user=request.user, team=team) if team else []
    context = {"team": team, "spaces": spaces, "can_manage": _can_manage(request.user, team)}
    return render(request, "context/space_list.html", context)


@login_required_view
def space_create_view(request):
    team, _ = current_team(request)
    if team is None:
        return render(request, "context/space_form.html", {"form": None, "team": None})
    require(request.user, "context.manage", team)  # the form is for those who may create (403, audited)
    form = SpaceCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            space = services.context_space_create(
                actor=request.user,
                team=team,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
            messages.success(request, f"Context space {space.name} created. Grant it to the agents that use it.")
            return redirect("context:space_detail", pk=space.pk)
        except ServiceError as exc:
            add_service_error(form, exc)
    status = 400 if request.method == "POST" else 200
    return render(request, "context/space_form.html", {"form": form, "team": team}, status=status)


def _detail_context(request, space, **forms) -> dict:
    can_write = _can_write(request.user, space)
    can_manage = _can_manage(request.user, space.team)
    search_form = SearchForm(request.GET or None)
    results, search_error = None, None
    if search_form.is_valid() and search_form.cleaned_data["q"]:
        try:
            results = selectors.context_search(
                space=space, query=search_form.cleaned_data["q"], limit=20, kind=search_form.cleaned_data["kind"]
            )
        except ServiceError as exc:
            search_error = exc.message
    entries = selectors.context_entry_list(space=space).defer("body")
    grants = list(selectors.context_grant_list(space=space))
    candidates = list(selectors.context_grant_candidates(space=space)) if can_manage else []
    return {
        "space": space,
        "can_write": can_write,
        "can_manage": can_manage,
        "search_form": search_form,
        "results": results,
        "search_error": search_error,
        "facts": entries.filter(kind=EntryKind.FACT)[:SECTION_LIMIT],
        "documents": entries.filter(kind=EntryKind.DOCUMENT)[:SECTION_LIMIT],
        "decisions": selectors.context_decision_list(space=space)[:SECTION_LIMIT],
        "states": selectors.context_state_list(space=space)[:SECTION_LIMIT],
        "section_limit": SECTION_LIMIT,
        "grants": grants,
        "requests": selectors.context_space_requests(space=space),
        "grant_form": forms.get("grant_form") or GrantForm(candidates=candidates),
        "description_form": forms.get("description_form")
        or SpaceDescriptionForm(initial={"description": space.description}),
        "state_form": forms.get("state_form") or StateWriteForm(initial={"expected_version": 0}),
        "error": forms.get("error"),
    }


@require_GET
@login_required_view
def space_detail_view(request, pk: int):
    space = selectors.context_space_get(user=request.user, pk=pk)
    return render(request, "context/space_detail.html", _detail_context(request, space))


@require_POST
@login_required_view
def space_update_view(request, pk: int):
    space = selectors.context_space_get(user=request.user, pk=pk)
    form = SpaceDescriptionForm(request.POST)
    if form.is_valid():
        try:
            services.context_space_update(actor=request.user, space=space, description=form.cleaned_data["description"])
            messages.success(request, "Description saved.")
            return redirect("context:space_detail", pk=space.pk)
        except ServiceError as exc:
            add_service_error(form, exc)
    context = _detail_context(request, space, description_form=form)
    return render(request, "context/space_detail.html", context, status=400)


@login_required_view
def space_delete_view(request, pk: int):
    space = selectors.context_space_get(user=request.user, pk=pk)
    if request.method == "POST":
        services.context_space_delete(actor=request.user, space=space)
        messages.success(request, f"Context space {space.name} deleted with everything in it.")
        return redirect("context:space_list")
    require(request.user, "context.manage", space.team)  # the confirmation is for those who may delete
    return render(request, "context/space_confirm_delete.html", {"space": space})


# --- entries --------------------------------------------------------------------------------


def _entry_form_page(request, space, form, *, entry=None, kind: str, status: int = 200):
    context = {"space": space, "form": form, "entry": entry, "kind": kind}
    return render(request, "context/entry_form.html", context, status=status)


@login_required_view
def entry_create_view(request, pk: int):
    space = selectors.context_space_get(user=request.user, pk=pk)
    require(request.user, "context.write", space.team)  # the form is for those who may write (403, audited)
    kind = request.GET.get("kind") or request.POST.get("kind") or EntryKind.FACT
    if kind not in EntryKind.values:
        kind = EntryKind.FACT
    if kind == EntryKind.DECISION:
        form = DecisionForm(request.POST or None)
    else:
        form = EntryForm(request.POST or None, initial={"kind": kind})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if kind == EntryKind.DECISION:
                services.context_decision_record(
                    actor=request.user,
                    space=space,
                    title=data["title"],
                    rationale=data["rationale"],
                    decided_by=data["decided_by"],
                )
                messages.success(request, "Decision recorded in the log.")
                return redirect(f"{_space_url(space)}#decisions")
            entry = services.context_entry_add(
                actor=request.user,
                space=space,
                kind=data["kind"],
                key=data["key"],
                title=data["title"],
                body=data["body"],
                metadata=data["metadata"],
            )
            messages.success(request, f"{entry.get_kind_display()} added.")
            return redirect("context:entry_detail", pk=space.pk, entry_pk=entry.pk)
        except ServiceError as exc:
            add_service_error(
                form, exc, field_for=lambda f: "rationale" if kind == EntryKind.DECISION and f == "body" else f
            )
    status = 400 if request.method == "POST" else 200
    return _entry_form_page(request, space, form, kind=kind, status=status)


def _space_url(space) -> str:
    from django.urls import reverse

    return reverse("context:space_detail", args=[space.pk])


@require_GET
@login_required_view
def entry_detail_view(request, pk: int, entry_pk: int):
    space = selectors.context_space_get(user=request.user, pk=pk)
    entry = selectors.context_entry_get(space=space, pk=entry_pk)
    context = {
        "space": space,
        "entry": entry,
        "metadata_json": json.dumps(entry.metadata, indent=2) if entry.metadata else "",
        "can_write": _can_write(request.user, space) and entry.kind != EntryKind.DECISION,
    }
    return render(request, "context/entry_detail.html", context)


@login_required_view
def entry_update_view(request, pk: int, entry_pk: int):
    space = selectors.context_space_get(user=request.user, pk=pk)
    entry = selectors.context_entry_get(space=space, pk=entry_pk)
    require(request.user, "context.write", space.team)
    if entry.kind == EntryKind.DECISION:
        messages.error(request, "Decisions are an append-only log: record a new decision that supersedes it.")
        return redirect("context:entry_detail", pk=space.pk, entry_pk=entry.pk)
    form = EntryForm(request.POST or None, initial=EntryForm.initial_from(entry))
    form.fields["kind"].disabled = True  # a fact stays a fact: add a document instead
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.context_entry_update(
                actor=request.user,
                entry=entry,
                key=data["key"],
                title=data["title"],
                body=data["body"],
                metadata=data["metadata"],
            )
            messages.success(request, "Saved.")
            return redirect("context:entry_detail", pk=space.pk, entry_pk=entry.pk)
        except ServiceError as exc:
            add_service_error(form, exc)
    status = 400 if request.method == "POST" else 200
    return _entry_form_page(request, space, form, entry=entry, kind=entry.kind, status=status)


@require_POST
@login_required_view
def entry_delete_view(request, pk: int, entry_pk: int):
    space = selectors.context_space_get(user=request.user, pk=pk)
    entry = selectors.context_entry_get(space=space, pk=entry_pk)
    try:
        services.context_entry_delete(actor=request.user, entry=entry)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("context:entry_detail", pk=space.pk, entry_pk=entry.pk)
    messages.success(request, f"{entry.get_kind_display()} deleted.")
    return redirect("context:space_detail", pk=space.pk)


# --- state ----------------------------------------------------------------------------------


def _state_page(request, space, key: str, *, form=None, conflict=None, status: int = 200):
    state = space.states.filter(key=key).first()
    if form is None:
        initial = {"key": key, "expected_version": state.version if state else 0}
        if state is not None:
            initial["value"] = json.dumps(state.value, indent=2)
        form = StateWriteForm(initial=initial)
    if state is not None:
        form.fields["key"].widget.attrs["readonly"] = True  # writing another key starts from the space's page
    context = {
        "space": space,
        "key": key,
        "state": state,
        "value_json": json.dumps(state.value, indent=2) if state is not None else "",
        "history": [
            {"row": v, "value_json": json.dumps(v.value, indent=2)}
            for v in selectors.context_state_history(state=state)
        ]
        if state is not None
        else [],
        "form": form,
        "conflict": conflict,
        "can_write": _can_write(request.user, space),
    }
    return render(request, "context/state_detail.html", context, status=status)


def _state_write(request, space):
    """Write the posted value; on a version conflict show the current value beside the one typed."""
    form = StateWriteForm(request.POST)
    if not form.is_valid():
        key = (request.POST.get("key") or "").strip()
        if key and space.states.filter(key=key).exists():
            return _state_page(request, space, key, form=form, status=400)
        return render(
            request, "context/space_detail.html", _detail_context(request, space, state_form=form), status=400
        )
    data = form.cleaned_data
    try:
        state = services.context_state_write(
            actor=request.user,
            space=space,
            key=data["key"],
            value=data["value"],
            expected_version=data["expected_version"],
        )
    except services.VersionConflict as exc:
        # Keep what was typed, and point the next save at the version now current: saving again is a choice.
        retry = StateWriteForm({**request.POST.dict(), "expected_version": exc.current_version})
        retry.is_valid()
        return _state_page(request, space, data["key"].strip(), form=retry, conflict=exc, status=409)
    except ServiceError as exc:
        add_service_error(form, exc)
        return render(
            request, "context/space_detail.html", _detail_context(request, space, state_form=form), status=400
        )
    messages.success(request, f"State {state.key} saved as version {state.version}.")
    return redirect("context:state_detail", pk=space.pk, key=state.key)


@require_POST
@login_required_view
def state_write_view(request, pk: int):
    space = selectors.context_space_get(user=request.user, pk=pk)
    return _state_write(request, space)


@login_required_view
def state_detail_view(request, pk: int, key: str):
    space = selectors.context_space_get(user=request.user, pk=pk)
    if request.method == "POST":
        return _state_write(request, space)
    selectors.context_state_get(space=space, key=key)  # 404 for a key that does not exist
    return _state_page(request, space, key)


# --- grants ---------------------------------------------------------------------------------


@require_POST
@login_required_view
def grant_set_view(request, pk: int):
    space = selectors.context_space_get(user=request.user, pk=pk)
    candidates = selectors.context_grant_candidates(space=space)
    form = GrantForm(request.POST, candidates=candidates)
    if form.is_valid():
        try:
            agent = selectors.context_grant_agent(space=space, agent=form.cleaned_data["agent"])
            grant = services.context_grant_set(
                actor=request.user, space=space, agent=agent, access=form.cleaned_data["access"]
            )
            messages.success(request, f"Agent {agent.name} may now {grant.get_access_display().lower()} {space.name}.")
            return redirect(f"{_space_url(space)}#grants")
        except ServiceError as exc:
            add_service_error(form, exc)
    else:
        require(request.user, "context.manage", space.team)  # refuse those who may not grant before form errors
    context = _detail_context(request, space, grant_form=form)
    return render(request, "context/space_detail.html", context, status=400)


@require_POST
@login_required_view
def grant_revoke_view(request, pk: int, grant_pk: int):
    space = selectors.context_space_get(user=request.user, pk=pk)
    grant = selectors.context_grant_get(space=space, pk=grant_pk)
    services.context_grant_revoke(actor=request.user, grant=grant)
    messages.success(request, f"Agent {grant.agent.name} can no longer use {space.name}.")
    return redirect(f"{_space_url(space)}#grants")
