"""Prompt test data made through the real services."""

from __future__ import annotations

from apps.prompts import services

SPEC = {
    "template": "You help customers of {{ company }}. Greet {{customer}} by name.",
    "variables": [
        {"name": "company", "description": "The company's name."},
        {"name": "customer", "required": False, "default": "there"},
    ],
}


def prompt_with_versions(*, actor, team, name: str = "greeting", versions=("1.0.0",), draft_change=False):
    """Create a prompt and publish one version per entry (changing the template between them)."""
    prompt = services.prompt_create(actor=actor, team=team, name=name, spec=SPEC)
    for i, version in enumerate(versions):
        if i:
            spec = {**SPEC, "template": SPEC["template"] + f" Revision {i}."}
            services.prompt_update_draft(actor=actor, prompt=prompt, spec=spec)
        services.prompt_publish(actor=actor, prompt=prompt, version=version, notes=f"Release {version}")
    if draft_change:
        services.prompt_update_draft(actor=actor, prompt=prompt, spec={**SPEC, "template": SPEC["template"] + " WIP."})
    return prompt
