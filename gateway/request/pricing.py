"""Provider facts, read once at start-up: where a model string is served and what it costs.

Both come from litellm's bundled data files (its model cost map and its OpenAI-compatible
provider list), read as plain JSON so that `serve` never imports litellm itself (that import
costs seconds and hundreds of MB). The request path only does dictionary lookups.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from gateway.experiments.config import Price, Variant

# OpenAI-compatible chat endpoints of the providers litellm's providers.json does not list.
KNOWN_BASES: dict[str, str] = {
    "openrouter": "https://openrouter.ai/api/v1",
    "together_ai": "https://api.together.xyz/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
    "mistral": "https://api.mistral.ai/v1",
}


class ProviderError(ValueError):
    """A variant's model string names no known endpoint and has no api_base."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    base_url: str
    model: str  # the model name sent upstream
    provider: str


def _litellm_dir() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _read_json(path: Path | None) -> dict[str, object]:
    if path is None or not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


class ProviderFacts:
    """Endpoints and per-token prices for model strings."""

    def __init__(self, cost_map: dict[str, object], bases: dict[str, str]) -> None:
        self._cost_map = cost_map
        self._bases = bases

    @classmethod
    def from_litellm(cls) -> ProviderFacts:
        root = _litellm_dir()
        cost_map = _read_json(
            root / "model_prices_and_context_window_backup.json" if root else None
        )
        listed = _read_json(root / "llms" / "openai_like" / "providers.json" if root else None)
        bases = {
            k: str(v["base_url"])
            for k, v in listed.items()
            if isinstance(v, dict) and "base_url" in v
        }
        bases.update(KNOWN_BASES)
        return cls(cost_map, bases)

    def endpoint(self, variant: Variant) -> Endpoint:
        provider, _, rest = variant.model.partition("/")
        if not rest:
            provider, rest = "openai", variant.model
        if variant.api_base:
            return Endpoint(variant.api_base.rstrip("/"), rest, provider)
        base = self._bases.get(provider)
        if base is None:
            raise ProviderError(
                f"variant {variant.name!r}: provider {provider!r} of model {variant.model!r} "
                "is not known; set api_base"
            )
        return Endpoint(base.rstrip("/"), rest, provider)

    def price(self, variant: Variant) -> Price | None:
        """Routes-file price first, else the cost map (full string, then without prefixes)."""
        if variant.price is not None:
            return variant.price
        parts = variant.model.split("/")
        for i in range(len(parts)):
            entry = self._cost_map.get("/".join(parts[i:]))
            if isinstance(entry, dict) and "input_cost_per_token" in entry:
                return Price(
                    input_per_1m=float(entry["input_cost_per_token"]) * 1e6,
                    output_per_1m=float(entry.get("output_cost_per_token", 0.0)) * 1e6,
                )
        return None


def call_cost(
    reported: float | None, price: Price | None, prompt_tokens: int, completion_tokens: int
) -> float:
    """USD for one call: the provider's reported cost when it is positive, else the price.

    A provider may report 0 for a fine-tuned or bring-your-own-key model; when a price is
    configured that zero is not believed.
    """
    if reported is not None and reported > 0:
        return reported
    if price is not None:
        return (prompt_tokens * price.input_per_1m + completion_tokens * price.output_per_1m) / 1e6
    return reported or 0.0
