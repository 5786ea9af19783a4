from django import forms

from .models import ModelStatus, ProviderKind


class ModelFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *ModelStatus.choices])
    provider = forms.ChoiceField(required=False, choices=[("", "Any provider")])

    def __init__(self, *args, providers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [("", "Any provider"), *[(p.name, p.display_name) for p in providers]]


def _price(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label, max_digits=12, decimal_places=6, min_value=0, initial=0, help_text="USD per million tokens."
    )


class ModelEditForm(forms.Form):
    display_name = forms.CharField(max_length=100, required=False)
    status = forms.ChoiceField(
        choices=ModelStatus.choices,
        help_text="Deprecated and blocked models cannot be chosen for new agent versions.",
    )
    input_price_per_mtok = _price("Input price")
    output_price_per_mtok = _price("Output price")
    cached_input_price_per_mtok = _price("Cached input price")
    context_window = forms.IntegerField(min_value=1, initial=8192, help_text="Tokens.")
    max_output_tokens = forms.IntegerField(min_value=1, initial=4096, help_text="Tokens.")
    supports_tools = forms.BooleanField(required=False, initial=True, label="Supports tool calls")
    notes = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3}))


class ModelCreateForm(ModelEditForm):
    provider = forms.ChoiceField(choices=())
    name = forms.CharField(max_length=100, help_text="The provider's model id, e.g. gpt-4o-mini.")
    field_order = ["provider", "name"]

    def __init__(self, *args, providers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(p.name, p.display_name) for p in providers]


class ProviderEditForm(forms.Form):
    display_name = forms.CharField(max_length=100, required=False)
    kind = forms.ChoiceField(choices=ProviderKind.choices)
    # A CharField: in-cluster endpoints such as http://vllm:8000/v1 are valid; the service checks the URL.
    base_url = forms.CharField(
        max_length=500, required=False, help_text="Required for OpenAI-compatible endpoints, e.g. http://vllm:8000/v1."
    )
    api_key_secret = forms.ChoiceField(
        required=False,
        label="API key secret",
        help_text="An organisation secret holding the key; choosing it grants it to this provider.",
    )
    timeout_seconds = forms.IntegerField(min_value=1, max_value=3600, initial=60)
    max_retries = forms.IntegerField(min_value=0, max_value=10, initial=2)
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, secrets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["api_key_secret"].choices = [("", "No key"), *[(s.name, s.name) for s in secrets]]


class ProviderCreateForm(ProviderEditForm):
    name = forms.CharField(max_length=63, help_text="Used in model references: <provider>/<model>.")
    field_order = ["name"]
