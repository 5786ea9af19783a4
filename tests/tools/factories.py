"""Tool test data made through the real services (so drafts and versions are valid and audited)."""

from __future__ import annotations

import copy

from apps.tools import services

HTTP_SPEC = {
    "description": "Look up a customer in the CRM by id.",
    "kind": "http",
    "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
    "config": {"method": "GET", "url": "https://crm.example.com/customers/{id}"},
    "permissions_required": ["crm.read"],
}
CONTEXT_SPEC = {
    "description": "Search the shared facts.",
    "kind": "context",
    "config": {"operation": "search", "space": "shared"},
}


def http_spec(**changes) -> dict:
    """Return a valid HTTP tool spec with the given top-level keys changed."""
    spec = copy.deepcopy(HTTP_SPEC)
    spec.update(changes)
    return spec


def tool_with_versions(*, actor, team, name: str = "crm-lookup", versions=("1.0.0",), draft_change: bool = False):
    """Create a tool and publish one version per entry (changing the draft between them)."""
    tool = services.tool_create(actor=actor, team=team, name=name, spec=http_spec())
    for i, version in enumerate(versions):
        if i:
            services.tool_update_draft(actor=actor, tool=tool, spec=http_spec(description=f"Revision {i}."))
        services.tool_publish(actor=actor, tool=tool, version=version, notes=f"Release {version}")
    if draft_change:
        services.tool_update_draft(actor=actor, tool=tool, spec=http_spec(description="Work in progress."))
    return tool
