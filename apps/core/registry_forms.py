"""Forms every versioned registry's pages share: details, publishing, ownership, import, and
how a service's dotted field error lands beside the input it came from."""

from __future__ import annotations

import json

from django import forms

from .exceptions import ServiceError
from .specs import MAX_DOCUMENT_BYTES

TEXTAREA_CODE = {"class": "code", "rows": 10, "spellcheck": "false"}


def parse_json_field(text: str, *, what: str):
    """Return the JSON value in text; raise a ValidationError saying where the syntax breaks."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"{what} is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from None


def split_list(text: str) -> list[str]:
    """Return the items of a comma- or space-separated list."""
    return [item for item in (text or "").replace(",", " ").split() if item]


def error_to_form(form, exc: ServiceError, mapping: dict[str, str] | None = None) -> None:
    """Show a service error beside the form field its dotted path starts with (else on top)."""
    field = exc.field or ""
    mapping = mapping or {}
    target = mapping.get(field)
    if target is None:
        for prefix, name in mapping.items():
            if field.startswith(prefix + ".") or field.startswith(prefix + "["):
                target = name
                break
    if target is None:
        head = field.split(".")[0].split("[")[0]
        target = head if head in form.fields else None
    form.add_error(target if target in form.fields else None, exc.message)


def import_error_to_form(form, exc: ServiceError) -> None:
    """Show an import error beside the document (naming the spec field) or the version to publish."""
    if exc.field == "version":
        form.add_error("publish_version", exc.message)
    elif exc.field in (None, "document"):
        form.add_error("document", exc.message)
    else:
        form.add_error("document", f"{exc.field}: {exc.message}")


class DetailsForm(forms.Form):
    description = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), help_text="A summary for people."
    )


class PublishForm(forms.Form):
    version = forms.CharField(
        max_length=32,
        widget=forms.TextInput(attrs={"list": "version-suggestions"}),
        help_text="major.minor.patch, greater than the latest version.",
    )
    release_notes = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), help_text="What changed and why."
    )


class OwnerForm(forms.Form):
    owner = forms.CharField(max_length=150, help_text="The username of a member of the team.")


class ImportForm(forms.Form):
    document = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={**TEXTAREA_CODE, "rows": 16}),
        help_text="A spec file (YAML or JSON) as exported, with apiVersion fleetdeck/v1.",
    )
    file = forms.FileField(required=False, help_text="Or upload the file.")
    publish_version = forms.CharField(
        required=False, max_length=32, help_text="Optional: publish the imported draft as this version."
    )
    release_notes = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > MAX_DOCUMENT_BYTES:
                raise forms.ValidationError(f"The file is larger than {MAX_DOCUMENT_BYTES // 1024} KiB.")
            data["document"] = upload.read()
        if not data.get("document"):
            self.add_error("document", "Paste a spec file or upload one.")
        return data
