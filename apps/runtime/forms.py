"""Runtime forms: filters of the runs list, the run form, approval decisions, webhooks, schedules, budgets."""

from __future__ import annotations

import json

from django import forms

from apps.agents.models import ChannelName

from .models import RunStatus, Trigger, UncertainChoice
from .services import MAX_INPUT_BYTES

CODE = {"class": "code", "rows": 6, "spellcheck": "false"}
SINCE_CHOICES = [
    ("", "any time"),
    ("1h", "last hour"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
]


class JSONInputField(forms.CharField):
    """A JSON value typed in a textarea; empty means {} (the agent's input schema decides what fits)."""

    widget = forms.Textarea(attrs=CODE)

    def to_python(self, value):
        text = (super().to_python(value) or "").strip()
        if not text:
            return {}
        if len(text.encode()) > MAX_INPUT_BYTES:
            raise forms.ValidationError(f"The input is too large: at most {MAX_INPUT_BYTES // 1024} KB.")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}. "
                'Write a JSON value, e.g. {"question": "Where is my refund?"}.'
            ) from None

    def prepare_value(self, value):
        if isinstance(value, (dict, list)):
            return json.dumps(value, indent=2)
        return value


def _choices(choices, blank: str = "any"):
    return [("", blank), *choices]


class RunFilterForm(forms.Form):
    agent = forms.CharField(required=False, max_length=63, label="Agent")
    status = forms.ChoiceField(required=False, choices=_choices(RunStatus.choices))
    trigger = forms.ChoiceField(required=False, choices=_choices(Trigger.choices))
    since = forms.ChoiceField(required=False, choices=SINCE_CHOICES)
    session = forms.CharField(required=False, max_length=200, label="Session key")
    team = forms.SlugField(required=False, max_length=50)


class RunStartForm(forms.Form):
    input = JSONInputField(required=False, help_text="The run's input as JSON; the agent's input schema checks it.")
    channel = forms.ChoiceField(choices=ChannelName.choices, initial=ChannelName.PRODUCTION)
    session = forms.CharField(
        required=False,
        max_length=200,
        label="Session key",
        help_text="Optional: runs with the same key continue one conversation.",
    )


class PlaygroundForm(forms.Form):
    input = JSONInputField(required=False)
    session = forms.CharField(required=False, max_length=200, label="Session key")


class CancelForm(forms.Form):
    reason = forms.CharField(required=False, max_length=500)


class ApprovalDecideForm(forms.Form):
    """Approve or reject; for an uncertain call, the decision picks one of UncertainChoice."""

    action = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")], required=False)
    decision = forms.ChoiceField(choices=_choices(UncertainChoice.choices, ""), required=False)
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        decision = data.get("decision")
        if decision:
            data["approve"] = decision != UncertainChoice.FAIL
        elif data.get("action"):
            data["approve"] = data["action"] == "approve"
        else:
            raise forms.ValidationError("Choose approve or reject.")
        return data


class WebhookCreateForm(forms.Form):
    name = forms.CharField(max_length=63, help_text="Lowercase letters, digits, dots, dashes, e.g. crm-events.")
    channel = forms.ChoiceField(choices=ChannelName.choices, initial=ChannelName.PRODUCTION)


class EnabledForm(forms.Form):
    enabled = forms.TypedChoiceField(choices=[("1", "on"), ("0", "off")], coerce=lambda v: v == "1")


class ScheduleCreateForm(forms.Form):
    name = forms.CharField(max_length=63, help_text="e.g. nightly")
    cron = forms.CharField(max_length=100, help_text="minute hour day-of-month month day-of-week, e.g. 0 7 * * 1-5")
    timezone_name = forms.CharField(max_length=64, initial="UTC", label="Time zone")
    input = JSONInputField(required=False)
    channel = forms.ChoiceField(choices=ChannelName.choices, initial=ChannelName.PRODUCTION)


class BudgetForm(forms.Form):
    daily_budget_usd = forms.DecimalField(min_value=0, max_digits=12, decimal_places=2, label="Daily budget (USD)")
