"""A small registry to build agents from: catalog models, tools and a prompt in team payments."""

import pytest

from apps.catalog.models import Model, Provider
from apps.core.versioning import spec_hash
from apps.prompts.models import Prompt, PromptVersion
from apps.tools.models import Tool, ToolVersion


def make_tool(team, name, *, permissions=(), side_effect="read", kind="http", version="1.0.0", deprecated=False):
    """Create a tool with one published version (rows as the tools service leaves them)."""
    tool = Tool.objects.create(team=team, name=name, description=f"{name} tool", deprecated=deprecated)
    spec = {
        "description": f"{name} tool",
        "kind": kind,
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        "config": {"method": "GET", "url": "https://api.example.com/{q}"},
        "permissions_required": list(permissions),
        "side_effect": side_effect,
        "secrets": [],
    }
    major, minor, patch = (int(p) for p in version.split("."))
    ToolVersion.objects.create(
        tool=tool,
        version=version,
        major=major,
        minor=minor,
        patch=patch,
        spec=spec,
        content_hash=spec_hash(spec),
        kind=kind,
        side_effect=side_effect,
        permissions_required=list(permissions),
    )
    return tool


class Registry:
    def __init__(self, world):
        provider, _ = Provider.objects.get_or_create(
            name="simulated", defaults={"display_name": "Simulated", "kind": "simulated"}
        )
        self.model, _ = Model.objects.get_or_create(
            provider=provider, name="sim-small", defaults={"status": "approved"}
        )
        self.big_model, _ = Model.objects.get_or_create(
            provider=provider, name="sim-large", defaults={"status": "approved"}
        )
        self.blocked, _ = Model.objects.get_or_create(provider=provider, name="sim-old", defaults={"status": "blocked"})
        self.search = make_tool(world.team, "kb.search", permissions=["kb.read"])
        self.crm = make_tool(world.team, "crm.update", permissions=["crm.write"], side_effect="write")
        self.old = make_tool(world.team, "legacy", deprecated=True)
        self.foreign = make_tool(world.other_team, "support.only", permissions=["tickets.read"])
        prompt = Prompt.objects.create(team=world.team, name="support-reply")
        pspec = {
            "template": "Answer in a {{ tone }} tone.",
            "variables": [{"name": "tone", "description": "", "required": True, "default": None}],
        }
        self.prompt_version = PromptVersion.objects.create(
            prompt=prompt, version="1.0.0", major=1, minor=0, patch=0, spec=pspec, content_hash=spec_hash(pspec)
        )


@pytest.fixture
def registry(world):
    return Registry(world)


def spec(**overrides):
    """Return a valid agent spec for team payments, with overrides."""
    base = {
        "model": "simulated/sim-small",
        "prompt": {"ref": "support-reply@1.0.0", "variables": {"tone": "friendly"}},
        "tools": ["kb.search@1.0.0", "crm.update"],
        "limits": {"max_steps": 8},
    }
    base.update(overrides)
    return base
