from django import forms


def _value_field(label: str = "Value") -> forms.CharField:
    # strip=False: a secret's value is kept byte for byte. render_value=False: never echoed back.
    return forms.CharField(
        label=label,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted; it is never shown again, to anyone.",
    )


class SecretCreateForm(forms.Form):
    scope = forms.ChoiceField(choices=(), help_text="Organisation secrets hold provider API keys (admins only).")
    name = forms.CharField(max_length=63, help_text="How tools and agents refer to it, e.g. crm-api-key.")
    description = forms.CharField(max_length=300, required=False)
    value = _value_field()

    def __init__(self, *args, team=None, org_allowed=False, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("team", f"Team {team.name}")] if team is not None else []
        if org_allowed:
            choices.append(("org", "Organisation"))
        self.fields["scope"].choices = choices
        if len(choices) == 1:
            self.fields["scope"].initial = choices[0][0]
            self.fields["scope"].widget = forms.HiddenInput()


class SecretValueForm(forms.Form):
    value = _value_field("New value")


class SecretDescriptionForm(forms.Form):
    description = forms.CharField(max_length=300, required=False)


class SecretGrantForm(forms.Form):
    grantee = forms.ChoiceField(choices=(), label="Grant to")

    def __init__(self, *args, candidates=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["grantee"].choices = list(candidates)
