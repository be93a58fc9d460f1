"""Runtime of the `ensemble` local model format: several local models pooled into one.

An `ensemble` directory (written by `triage-gateway train-local --approach multilingual` or
`--approach minilm`) holds one sub-directory per member, each a model directory of its own
format, and:

* `model_card.json`: `{"format": "ensemble", "format_version": 1, "name", "categories",
  "urgencies", "members": [{"path": "tfidf", "weight": 0.4}, {"path": "use", "weight": 0.6}]}`.
  A member may name `"languages": ["English"]` (as `extractive.detect_language` names them):
  it then answers only reviews in those languages (an encoder that knows one language), and
  the other members' weights, renormalised, pool the rest (equally, if the card weighs them
  all 0; their urgency, or every member's if none of them has an urgency head); a review no
  member answers by its language is pooled by every member.

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

from gateway.local.extractive import LANGUAGES, detect_language
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
        languages: list[frozenset[str] | None] = []
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
            languages.append(_languages(member.get("languages"), f"{path}: member {i}"))
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
        self._default = (self._weights, self._weights)
        self._by_language = _language_weights(self._weights, languages, self._urg_index)
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
        cat_w, urg_w = self._default
        if self._by_language:
            cat_w, urg_w = self._by_language.get(detect_language(text), self._default)
        logs = np.zeros((len(self._members), len(self.categories)))
        urg = np.zeros(len(self.urgencies))
        for i, (model, cix, uix) in enumerate(
            zip(self._members, self._cat_index, self._urg_index, strict=True)
        ):
            wu = urg_w[i] if uix is not None else 0.0
            if cat_w[i] == 0 and wu == 0:
                continue
            p_cat, p_urg = model.probabilities(text)
            if cat_w[i] > 0:
                logs[i] = np.log(np.clip(p_cat[cix], 1e-12, 1.0))
            if wu > 0:
                urg += wu * p_urg[uix]
        return pool(logs, cat_w), urg / urg.sum()


def _language_weights(
    weights: Floats,
    languages: list[frozenset[str] | None],
    urgency_heads: list[Any],
) -> dict[str, tuple[Floats, Floats]]:
    """Per language that some member does not answer: (category weights, urgency weights),
    each summing to 1, over the members that answer it. Members the card weighs 0 count
    equally when every member that answers has weight 0; the urgency falls back to every
    member with an urgency head when none of those that answer has one. A language no member
    answers is left out: every member pools it."""
    out: dict[str, tuple[Floats, Floats]] = {}
    if all(langs is None for langs in languages):
        return out
    has_urgency = np.array([ix is not None for ix in urgency_heads])
    for language in LANGUAGES:
        keep = np.array([langs is None or language in langs for langs in languages])
        if keep.all() or not keep.any():
            continue
        cat = np.where(keep, weights, 0.0)
        if cat.sum() == 0:
            cat = keep.astype(np.float64)
        urg = np.where(keep & has_urgency, weights, 0.0)
        if urg.sum() == 0:
            urg = (keep & has_urgency).astype(np.float64)
        if urg.sum() == 0:
            urg = np.where(has_urgency, weights, 0.0)
        out[language] = (cat / cat.sum(), urg / urg.sum())
    return out


def _languages(value: Any, where: str) -> frozenset[str] | None:
    """A member's `languages` (None: every language)."""
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v in LANGUAGES for v in value)
    ):
        raise LocalModelError(
            f"{where}: languages must be a non-empty list of {', '.join(LANGUAGES)}"
        )
    return frozenset(value)


@register_format(FORMAT)
def load_ensemble(path: Path) -> LocalModel:
    """Load an `ensemble` directory and its members (see the module docstring)."""
    return load_versioned(path, FORMAT, FORMAT_VERSION, EnsembleModel)
