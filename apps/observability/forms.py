"""Forms of the alert pages; the services validate the rule, these only parse what was typed."""

from __future__ import annotations

from django import forms

from apps.agents.models import Agent

from .models import AlertKind


class AlertRuleForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the alert is about, e.g. Payments failure rate.")
    kind = forms.ChoiceField(choices=AlertKind.choices, label="Measure")
    threshold = forms.DecimalField(
        max_digits=14,
        decimal_places=4,
        help_text="Fires when the value is above it: a percentage for budget, failure rate and cost rise; "
        "milliseconds for latency; USD for a run's cost.",
    )
    agent = forms.ModelChoiceField(queryset=Agent.objects.none(), required=False, empty_label="every agent of the team")
    window_minutes = forms.IntegerField(
        min_value=1,
        initial=60,
        label="Window (minutes)",
        help_text="The period failure rate, latency and run cost are measured over. "
        "Budget counts the month; cost rise compares the last 7 days with the 7 before.",
    )
    webhook_url = forms.CharField(
        required=False,
        max_length=500,
        label="Webhook URL",
        help_text="Optional: each event is POSTed here as JSON. Public http(s) addresses only.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, team=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the team's own agents can be chosen; a rule never names another team's agent.
        self.fields["agent"].queryset = (
            Agent.objects.filter(team=team).order_by("name") if team else Agent.objects.none()
        )
