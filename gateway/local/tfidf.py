"""Runtime of the `tfidf-linear` local model format: load a model directory and predict.

A `tfidf-linear` model directory (written by `training.local.train_tfidf`: `triage-gateway
train-local --approach tfidf`, or the baseline `triage-gateway serve` builds) holds:

* `model_card.json`: `{"format": "tfidf-linear", "name", "created_at", "n_train",
  "label_counts", "versions", "model_file", ...}`;
* `model.joblib`: a dict `{"format_version": 1, "category": Pipeline, "urgency": Pipeline}`.
  Both scikit-learn pipelines are `[("features", FeatureUnion), ("clf", LogisticRegression)]`
  and share one fitted `FeatureUnion` (TF-IDF word 1-2 grams + TF-IDF char_wb 2-5 grams), so a
  review is vectorised once per prediction.

Category and urgency come from the two classifiers; confidence is the probability of the
predicted category. Topic and summary are extractive (`gateway.local.extractive`), with the
idf of the model's word vectoriser.

Nothing is fitted here. The joblib file is a pickle: load model directories you (or this
gateway) wrote, nothing else.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.exceptions import InconsistentVersionWarning

from gateway.local.extractive import default_topic, extract_summary, extract_topic
from gateway.local.loader import (
    LocalModel,
    LocalModelError,
    LocalPrediction,
    read_model_card,
    register_format,
)
from gateway.request.triage import Triage

__all__ = ["FORMAT", "FORMAT_VERSION", "MODEL_FILE", "TfidfLinearModel", "load_tfidf"]

log = logging.getLogger(__name__)

FORMAT = "tfidf-linear"
FORMAT_VERSION = 1
MODEL_FILE = "model.joblib"


class _Head:
    """Dense weights of one fitted LogisticRegression, applied without sklearn's overhead."""

    __slots__ = ("binary", "classes", "intercept", "weights")

    def __init__(self, clf: Any, slices: Sequence[slice]) -> None:
        coef = np.asarray(clf.coef_, dtype=np.float64)
        self.classes: tuple[str, ...] = tuple(str(c) for c in clf.classes_)
        self.binary = coef.shape[0] == 1 and len(self.classes) == 2
        self.intercept = np.asarray(clf.intercept_, dtype=np.float64)
        # one (n_features_block, n_outputs) block per vectoriser of the FeatureUnion
        self.weights = [np.ascontiguousarray(coef[:, s].T) for s in slices]

    def proba(self, blocks: Sequence[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
        scores = self.intercept.copy()
        for x, w in zip(blocks, self.weights, strict=True):
            if x.nnz:
                scores += np.asarray(x @ w).ravel()
        if self.binary:
            p1 = 1.0 / (1.0 + math.exp(-float(scores[0])))
            return np.array([1.0 - p1, p1])
        scores -= scores.max()
        exp = np.exp(scores)
        out: np.ndarray[Any, np.dtype[np.float64]] = exp / exp.sum()
        return out


class TfidfLinearModel:
    """A loaded `tfidf-linear` model. Thread-safe: `predict` only reads fitted state."""

    def __init__(self, name: str, bundle: Mapping[str, Any]) -> None:
        self._name = name
        self.category_pipeline: Any = bundle["category"]
        self.urgency_pipeline: Any = bundle["urgency"]
        features = self.category_pipeline.named_steps["features"]
        if self.urgency_pipeline.named_steps["features"] is not features:
            raise LocalModelError("category and urgency pipelines must share their features")
        self._vectorizers: list[Any] = [t for _, t in features.transformer_list]
        if getattr(features, "transformer_weights", None):
            raise LocalModelError("transformer_weights are not supported")
        widths = [len(v.vocabulary_) for v in self._vectorizers]
        bounds = np.cumsum([0, *widths])
        slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        self._category = _Head(self.category_pipeline.named_steps["clf"], slices)
        self._urgency = _Head(self.urgency_pipeline.named_steps["clf"], slices)
        for head in (self._category, self._urgency):
            if sum(w.shape[0] for w in head.weights) != int(bounds[-1]):
                raise LocalModelError("classifier width does not match the feature union")
        word = dict(features.transformer_list)["word"]
        idf = np.asarray(word.idf_, dtype=np.float64)
        self._idf: dict[str, float] = {
            term: float(idf[i]) for term, i in word.vocabulary_.items() if " " not in term
        }
        self._default_idf = float(idf.max()) if idf.size else 1.0

    @property
    def name(self) -> str:
        return self._name

    @property
    def categories(self) -> tuple[str, ...]:
        return self._category.classes

    @property
    def urgencies(self) -> tuple[str, ...]:
        return self._urgency.classes

    def predict(
        self, text: str, app: str | None = None, rating: int | None = None
    ) -> LocalPrediction:
        """Classify one review. `app` and `rating` are accepted for the interface and unused
        (the model is text-only)."""
        del app, rating
        blocks = [v.transform([text]) for v in self._vectorizers]
        p_cat = self._category.proba(blocks)
        p_urg = self._urgency.proba(blocks)
        i_cat = int(p_cat.argmax())
        category = self._category.classes[i_cat]
        urgency = self._urgency.classes[int(p_urg.argmax())]
        topic = extract_topic(
            text,
            self._idf,
            self._default_idf,
            default_topic(category),
        )
        triage = Triage(
            category=category,
            urgency=urgency,
            topic=topic,
            summary=extract_summary(text),
        )
        confidence = min(1.0, max(0.0, float(p_cat[i_cat])))
        return LocalPrediction(triage=triage, confidence=confidence)


@register_format(FORMAT)
def load_tfidf(path: Path) -> LocalModel:
    """Load a `tfidf-linear` model directory (see the module docstring)."""
    path = Path(path)
    card = read_model_card(path, FORMAT)
    model_path = path / str(card.get("model_file") or MODEL_FILE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        try:
            bundle = joblib.load(model_path)
        except FileNotFoundError as exc:
            raise LocalModelError(f"{model_path} not found") from exc
        except Exception as exc:  # unpickling can raise nearly anything
            raise LocalModelError(f"{model_path} unreadable: {exc}") from exc
    for w in caught:
        if issubclass(w.category, InconsistentVersionWarning):
            log.warning("%s was saved by another scikit-learn version: %s", model_path, w.message)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not isinstance(bundle, dict) or not {"category", "urgency"} <= bundle.keys():
        raise LocalModelError(f"{model_path}: expected a dict with 'category' and 'urgency'")
    try:
        return TfidfLinearModel(str(card.get("name") or path.name), bundle)
    except LocalModelError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise LocalModelError(f"{model_path}: not a tfidf-linear bundle: {exc}") from exc
