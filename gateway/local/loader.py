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
import math
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from gateway.local.extractive import model_triage
from gateway.request.triage import Triage

if TYPE_CHECKING:
    import numpy as np

    from gateway.experiments.config import RoutesConfig

# Runtime modules imported on demand, by format name, so `serve` loads only what it uses.
FORMAT_MODULES: dict[str, str] = {
    "tfidf-linear": "gateway.local.tfidf",
    "encoder-onnx": "gateway.local.onnx",
    "use-linear": "gateway.local.use",
    "ensemble": "gateway.local.ensemble",
}

_LOADERS: dict[str, Callable[[Path], LocalModel]] = {}

BASELINE_NAME = "baseline"
MODEL_CARD = "model_card.json"
"""The file of a model directory that names its format (and describes the model)."""


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


def scored_prediction(
    text: str,
    category: str,
    urgency: str,
    categories: Sequence[str],
    p_cat: Sequence[float] | np.ndarray[Any, Any],
    topic_idf: tuple[Mapping[str, float], float],
) -> LocalPrediction:
    """A model's prediction from its heads' argmax `category` and `urgency`: the severity rules
    may raise both, topic and summary are extracted (`extractive.model_triage`), and the
    confidence is the probability `p_cat` gives the final category (0 when not finite)."""
    idf, default_idf = topic_idf
    triage = model_triage(text, category, urgency, categories, idf, default_idf)
    confidence = float(p_cat[list(categories).index(triage.category)])
    if not math.isfinite(confidence):
        confidence = 0.0
    return LocalPrediction(triage=triage, confidence=min(1.0, max(0.0, confidence)))


@runtime_checkable
class ScoringModel(LocalModel, Protocol):
    """A local model that also gives its heads' probabilities, so an `ensemble` can pool it."""

    @property
    def categories(self) -> tuple[str, ...]: ...

    @property
    def urgencies(self) -> tuple[str, ...]: ...

    @property
    def topic_idf(self) -> tuple[dict[str, float], float]:
        """(word -> idf, idf of an unseen word) for the extractive topic."""
        ...

    def probabilities(
        self, text: str
    ) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.float64]]]:
        """(category, urgency) probabilities in the order of `categories` and `urgencies`,
        before the severity rules."""
        ...


class ArgmaxPredictor:
    """`predict` for a `ScoringModel`: the most probable category and urgency of its heads,
    then `scored_prediction`."""

    def predict(
        self: ScoringModel, text: str, app: str | None = None, rating: int | None = None
    ) -> LocalPrediction:
        """Classify one review; `app` and `rating` are unused (the model is text-only)."""
        del app, rating
        p_cat, p_urg = self.probabilities(text)
        category = self.categories[int(p_cat.argmax())]
        urgency = self.urgencies[int(p_urg.argmax())]
        return scored_prediction(text, category, urgency, self.categories, p_cat, self.topic_idf)


def card_file(path: Path, card: Mapping[str, object], key: str, default: str) -> Path:
    """The file a model card names under `key` (else `default`), inside the model directory:
    a plain file name, never a path."""
    name = str(card.get(key) or default)
    if "/" in name or "\\" in name or name in (".", ".."):
        raise LocalModelError(f"{path}: {key} must be a file name in the model directory")
    return path / name


def load_npz(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    """Every array of an `.npz` file, pickles refused. The file is opened here: `np.load`
    leaves its own handle open when the zip is corrupt."""
    import numpy

    with path.open("rb") as fh, numpy.load(fh, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def load_versioned(
    path: Path, fmt: str, version: int, build: Callable[[Path, dict[str, object]], LocalModel]
) -> LocalModel:
    """`build(path, card)` for a directory whose card says `format: fmt` and
    `format_version: version`; any error reading it becomes a `LocalModelError`."""
    path = Path(path)
    card = read_model_card(path, fmt)
    if card.get("format_version") != version:
        raise LocalModelError(
            f"{path}: {fmt} format_version {card.get('format_version')!r} is not {version}"
        )
    try:
        return build(path, card)
    except LocalModelError:
        raise
    except (
        OSError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        RuntimeError,  # a symlink loop, on Python 3.11
        zipfile.BadZipFile,  # a truncated .npz
    ) as exc:
        raise LocalModelError(f"{path}: not a usable {fmt} model: {exc}") from exc


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
    card_path = path / MODEL_CARD
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
