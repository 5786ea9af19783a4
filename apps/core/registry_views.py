"""Page pieces the tool and prompt registries share: diff, spec-file export and import.

Each registry's views declare only what differs (the object, its versions, its service).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render

from apps.accounts.permissions import has_perm
from apps.accounts.teams import current_team

from .drafts import document_metadata
from .exceptions import ServiceError
from .registry import spec_file_response, version_compare, version_pair
from .registry_forms import DetailsForm, ImportForm, OwnerForm, PublishForm, error_to_form, import_error_to_form

REGISTRY_ACTIONS = {"publish", "set_owner", "update_details"}


def can_edit(user, team) -> bool:
    """Return whether the user may change the registry of the team (the pages show forms then)."""
    return team is not None and has_perm(user, "registry.edit", team)


def page_of(request, rows, per_page: int = 50):
    """Return the page of rows the query string asks for, and the query string without `page`."""
    query = request.GET.copy()
    query.pop("page", None)
    return Paginator(rows, per_page).get_page(request.GET.get("page")), query.urlencode()


def diff_page(request, *, versions, object_name: str, back_url: str):
    """Render the comparison of two published versions (?a=&b=, default the two latest)."""
    older, newer = version_pair(versions, request.GET.get("a"), request.GET.get("b"))
    context = {
        "compare": version_compare(older, newer),
        "versions": versions,
        "object_name": object_name,
        "back_url": back_url,
    }
    return render(request, "core/version_diff.html", context)


def export_response(request, *, obj, kind: str, version_get, metadata: dict | None = None):
    """Answer with the draft (or ?version=) of obj as a spec file (?format=yaml|json)."""
    version = request.GET.get("version")
    spec = version_get(version).spec if version else obj.draft_spec
    return spec_file_response(
        kind=kind,
        name=f"{obj.name}-{version or 'draft'}",
        metadata=metadata if metadata is not None else document_metadata(obj),
        spec=spec,
        fmt=request.GET.get("format", "yaml"),
    )


def import_page(request, *, service, noun: str, template: str, detail_url: str):
    """Show the import form and import a spec file into the current team with the given service."""
    team, _ = current_team(request)
    form = ImportForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if team is None:
            form.add_error(None, f"You are not in a team yet: a {noun} belongs to one team.")
        elif form.is_valid():
            try:
                obj, published, created = service(
                    actor=request.user,
                    team=team,
                    text=form.cleaned_data["document"],
                    publish_version=form.cleaned_data["publish_version"] or None,
                    notes=form.cleaned_data["release_notes"],
                )
                what = "created" if created else "draft replaced"
                if published:
                    what += f", version {published.version} published"
                messages.success(request, f"{noun.capitalize()} {obj.name}: {what}.")
                return redirect(detail_url, pk=obj.pk)
            except ServiceError as exc:
                import_error_to_form(form, exc)
        status = 400
    context = {"form": form, "team": team, "can_create": can_edit(request.user, team), "noun": noun}
    return render(request, template, context, status=status)


def registry_action(request, obj, action: str, forms: dict, *, noun: str, services, version_url: str):
    """Handle the publish, set_owner and update_details actions every tool and prompt page has.

    `services` maps publish, set_owner and update_draft to the registry's services. Returns a
    redirect when the action is done; None when it is not one of these, or its form holds errors
    (the bound form is left in `forms` for the page to show again).
    """
    target = {noun: obj}
    detail_url = request.path
    if action == "publish":
        form = forms["publish_form"] = PublishForm(request.POST)
        if form.is_valid():
            try:
                version = services["publish"](
                    actor=request.user,
                    **target,
                    version=form.cleaned_data["version"],
                    notes=form.cleaned_data["release_notes"],
                )
                messages.success(request, f"Version {version.version} published.")
                return redirect(version_url, pk=obj.pk, version=version.version)
            except ServiceError as exc:
                # The draft's own problems (e.g. a secret not granted) are shown above the form.
                form.add_error("version" if exc.field == "version" else None, exc.message)
    elif action == "set_owner":
        form = forms["owner_form"] = OwnerForm(request.POST)
        if form.is_valid():
            try:
                services["set_owner"](actor=request.user, **target, owner=form.cleaned_data["owner"])
                messages.success(request, f"{obj.owner.username} now owns {obj.name}.")
                return redirect(detail_url)
            except ServiceError as exc:
                error_to_form(form, exc)
    elif action == "update_details":
        form = forms["details_form"] = DetailsForm(request.POST)
        if form.is_valid():
            try:
                services["update_draft"](actor=request.user, **target, description=form.cleaned_data["description"])
                messages.success(request, "Description saved.")
                return redirect(detail_url)
            except ServiceError as exc:
                error_to_form(form, exc)
    return None


def registry_forms(obj, latest, suggestions) -> dict:
    """Return the unbound publish, owner and description forms of a tool or prompt page."""
    return {
        "details_form": DetailsForm(initial={"description": obj.description}),
        "publish_form": PublishForm(initial={"version": suggestions["patch" if latest else "major"]}),
        "owner_form": OwnerForm(initial={"owner": obj.owner.username if obj.owner else ""}),
    }
