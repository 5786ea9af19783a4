"""Price model calls and tool calls as the catalog priced them at the time of the call.

A call's cost = uncached input tokens x input price + cached input tokens x cached price
+ output tokens x output price (per million tokens), plus, for a tool call, the tool's cost per
call. A cached-input price of 0 in the catalog means "no discount listed": cached tokens are then
charged at the input price. Lookups are cached per process for a minute, since ingest prices
thousands of spans a second and the catalog changes rarely.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

MILLION = Decimal(1_000_000)
CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Prices:
    input: Decimal
    output: Decimal
    cached: Decimal


@dataclass(frozen=True)
class PricedModel:
    id: int
    name: str
    provider: str
    current: Prices
    # (effective_until, prices) ascending: earlier prices and when they stopped applying.
    history: tuple[tuple[datetime, Prices], ...]


_models: dict[str, list[PricedModel]] = {}
_loaded_at = 0.0
_tool_costs: dict[tuple[int, str], tuple[float, Decimal]] = {}


def forget() -> None:
    """Drop the cached catalog (after a price change in this process, and between tests)."""
    global _loaded_at
    _models.clear()
    _tool_costs.clear()
    _loaded_at = 0.0


def _load() -> dict[str, list[PricedModel]]:
    global _loaded_at
    if _models and time.monotonic() - _loaded_at < CACHE_SECONDS:
        return _models
    from apps.catalog.models import Model, ModelPrice

    history: dict[int, list] = {}
    for row in ModelPrice.objects.order_by("model_id", "effective_until"):
        history.setdefault(row.model_id, []).append(
            (
                row.effective_until,
                Prices(row.input_price_per_mtok, row.output_price_per_mtok, row.cached_input_price_per_mtok),
            )
        )
    fresh: dict[str, list[PricedModel]] = {}
    for model in Model.objects.select_related("provider"):
        priced = PricedModel(
            id=model.pk,
            name=model.name,
            provider=model.provider.name,
            current=Prices(model.input_price_per_mtok, model.output_price_per_mtok, model.cached_input_price_per_mtok),
            history=tuple(history.get(model.pk, ())),
        )
        fresh.setdefault(model.name.lower(), []).append(priced)
        fresh.setdefault(f"{model.provider.name}/{model.name}".lower(), []).append(priced)
    _models.clear()
    _models.update(fresh)
    _loaded_at = time.monotonic()
    return _models


def model_find(name: str, provider: str = "") -> PricedModel | None:
    """Return the catalog model a span names (`gpt-4o-mini`, `openai/gpt-4o-mini`, or a dated snapshot).

    With several providers serving the same model name, the one matching `provider` wins. A
    response model such as `gpt-4o-mini-2024-07-18` matches the longest catalog name it starts with.
    """
    name = (name or "").strip().lower()
    if not name:
        return None
    catalog = _load()
    candidates = catalog.get(name)
    if not candidates:
        best = ""
        for known in catalog:
            if "/" not in known and name.startswith(known) and len(known) > len(best):
                best = known
        candidates = catalog.get(best) if best else None
    if not candidates:
        return None
    provider = (provider or "").lower()
    for candidate in candidates:
        if provider and candidate.provider.lower() == provider:
            return candidate
    return candidates[0]


def price_at(model: PricedModel, at: datetime) -> Prices:
    """Return the model's prices in force at the given time."""
    for until, prices in model.history:
        if at < until:
            return prices
    return model.current


def call_cost(prices: Prices, *, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> Decimal:
    """Return a model call's USD cost (input tokens include the cached ones, as providers report them)."""
    cached = min(max(cached_tokens, 0), max(input_tokens, 0))
    cached_price = prices.cached if prices.cached > 0 else prices.input
    total = (
        Decimal(input_tokens - cached) * prices.input
        + Decimal(cached) * cached_price
        + Decimal(output_tokens) * prices.output
    )
    # Half up, as PostgreSQL rounds the runtime's costs when it stores them in numeric(14, 6).
    return (total / MILLION).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def tool_cost(team_id: int, tool_name: str) -> Decimal:
    """Return the cost per call of the team's registered tool of that name (its newest version), or 0."""
    key = (team_id, tool_name)
    cached = _tool_costs.get(key)
    if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    from apps.tools.models import ToolVersion

    version = (
        ToolVersion.objects.filter(tool__team_id=team_id, tool__name=tool_name)
        .order_by("-created_at")
        .values_list("spec", flat=True)
        .first()
    )
    cost = Decimal(str((version or {}).get("cost_per_call") or 0)) if isinstance(version, dict) else Decimal(0)
    _tool_costs[key] = (time.monotonic(), cost)
    return cost
