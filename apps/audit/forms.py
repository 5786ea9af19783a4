from django import forms

from .models import Outcome


class AuditFilterForm(forms.Form):
    action = forms.CharField(required=False, max_length=100, help_text="Starts with, e.g. 'auth.' or 'token.create'")
    actor = forms.CharField(required=False, max_length=100)
    team = forms.SlugField(required=False, max_length=50)
    outcome = forms.ChoiceField(required=False, choices=[("", "Any"), *Outcome.choices])
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, max_length=200, label="Text")
