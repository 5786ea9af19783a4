from django import forms

from .models import TeamRole, TokenScope


class LoginForm(forms.Form):
    username = forms.CharField(
        max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True})
    )
    password = forms.CharField(max_length=4096, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    monthly_budget = forms.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, help_text="USD per month; 0 for none."
    )


class TeamCreateForm(TeamForm):
    slug = forms.SlugField(
        max_length=50, help_text="Lowercase letters, digits and hyphens; used in URLs and SSO group names."
    )
    field_order = ["slug", "name", "description", "monthly_budget"]


class MembershipAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=TeamRole.choices)


class MembershipRoleForm(forms.Form):
    role = forms.ChoiceField(choices=TeamRole.choices)


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where the token is used, e.g. 'ci-deploy'.")
    scopes = forms.MultipleChoiceField(choices=TokenScope.choices, widget=forms.CheckboxSelectMultiple)
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional, in UTC; at most a year.",
    )


def _grantable_choices():
    from .permissions import PERMISSIONS

    return [(p.name, f"{p.name} — {p.description}") for p in PERMISSIONS.values() if p.grant_codename]


class GrantForm(forms.Form):
    username = forms.CharField(max_length=150)
    permission = forms.ChoiceField(choices=_grantable_choices)
