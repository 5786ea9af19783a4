"""Pieces every versioned registry (tools, prompts, agents) shares in its views and API.

Written once (STYLE.md 5): comparing two versions, and answering with a spec file.
"""

from __future__ import annotations

from django.http import Http404, HttpResponse

from .specs import dump_document
from .versioning import spec_diff


def version_pair(versions, a: str | None, b: str | None):
    """Return (older, newer) versions named a and b from the queryset; default: the two latest."""
    if a and b:
        found = {v.version: v for v in versions.filter(version__in=[a, b])}
        if a not in found or b not in found:
            missing = a if a not in found else b
            raise Http404(f"No version {missing}.")
        return found[a], found[b]
    latest = list(versions.order_by("-major", "-minor", "-patch")[:2])
    if len(latest) < 2:
        raise Http404("There is only one version: publish another to compare.")
    return latest[1], latest[0]


def version_compare(older, newer) -> dict:
    """Return what a diff page or API answer shows: both versions and the list of changes."""
    return {
        "from": {"version": older.version, "content_hash": older.content_hash},
        "to": {"version": newer.version, "content_hash": newer.content_hash},
        "changes": spec_diff(older.spec, newer.spec),
    }


def spec_file_response(*, kind: str, name: str, metadata: dict, spec: dict, fmt: str) -> HttpResponse:
    """Answer with a downloadable spec file (YAML by default, JSON with fmt=json)."""
    fmt = "json" if fmt == "json" else "yaml"
    body = dump_document(kind=kind, metadata=metadata, spec=spec, fmt=fmt)
    content_type = "application/json" if fmt == "json" else "application/yaml"
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response
