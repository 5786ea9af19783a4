"""Forms of the tool pages: the tool builder, publishing, ownership, deprecation, import, filters.

Forms only parse input (JSON text, numbers, lists); the spec's rules live in apps/tools/specs.py,
and a ServiceError's dotted field is shown beside the input it came from (`error_to_form`).
"""

from __future__ import annotations

import copy
import json

from django import forms

from apps.core.registry_forms import (  # noqa: F401 - re-exported for the tool views
    TEXTAREA_CODE,
    DetailsForm,
    ImportForm,
    OwnerForm,
    PublishForm,
    error_to_form,
    import_error_to_form,
    parse_json_field,
    split_list,
)

from .models import SideEffect, ToolKind
from .specs import DEFAULT_PARAMETERS

SPEC_FIELD_MAP = {
    "sandbox.cpu_seconds": "sandbox_cpu_seconds",
    "sandbox.memory_mb": "sandbox_memory_mb",
    "sandbox.timeout_s": "sandbox_timeout_s",
    "sandbox.network": "sandbox_network",
    "sandbox": "sandbox_cpu_seconds",
    "rate_limit.calls": "rate_limit_calls",
    "rate_limit.per_seconds": "rate_limit_per_seconds",
    "rate_limit": "rate_limit_calls",
    "description": "spec_description",
}


class ToolBuilderForm(forms.Form):
    """The tool builder: every field of the spec, with JSON text areas for parameters and config."""

    spec_description = forms.CharField(
        label="Description for the model",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the tool does and when to use it: the model reads this.",
    )
    kind = forms.ChoiceField(choices=ToolKind.choices)
    parameters = forms.CharField(
        label="Parameters (JSON Schema)",
        required=False,
        widget=forms.Textarea(attrs=TEXTAREA_CODE),
        help_text='A JSON Schema of type object: {"type": "object", "properties": {"id": {"type": "string"}}}.',
    )
    config = forms.CharField(
        label="Configuration (JSON)",
        required=False,
        widget=forms.Textarea(attrs=TEXTAREA_CODE),
        help_text="What the kind needs: http {method, url, query, headers, body, timeout_s}; python {code, "
        "entrypoint}; agent_handoff {agent}; mcp {transport, url or command, tool_name}; context {operation, space}.",
    )
    permissions_required = forms.CharField(
        required=False, max_length=2000, help_text="Labels separated by commas, e.g. crm.write, code_execution."
    )
    secrets = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Secret names the tool uses (in headers as {{secrets.NAME}}); each must be granted to the tool.",
    )
    side_effect = forms.ChoiceField(choices=SideEffect.choices, initial=SideEffect.READ)
    requires_approval = forms.BooleanField(required=False, help_text="A person approves each call.")
    audit = forms.BooleanField(required=False, initial=True, help_text="Record every call in the audit log.")
    cost_per_call = forms.FloatField(required=False, initial=0, label="Cost per call (USD)")
    rate_limit_calls = forms.IntegerField(required=False, label="Rate limit: calls", help_text="Empty for none.")
    rate_limit_per_seconds = forms.IntegerField(required=False, initial=60, label="per seconds")
    sandbox_cpu_seconds = forms.IntegerField(required=False, initial=10, label="Sandbox CPU seconds")
    sandbox_memory_mb = forms.IntegerField(required=False, initial=256, label="Sandbox memory (MB)")
    sandbox_timeout_s = forms.IntegerField(required=False, initial=30, label="Sandbox timeout (s)")
    sandbox_network = forms.BooleanField(required=False, label="Sandbox may use the network")

    def clean_parameters(self):
        value = parse_json_field(self.cleaned_data["parameters"], what="The parameters schema")
        return copy.deepcopy(DEFAULT_PARAMETERS) if value is None else value

    def clean_config(self):
        value = parse_json_field(self.cleaned_data["config"], what="The configuration")
        return {} if value is None else value

    def spec(self) -> dict:
        """Return the spec the form describes (validated by the service, not here)."""
        data = self.cleaned_data
        rate_limit = {"calls": data.get("rate_limit_calls"), "per_seconds": data.get("rate_limit_per_seconds")}
        sandbox = {
            "cpu_seconds": data.get("sandbox_cpu_seconds"),
            "memory_mb": data.get("sandbox_memory_mb"),
            "timeout_s": data.get("sandbox_timeout_s"),
            "network": data.get("sandbox_network", False),
        }
        return {
            "description": data["spec_description"],
            "kind": data["kind"],
            "parameters": data["parameters"],
            "config": data["config"],
            "permissions_required": split_list(data.get("permissions_required")),
            "secrets": split_list(data.get("secrets")),
            "side_effect": data["side_effect"],
            "requires_approval": data.get("requires_approval", False),
            "audit": data.get("audit", False),
            "cost_per_call": data.get("cost_per_call") or 0,
            "rate_limit": {k: v for k, v in rate_limit.items() if v is not None},
            "sandbox": {k: v for k, v in sandbox.items() if v is not None},
        }

    @staticmethod
    def initial_from_spec(spec: dict) -> dict:
        """Return the form's initial values for a (normalised) spec."""
        sandbox = spec.get("sandbox") or {}
        rate_limit = spec.get("rate_limit") or {}
        return {
            "spec_description": spec.get("description", ""),
            "kind": spec.get("kind", ToolKind.HTTP),
            "parameters": json.dumps(spec.get("parameters", DEFAULT_PARAMETERS), indent=2),
            "config": json.dumps(spec.get("config", {}), indent=2),
            "permissions_required": ", ".join(spec.get("permissions_required", [])),
            "secrets": ", ".join(spec.get("secrets", [])),
            "side_effect": spec.get("side_effect", SideEffect.READ),
            "requires_approval": spec.get("requires_approval", False),
            "audit": spec.get("audit", True),
            "cost_per_call": spec.get("cost_per_call", 0),
            "rate_limit_calls": rate_limit.get("calls"),
            "rate_limit_per_seconds": rate_limit.get("per_seconds", 60),
            "sandbox_cpu_seconds": sandbox.get("cpu_seconds", 10),
            "sandbox_memory_mb": sandbox.get("memory_mb", 256),
            "sandbox_timeout_s": sandbox.get("timeout_s", 30),
            "sandbox_network": sandbox.get("network", False),
        }


class ToolCreateForm(ToolBuilderForm):
    name = forms.CharField(max_length=63, help_text="Lowercase, e.g. crm-lookup: agents refer to it as name@version.")
    description = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Summary for people",
        help_text="Optional; defaults to the description for the model.",
    )
    field_order = ["name", "description"]


class DeprecateForm(forms.Form):
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 2}), help_text="Why, and what to use instead."
    )


class ToolFilterForm(forms.Form):
    """The filters of the tool list page and API."""

    team = forms.SlugField(required=False, max_length=50)
    kind = forms.ChoiceField(required=False, choices=[("", "any kind"), *ToolKind.choices])
    side_effect = forms.ChoiceField(required=False, choices=[("", "any side effect"), *SideEffect.choices])
    deprecated = forms.NullBooleanField(
        required=False,
        widget=forms.Select(choices=[("", "deprecated or not"), ("true", "deprecated"), ("false", "in use")]),
    )
    q = forms.CharField(required=False, max_length=100, label="Search")
