"""The model catalog: which providers and models the organisation supports, and their prices."""

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

name_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9._-]{0,62}$", "Use lowercase letters, digits, dots, dashes and underscores."
)


class ProviderKind(models.TextChoices):
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible endpoint"
    ANTHROPIC = "anthropic", "Anthropic"
    SIMULATED = "simulated", "Simulated (built-in, deterministic)"


class Provider(models.Model):
    """Where models are served. Organisation-wide: only platform admins change the catalog."""

    name = models.CharField(max_length=63, unique=True, validators=[name_validator])
    display_name = models.CharField(max_length=100)
    kind = models.CharField(max_length=32, choices=ProviderKind.choices)
    base_url = models.URLField(
        blank=True, max_length=500, help_text="For OpenAI-compatible endpoints (vLLM, Ollama, Azure...)."
    )
    api_key_secret = models.ForeignKey(
        "governance.Secret",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="providers",
        help_text="An organisation secret holding the API key.",
    )
    timeout_seconds = models.PositiveIntegerField(default=60)
    max_retries = models.PositiveIntegerField(default=2)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name or self.name


class ModelStatus(models.TextChoices):
    APPROVED = "approved", "Approved"
    DEPRECATED = "deprecated", "Deprecated"
    BLOCKED = "blocked", "Blocked"


class Model(models.Model):
    """A model at a provider, with its status and prices per million tokens (USD)."""

    provider = models.ForeignKey("catalog.Provider", on_delete=models.PROTECT, related_name="models")
    name = models.CharField(max_length=100, help_text="The provider's model id, e.g. gpt-4o-mini.")
    display_name = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.APPROVED)
    input_price_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, default=0, validators=[MinValueValidator(0)]
    )
    output_price_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, default=0, validators=[MinValueValidator(0)]
    )
    cached_input_price_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, default=0, validators=[MinValueValidator(0)]
    )
    context_window = models.PositiveIntegerField(default=8192)
    max_output_tokens = models.PositiveIntegerField(default=4096)
    supports_tools = models.BooleanField(default=True)
    notes = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["provider__name", "name"]
        constraints = [models.UniqueConstraint(fields=["provider", "name"], name="catalog_model_unique_per_provider")]

    def __str__(self) -> str:
        return self.ref

    @property
    def ref(self) -> str:
        """Return how specs name this model: `<provider>/<model>`."""
        return f"{self.provider.name}/{self.name}"


class ModelPrice(models.Model):
    """A model's earlier prices and until when they applied, so a call is priced as it was then.

    A row is written each time a model's prices change; the model row holds the prices from the
    latest change on (see `apps.observability.pricing.price_at`).
    """

    model = models.ForeignKey("catalog.Model", on_delete=models.CASCADE, related_name="price_history")
    input_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    output_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    cached_input_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    effective_from = models.DateTimeField()
    effective_until = models.DateTimeField()

    class Meta:
        ordering = ["model", "effective_until"]
        indexes = [models.Index(fields=["model", "effective_until"], name="model_price_until")]

    def __str__(self) -> str:
        return f"{self.model_id} until {self.effective_until:%Y-%m-%d %H:%M}"
