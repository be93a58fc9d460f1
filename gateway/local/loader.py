"""The in-process `local` variant: a loader interface for CPU models kept in a directory.

A model directory holds `model_card.json` whose `format` key names the loader. Each format's
runtime lives in its own small module under `gateway/` and registers itself here with
`@register_format`; the gateway never imports `training/`, and training libraries stay off the
request path. Runtimes only load and predict: every model is trained by `training/`.

The built-in baseline model lives at `baseline_model_path(data_dir)`; `triage-gateway serve`
builds it there (`training.baseline`) before the server starts, and the server only loads it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gateway.request.triage import Triage

if TYPE_CHECKING:
    from gateway.experiments.config import RoutesConfig

# Runtime modules imported on demand, by format name, so `serve` loads only what it uses.
FORMAT_MODULES: dict[str, str] = {
    "tfidf-linear": "gateway.local.tfidf",
    "encoder-onnx": "gateway.local.onnx",
}

_LOADERS: dict[str, Callable[[Path], LocalModel]] = {}

BASELINE_NAME = "baseline"


def baseline_model_path(data_dir: Path) -> Path:
    """Where the built-in baseline model of a data directory lives."""
    return Path(data_dir) / "models" / BASELINE_NAME


def needs_baseline(routes: RoutesConfig) -> bool:
    """Whether a local variant of `routes` has no `model_path`, so uses the built-in baseline."""
    return any(v.is_local and not v.model_path for e in routes.experiments for v in e.variants)


class LocalModelError(Exception):
    """A model directory is missing, unreadable, or of an unknown format."""


@dataclass(frozen=True, slots=True)
class LocalPrediction:
    triage: Triage
    confidence: float  # calibrated probability of the predicted category, 0..1


class LocalModel(Protocol):
    """What the gateway needs from a local model."""

    @property
    def name(self) -> str: ...

    def predict(
        self, text: str, app: str | None = None, rating: int | None = None
    ) -> LocalPrediction: ...


def register_format(
    fmt: str,
) -> Callable[[Callable[[Path], LocalModel]], Callable[[Path], LocalModel]]:
    """Register a loader for model directories whose card says `"format": fmt`."""

    def deco(loader: Callable[[Path], LocalModel]) -> Callable[[Path], LocalModel]:
        _LOADERS[fmt] = loader
        return loader

    return deco


def read_model_card(path: Path, fmt: str | None = None) -> dict[str, object]:
    """The JSON object in `path/model_card.json`; with `fmt`, its `format` must be that."""
    card_path = path / "model_card.json"
    try:
        card = json.loads(card_path.read_text())
    except FileNotFoundError as exc:
        raise LocalModelError(f"{card_path} not found: not a model directory") from exc
    except (OSError, ValueError) as exc:
        raise LocalModelError(f"{card_path} unreadable: {exc}") from exc
    if not isinstance(card, dict):
        raise LocalModelError(f"{card_path} must hold a JSON object")
    if fmt is not None and card.get("format") != fmt:
        raise LocalModelError(f"{path}: format {card.get('format')!r} is not {fmt!r}")
    return card


def load_local_model(path: Path) -> LocalModel:
    """Load the model in directory `path`, dispatching on its card's `format`."""
    card = read_model_card(path)
    fmt = str(card.get("format", ""))
    if fmt not in _LOADERS:
        module = FORMAT_MODULES.get(fmt)
        if module is None:
            known = ", ".join(sorted(FORMAT_MODULES))
            raise LocalModelError(f"{path}: unknown model format {fmt!r} (known: {known})")
        importlib.import_module(module)
    return _LOADERS[fmt](path)
