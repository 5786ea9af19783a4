"""Forms of the prompt pages: the editor, labels and filters (publish, owner, import forms are shared)."""

from __future__ import annotations

import json

from django import forms

from apps.core.registry_forms import TEXTAREA_CODE, parse_json_field

from .selectors import LABEL_NAMES
from .specs import IDENTIFIER_RE, template_placeholders


class PromptEditorForm(forms.Form):
    """The prompt editor: the template and the declared variables as JSON."""

    template = forms.CharField(
        strip=False,
        widget=forms.Textarea(attrs={**TEXTAREA_CODE, "rows": 14}),
        help_text="The prompt text; write a variable as {{ name }}.",
    )
    variables = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={**TEXTAREA_CODE, "rows": 8}),
        help_text='A JSON list: [{"name": "order_id", "description": "", "required": true, "default": null}].',
    )

    def clean_variables(self):
        value = parse_json_field(self.cleaned_data["variables"], what="The variables")
        return [] if value is None else value

    def spec(self) -> dict:
        """Return the spec the form describes (validated by the service, not here)."""
        return {"template": self.cleaned_data["template"], "variables": self.cleaned_data["variables"]}

    @staticmethod
    def initial_from_spec(spec: dict) -> dict:
        return {"template": spec.get("template", ""), "variables": json.dumps(spec.get("variables", []), indent=2)}

    @staticmethod
    def declare_detected(spec: dict) -> dict:
        """Return spec with a declaration added for each placeholder and unused declarations dropped."""
        declared = [v for v in spec.get("variables", []) if isinstance(v, dict)]
        used = [n for n in template_placeholders(spec.get("template", "")) if IDENTIFIER_RE.match(n)]
        names = {v.get("name") for v in declared}
        kept = [v for v in declared if v.get("name") in used]
        added = [{"name": n, "description": "", "required": True, "default": None} for n in used if n not in names]
        return {**spec, "variables": kept + added}


class PromptCreateForm(PromptEditorForm):
    name = forms.CharField(
        max_length=63, help_text="Lowercase, e.g. support-reply: agents refer to it as name@version."
    )
    description = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), help_text="What the prompt is for."
    )
    field_order = ["name", "description"]


class LabelForm(forms.Form):
    name = forms.ChoiceField(choices=[(n, n) for n in LABEL_NAMES], label="Label")
    version = forms.CharField(max_length=32, help_text="The published version the label points at.")
    candidate = forms.CharField(
        required=False, max_length=32, help_text="Optional: a newer version to roll out to part of the traffic."
    )
    rollout_percent = forms.IntegerField(
        required=False, initial=0, label="Rollout %", help_text="Share of callers served the candidate (0-99)."
    )


class PromptFilterForm(forms.Form):
    team = forms.SlugField(required=False, max_length=50)
    q = forms.CharField(required=False, max_length=100, label="Search")
