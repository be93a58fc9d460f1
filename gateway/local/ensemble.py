"""Runtime of the `ensemble` local model format: several local models pooled into one.

An `ensemble` directory (written by `triage-gateway train-local --approach multilingual` or
`--approach minilm`) holds one sub-directory per member, each a model directory of its own
format, and:

* `model_card.json`: `{"format": "ensemble", "format_version": 1, "name", "categories",
  "urgencies", "members": [{"path": "tfidf", "weight": 0.4}, {"path": "use", "weight": 0.6}]}`.

Every member must give its heads' probabilities (`loader.ScoringModel`: `tfidf-linear`,
`use-linear`, `encoder-onnx`) over the card's categories. The category distribution is the
weighted log-linear pool of the members' (each member's calibrated log-probabilities times its
weight, the weights normalised to sum to 1, the result renormalised): the confidence is its
probability of the predicted category. Urgency is
the weighted mean of the members' urgency distributions (members without an urgency head left
out). The severity rules, topic and summary are applied once, as for every local format, with
the idf table of the first member.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gateway.local.loader import (
    ArgmaxPredictor,
    LocalModel,
    LocalModelError,
    ScoringModel,
    load_local_model,
    load_versioned,
    register_format,
)
from gateway.local.onnx import softmax

__all__ = ["FORMAT", "FORMAT_VERSION", "EnsembleModel", "load_ensemble", "pool"]

FORMAT = "ensemble"
FORMAT_VERSION = 1

Floats = np.ndarray[Any, np.dtype[np.float64]]


def pool(log_probs: Floats, weights: Floats) -> Floats:
    """The log-linear pool of log-probabilities (members x ... x classes) with `weights` (one
    per member), renormalised over the classes."""
    return softmax(np.tensordot(weights, log_probs, axes=1))


class EnsembleModel(ArgmaxPredictor):
    """A loaded `ensemble`. Thread-safe when its members are (every built-in format is)."""

    def __init__(self, path: Path, card: Mapping[str, Any]) -> None:
        self._name = str(card.get("name") or path.name)
        self.categories: tuple[str, ...] = tuple(str(c) for c in card.get("categories") or ())
        self.urgencies: tuple[str, ...] = tuple(str(u) for u in card.get("urgencies") or ())
        members = card.get("members")
        if not isinstance(members, list) or not members:
            raise LocalModelError(f"{path}: the card lists no members")
        root = path.resolve()
        self._members: list[ScoringModel] = []
        self._cat_index: list[np.ndarray[Any, Any]] = []
        self._urg_index: list[np.ndarray[Any, Any] | None] = []
        weights: list[float] = []
        for i, member in enumerate(members):
            if not isinstance(member, Mapping):
                raise LocalModelError(f"{path}: member {i} must be an object")
            sub = (path / str(member.get("path") or "")).resolve()
            if sub == root or not sub.is_relative_to(root):
                raise LocalModelError(f"{path}: member {i} must be a sub-directory")
            if "weight" not in member:
                raise LocalModelError(f"{path}: member {i} has no weight")
            weight = float(member["weight"])
            if not math.isfinite(weight) or weight < 0:
                raise LocalModelError(f"{path}: member {i} weight must be a number >= 0")
            model = load_local_model(sub)
            if not isinstance(model, ScoringModel):
                raise LocalModelError(f"{sub}: this format cannot be pooled (no probabilities)")
            if set(model.categories) != set(self.categories):
                raise LocalModelError(f"{sub}: its categories differ from the ensemble's")
            self._members.append(model)
            self._cat_index.append(np.array([model.categories.index(c) for c in self.categories]))
            has_urgency = bool(model.urgencies) and set(model.urgencies) == set(self.urgencies)
            self._urg_index.append(
                np.array([model.urgencies.index(u) for u in self.urgencies])
                if has_urgency
                else None
            )
            weights.append(weight)
        if len(self.categories) < 2 or len(self.urgencies) < 2:
            raise LocalModelError(f"{path}: the card needs two or more categories and urgencies")
        if not any(w > 0 for w in weights):
            raise LocalModelError(f"{path}: every member has weight 0")
        urgency_weights = zip(weights, self._urg_index, strict=True)
        if not any(w > 0 and ix is not None for w, ix in urgency_weights):
            raise LocalModelError(f"{path}: no member of weight > 0 has an urgency head")
        # normalised: weights 1 and 1 pool as 0.5 and 0.5, not as a product of distributions
        self._weights: Floats = np.asarray(weights, dtype=np.float64) / sum(weights)
        self._idf, self._default_idf = self._members[0].topic_idf

    @property
    def name(self) -> str:
        return self._name

    @property
    def topic_idf(self) -> tuple[dict[str, float], float]:
        return self._idf, self._default_idf

    @property
    def members(self) -> tuple[ScoringModel, ...]:
        return tuple(self._members)

    def probabilities(self, text: str) -> tuple[Floats, Floats]:
        """(pooled category, mean urgency) probabilities, before the severity rules."""
        logs = np.empty((len(self._members), len(self.categories)))
        urg = np.zeros(len(self.urgencies))
        urg_weight = 0.0
        for i, (model, cix, uix, w) in enumerate(
            zip(self._members, self._cat_index, self._urg_index, self._weights, strict=True)
        ):
            if w == 0:
                logs[i] = 0.0
                continue
            p_cat, p_urg = model.probabilities(text)
            logs[i] = np.log(np.clip(p_cat[cix], 1e-12, 1.0))
            if uix is not None:
                urg += w * p_urg[uix]
                urg_weight += w
        return pool(logs, self._weights), urg / urg_weight


@register_format(FORMAT)
def load_ensemble(path: Path) -> LocalModel:
    """Load an `ensemble` directory and its members (see the module docstring)."""
    return load_versioned(path, FORMAT, FORMAT_VERSION, EnsembleModel)
