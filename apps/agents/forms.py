"""Studio forms: they turn fields a person fills in into the agent spec, and back."""

from __future__ import annotations

import json

from django import forms

from .models import ChannelName, DataClassification, RiskTier


class JSONField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4, "class": "code"})

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}.") from None

    def prepare_value(self, value):
        if isinstance(value, (dict, list)):
            return json.dumps(value, indent=2)
        return value


class AgentCreateForm(forms.Form):
    name = forms.CharField(max_length=63, help_text="Lowercase letters, digits, dots, dashes; unique in the team.")
    description = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    risk_tier = forms.ChoiceField(choices=RiskTier.choices, initial=RiskTier.LOW)
    data_classification = forms.ChoiceField(choices=DataClassification.choices, initial=DataClassification.INTERNAL)
    tags = forms.CharField(max_length=400, required=False, help_text="Comma-separated.")

    def clean_tags(self):
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]


class AgentMetaForm(AgentCreateForm):
    owner = forms.CharField(max_length=150, help_text="Username of a team member.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["name"]


class DraftForm(forms.Form):
    """The Studio's draft editor. Field names map to spec paths in SPEC_FIELD_FOR."""

    model = forms.ChoiceField(label="Model", help_text="Approved models from the catalog.")
    prompt_mode = forms.ChoiceField(
        choices=[("registry", "From the prompt registry"), ("inline", "Written here")], widget=forms.RadioSelect
    )
    prompt_ref = forms.ChoiceField(required=False, label="Prompt")
    prompt_inline = forms.CharField(
        required=False, max_length=100_000, label="Instructions", widget=forms.Textarea(attrs={"rows": 6})
    )
    prompt_variables = JSONField(required=False, label="Prompt variables", help_text='e.g. {"tone": "friendly"}')
    tools = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    handoffs = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    max_steps = forms.IntegerField(min_value=1, max_value=200, initial=10)
    max_tokens = forms.IntegerField(min_value=1, max_value=10_000_000, initial=50_000)
    max_cost_usd = forms.DecimalField(min_value=0, max_digits=10, decimal_places=4, initial=1)
    max_wall_seconds = forms.IntegerField(min_value=1, max_value=86_400, initial=300)
    session_window_turns = forms.IntegerField(
        min_value=0, max_value=200, initial=20, label="Conversation memory (turns)"
    )
    context_spaces = forms.CharField(
        required=False, max_length=2000, help_text="One per line: space-name:read or space-name:write"
    )
    secrets = forms.CharField(
        required=False, max_length=2000, help_text="Secret names granted to this agent, comma-separated."
    )
    simulation = JSONField(
        required=False,
        label="Simulated model script",
        help_text='Only for simulated models: {"script": [{"call": [{"tool": "kb.search", "arguments": '
        '{"q": "{input.question}"}}]}, {"answer": "Found: {result}"}]}',
    )
    input_schema = JSONField(required=False, help_text="JSON Schema of the input; empty for any object.")
    output_schema = JSONField(required=False, help_text="JSON Schema of the output; empty for text.")

    def __init__(self, *args, model_choices, prompt_choices, tool_choices, handoff_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = model_choices
        self.fields["prompt_ref"].choices = [("", "—"), *prompt_choices]
        self.fields["tools"].choices = tool_choices
        self.fields["handoffs"].choices = handoff_choices

    def clean_context_spaces(self):
        spaces = []
        for i, line in enumerate(self.cleaned_data["context_spaces"].splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            space, _, access = line.partition(":")
            if access not in ("read", "write"):
                raise forms.ValidationError(f"Line {i}: write space-name:read or space-name:write.")
            spaces.append({"space": space.strip(), "access": access})
        return spaces

    def clean_secrets(self):
        return [s.strip() for s in self.cleaned_data["secrets"].split(",") if s.strip()]

    def to_spec(self, *, pinned_tools: dict[str, str]) -> dict:
        """Return the spec these fields describe; tools keep their pinned version if already pinned."""
        d = self.cleaned_data
        prompt = (
            {"ref": d["prompt_ref"] or None, "variables": d["prompt_variables"] or {}}
            if d["prompt_mode"] == "registry"
            else {"inline": d["prompt_inline"], "variables": d["prompt_variables"] or {}}
        )
        spec = {
            "model": d["model"],
            "prompt": prompt,
            "tools": [pinned_tools.get(name, name) for name in d["tools"]],
            "handoffs": list(d["handoffs"]),
            "memory": {"session_window_turns": d["session_window_turns"], "context_spaces": d["context_spaces"]},
            "limits": {
                "max_steps": d["max_steps"],
                "max_tokens": d["max_tokens"],
                "max_cost_usd": float(d["max_cost_usd"]),
                "max_wall_seconds": d["max_wall_seconds"],
            },
            "secrets": d["secrets"],
        }
        if d["input_schema"] is not None:
            spec["input_schema"] = d["input_schema"]
        if d["output_schema"] is not None:
            spec["output_schema"] = d["output_schema"]
        if d.get("simulation") is not None:
            spec["simulation"] = d["simulation"]
        return spec

    @staticmethod
    def initial_from_spec(spec: dict) -> dict:
        prompt = spec.get("prompt") or {}
        memory = spec.get("memory") or {}
        limits = spec.get("limits") or {}
        return {
            "model": spec.get("model", ""),
            "prompt_mode": "registry" if prompt.get("ref") else "inline",
            "prompt_ref": prompt.get("ref") or "",
            "prompt_inline": prompt.get("inline") or "",
            "prompt_variables": prompt.get("variables") or {},
            "tools": [t.split("@")[0] for t in spec.get("tools", [])],
            "handoffs": spec.get("handoffs", []),
            "max_steps": limits.get("max_steps", 10),
            "max_tokens": limits.get("max_tokens", 50_000),
            "max_cost_usd": limits.get("max_cost_usd", 1),
            "max_wall_seconds": limits.get("max_wall_seconds", 300),
            "session_window_turns": memory.get("session_window_turns", 20),
            "context_spaces": "\n".join(f"{c['space']}:{c['access']}" for c in memory.get("context_spaces", [])),
            "secrets": ", ".join(spec.get("secrets", [])),
            "input_schema": spec.get("input_schema"),
            "output_schema": spec.get("output_schema"),
            "simulation": spec.get("simulation"),
        }


# Which form field shows an error about which spec path.
SPEC_FIELD_FOR = {
    "model": "model",
    "prompt": "prompt_inline",
    "prompt.ref": "prompt_ref",
    "prompt.inline": "prompt_inline",
    "prompt.variables": "prompt_variables",
    "tools": "tools",
    "handoffs": "handoffs",
    "limits.max_steps": "max_steps",
    "limits.max_tokens": "max_tokens",
    "limits.max_cost_usd": "max_cost_usd",
    "limits.max_wall_seconds": "max_wall_seconds",
    "memory.session_window_turns": "session_window_turns",
    "memory.context_spaces": "context_spaces",
    "secrets": "secrets",
    "input_schema": "input_schema",
    "output_schema": "output_schema",
    "simulation": "simulation",
}


def form_field_for(spec_path: str | None) -> str | None:
    """Return the form field that should show an error about spec_path (None: the whole form)."""
    if not spec_path:
        return None
    base = spec_path.split("[")[0]
    return SPEC_FIELD_FOR.get(spec_path) or SPEC_FIELD_FOR.get(base)


class PublishForm(forms.Form):
    version = forms.CharField(max_length=32, help_text="Semantic version, greater than the latest.")
    release_notes = forms.CharField(max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class PromoteForm(forms.Form):
    version = forms.CharField(max_length=32)
    channel = forms.ChoiceField(choices=ChannelName.choices)
    reason = forms.CharField(max_length=500)


class RollbackForm(forms.Form):
    channel = forms.ChoiceField(choices=ChannelName.choices)
    reason = forms.CharField(max_length=500)
    version = forms.CharField(max_length=32, required=False, help_text="Leave empty for the version it ran before.")


class RetireForm(forms.Form):
    reason = forms.CharField(max_length=500)


class ImportForm(forms.Form):
    document = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 14, "class": "code"}), max_length=512 * 1024
    )
    file = forms.FileField(required=False)
    publish_version = forms.CharField(
        max_length=32, required=False, help_text="Publish the imported draft as this version."
    )

    def clean(self):
        data = super().clean()
        if not data.get("document") and not data.get("file"):
            raise forms.ValidationError("Paste a spec document or choose a file.")
        return data

    def text(self) -> str | bytes:
        upload = self.cleaned_data.get("file")
        return upload.read(512 * 1024 + 1) if upload else self.cleaned_data["document"]


class InventoryFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    team = forms.SlugField(required=False, max_length=50)
    status = forms.ChoiceField(required=False, choices=[("", "Any"), ("active", "Active"), ("retired", "Retired")])
    risk_tier = forms.ChoiceField(required=False, choices=[("", "Any"), *RiskTier.choices])
    owner = forms.CharField(required=False, max_length=150)
    tool = forms.CharField(required=False, max_length=63)
    permission = forms.CharField(required=False, max_length=63)
    model = forms.CharField(required=False, max_length=100)
    external = forms.ChoiceField(required=False, choices=[("", "Any"), ("true", "External"), ("false", "Internal")])


class AgentGrantForm(forms.Form):
    username = forms.CharField(max_length=150)
    permission = forms.ChoiceField(
        choices=[
            ("agent.promote", "Promote to production"),
            ("run.start", "Run"),
            ("run.approve", "Approve tool calls"),
        ]
    )
    action = forms.ChoiceField(choices=[("add", "Grant"), ("remove", "Take back")], initial="add")
