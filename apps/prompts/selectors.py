"""Reads of the prompt registry, filtered by what the user may see (another team's prompt is a 404)."""

from __future__ import annotations

import hashlib

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from apps.accounts.selectors import team_list
from apps.core.drafts import is_semver, latest_version, ref_split
from apps.core.exceptions import ServiceError

from .models import Prompt, PromptLabel, PromptVersion
from .specs import prompt_render as prompt_render  # re-exported: callers render where they resolve
from .specs import template_placeholders

LABEL_NAMES = ["production", "staging"]


def prompt_list(*, user, filters: dict | None = None) -> QuerySet[Prompt]:
    """Return the prompts of the teams the user may see, with their latest version annotated.

    Filters: team (slug), q (name or description contains).
    """
    latest = PromptVersion.objects.filter(prompt=OuterRef("pk")).order_by("-major", "-minor", "-patch")
    qs = (
        Prompt.objects.filter(team__in=team_list(user=user))
        .select_related("team", "owner")
        .prefetch_related("labels__version", "labels__candidate")
        .annotate(latest_version=Subquery(latest.values("version")[:1]))
    )
    filters = filters or {}
    if filters.get("team"):
        qs = qs.filter(team__slug=filters["team"])
    if filters.get("q"):
        qs = qs.filter(Q(name__icontains=filters["q"]) | Q(description__icontains=filters["q"]))
    return qs.order_by("team__slug", "name")


def prompt_get(*, user, pk) -> Prompt:
    """Return the prompt if the user may see it, else raise Http404."""
    try:
        return prompt_list(user=user).get(pk=pk)
    except (Prompt.DoesNotExist, ValueError, TypeError):
        raise Http404("No such prompt.") from None


def promptversion_list(*, prompt: Prompt) -> QuerySet[PromptVersion]:
    """Return the prompt's published versions, newest first (the prompt was read through prompt_get)."""
    return prompt.versions.select_related("author").order_by("-major", "-minor", "-patch")


def promptversion_get(*, prompt: Prompt, version: str) -> PromptVersion:
    """Return one published version of the prompt, else raise Http404."""
    found = promptversion_list(prompt=prompt).filter(version=version).first()
    if found is None:
        raise Http404(f"No version {version} of {prompt.name}.")
    return found


def promptlabel_list(*, prompt: Prompt) -> QuerySet[PromptLabel]:
    """Return the prompt's labels (production, staging) with their versions."""
    return prompt.labels.select_related("version", "candidate", "updated_by").order_by("name")


def prompt_variables(spec: dict) -> list[dict]:
    """Return the variables an editor shows: each placeholder of the template and whether it is declared."""
    declared = {v.get("name"): v for v in spec.get("variables", []) if isinstance(v, dict)}
    rows = [
        {"name": name, "declared": name in declared, "used": True, **declared.get(name, {})}
        for name in template_placeholders(spec.get("template", ""))
    ]
    used = {row["name"] for row in rows}
    rows += [{**v, "declared": True, "used": False} for name, v in declared.items() if name not in used]
    return rows


def _bucket(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100


def prompt_version_resolve(*, team, ref: str, key: str | None = None) -> PromptVersion:
    """Return the prompt version a reference names within the team.

    ref is "name@1.2.0", "name@production" (a label), or "name" for the latest published version.
    Another team's prompt is "not found" like a missing one. A label in rollout serves its
    candidate to rollout_percent of the keys (e.g. session ids); without a key, its stable version.
    """
    name, suffix = ref_split(ref)
    prompt = Prompt.objects.filter(team=team, name=name).first()
    if prompt is None:
        raise ServiceError(
            f"No prompt named '{name}' in team {team.slug}: check the name or create the prompt.", field="ref"
        )
    if suffix is None:
        found = latest_version(prompt.versions.all())
        if found is None:
            raise ServiceError(f"Prompt {name} has no published version yet: publish its draft first.", field="ref")
    elif is_semver(suffix):
        found = prompt.versions.filter(version=suffix).first()
        if found is None:
            latest = latest_version(prompt.versions.all())
            hint = f" (latest is {latest.version})" if latest else " (it has no published version yet)"
            raise ServiceError(f"Prompt {name} has no version {suffix}{hint}.", field="version")
    else:
        label = prompt.labels.select_related("version", "candidate").filter(name=suffix).first()
        if label is None:
            known = ", ".join(prompt.labels.values_list("name", flat=True)) or "none yet"
            raise ServiceError(
                f"Prompt {name} has no label '{suffix[:40]}' (labels: {known}); give a version like 1.2.0 "
                f"or one of the labels {', '.join(LABEL_NAMES)}.",
                field="version",
            )
        found = label.version
        if label.candidate_id and key is not None and _bucket(f"{prompt.pk}:{key}") < label.rollout_percent:
            found = label.candidate
    found.prompt = prompt
    return found
