"""Forms of the context pages; the services validate the content, these only parse what was typed."""

from __future__ import annotations

import json

from django import forms

from apps.core.registry_forms import TEXTAREA_CODE, parse_json_field

from .models import Access, EntryKind


class SpaceCreateForm(forms.Form):
    name = forms.CharField(
        max_length=63, help_text="Lowercase, e.g. support-kb: agents list it in memory.context_spaces."
    )
    description = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What the space holds and who keeps it up to date.",
    )


class SpaceDescriptionForm(forms.Form):
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class EntryForm(forms.Form):
    """A fact or a document."""

    kind = forms.ChoiceField(choices=[(EntryKind.FACT, "Fact"), (EntryKind.DOCUMENT, "Document")])
    key = forms.CharField(
        required=False, max_length=100, help_text="Optional short name agents read it by, e.g. refund-policy."
    )
    title = forms.CharField(required=False, max_length=200)
    body = forms.CharField(strip=False, widget=forms.Textarea(attrs={"rows": 12}))
    metadata = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={**TEXTAREA_CODE, "rows": 3}),
        help_text='Optional JSON object, e.g. {"source": "wiki"}.',
    )

    def clean_metadata(self):
        value = parse_json_field(self.cleaned_data["metadata"], what="The metadata")
        return {} if value is None else value

    @staticmethod
    def initial_from(entry) -> dict:
        return {
            "kind": entry.kind,
            "key": entry.key,
            "title": entry.title,
            "body": entry.body,
            "metadata": json.dumps(entry.metadata, indent=2) if entry.metadata else "",
        }


class DecisionForm(forms.Form):
    title = forms.CharField(max_length=200, help_text="What was decided, in one line.")
    rationale = forms.CharField(strip=False, widget=forms.Textarea(attrs={"rows": 8}), help_text="Why.")
    decided_by = forms.CharField(required=False, max_length=200, help_text="Who decided; leave empty for yourself.")


class StateWriteForm(forms.Form):
    key = forms.CharField(max_length=100, help_text="e.g. current-incident or rollout.step.")
    value = forms.CharField(
        strip=False, widget=forms.Textarea(attrs={**TEXTAREA_CODE, "rows": 6}), help_text="Any JSON value."
    )
    expected_version = forms.IntegerField(
        min_value=0,
        initial=0,
        widget=forms.HiddenInput,
        help_text="The version this value replaces (0: a new key).",
    )

    def clean_value(self):
        text = self.cleaned_data["value"]
        if not (text or "").strip():
            raise forms.ValidationError('Type a JSON value, e.g. {"step": 2} or "open".')
        return parse_json_field(text, what="The value")


class GrantForm(forms.Form):
    agent = forms.ChoiceField(choices=[])
    access = forms.ChoiceField(choices=Access.choices, initial=Access.READ)

    def __init__(self, *args, candidates=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].choices = [(a.pk, a.name) for a in candidates]


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=500, label="Search")
    kind = forms.ChoiceField(required=False, choices=[("", "all kinds"), *EntryKind.choices])
