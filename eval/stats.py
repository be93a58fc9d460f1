"""Statistics for offline eval: accuracy, macro-F1, per-class figures, confusion matrices, the
paired bootstrap interval of an accuracy difference, McNemar's exact test, latency percentiles.

The figures are library calls: scikit-learn for per-class figures, macro-F1 and confusion
matrices, scipy for the bootstrap and the exact binomial test, numpy for percentiles. Proportion
intervals and sample sizes come from `gateway.pairs.online_report` (the online report needs them
too; its intervals are statsmodels'), so both paths use one implementation.

A prediction of None is an invalid answer or a failed call: it counts as wrong, and it shows in
confusion matrices as the column `INVALID`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binomtest, bootstrap
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from gateway.pairs.online_report import (
    newcombe,
    sample_size,
    sample_size_for_mde,
    wilson,
)

__all__ = [
    "INVALID",
    "accuracy",
    "confusion",
    "discordant",
    "latency_percentiles",
    "macro_f1",
    "mcnemar_exact",
    "newcombe",
    "paired_bootstrap_diff",
    "per_class",
    "sample_size",
    "sample_size_for_mde",
    "wilson",
]

INVALID = "(invalid)"
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
_LATENCY_QS = (50, 95, 99)


def accuracy(gold: Sequence[str], pred: Sequence[str | None]) -> float:
    """Share of predictions equal to the gold label (None is never equal)."""
    _same_length(gold, pred)
    if not gold:
        return 0.0
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)


def per_class(
    gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per label (0 where undefined, `zero_division=0`).
    Labels default to those in gold or predicted, in first-seen order."""
    _same_length(gold, pred)
    names = list(labels) if labels is not None else _labels(gold, pred)
    if not names:
        return {}
    if not gold:
        zero = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        return {name: dict(zero) for name in names}
    precision, recall, f1, support = precision_recall_fscore_support(
        list(gold), _answers(pred), labels=names, average=None, zero_division=0
    )
    return {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }


def macro_f1(gold: Sequence[str], pred: Sequence[str | None]) -> float:
    """Unweighted mean F1 over the classes present in the gold labels (a class the set does not
    contain has no recall to measure; predicting it still lowers the other classes' recall)."""
    _same_length(gold, pred)
    classes = list(dict.fromkeys(gold))
    if not classes:
        return 0.0
    return float(
        f1_score(list(gold), _answers(pred), labels=classes, average="macro", zero_division=0)
    )


def confusion(
    gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Counts with the gold classes as rows and every label as a column (plus INVALID when an
    answer was missing). `labels` fixes the order; classes absent from gold get no row."""
    _same_length(gold, pred)
    names = list(labels) if labels is not None else _labels(gold, pred)
    present = set(gold)
    row_names = [name for name in names if name in present]
    columns = [*names, INVALID] if any(p is None for p in pred) else names
    if not row_names:
        return {"rows": [], "columns": columns, "matrix": []}
    # square over `columns`; pairs whose gold or answer is not a column are left out
    with warnings.catch_warnings():  # a 1x1 matrix is expected with a single column
        warnings.filterwarnings("ignore", "A single label was found", UserWarning)
        square = confusion_matrix(list(gold), _answers(pred), labels=columns)
    index = {name: i for i, name in enumerate(columns)}
    matrix = [[int(v) for v in square[index[name]]] for name in row_names]
    return {"rows": row_names, "columns": columns, "matrix": matrix}


def paired_bootstrap_diff(
    control_correct: Sequence[bool],
    candidate_correct: Sequence[bool],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of accuracy(candidate) - accuracy(control), resampling
    items (both variants judged on the same items, so the pairing is kept)."""
    if len(control_correct) != len(candidate_correct) or not control_correct:
        raise ValueError("need two non-empty sequences of equal length")
    control = np.asarray(control_correct, float)
    candidate = np.asarray(candidate_correct, float)
    if control.size == 1:  # one item: every resample is that item
        only = float(candidate[0] - control[0])
        return only, only

    def mean_diff(ctrl: NDArray[np.float64], cand: NDArray[np.float64], axis: int) -> Any:
        return np.mean(cand - ctrl, axis=axis)

    result = bootstrap(
        (control, candidate),
        mean_diff,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        batch=max(1, 2_000_000 // control.size),  # bounds memory on large sets
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of b successes in b + c discordant
    pairs against 1/2 (b: control right and candidate wrong, c: the reverse)."""
    if b < 0 or c < 0:
        raise ValueError("counts must be >= 0")
    if b + c == 0:
        return 1.0
    return float(binomtest(b, b + c, 0.5).pvalue)


def discordant(
    control_correct: Sequence[bool], candidate_correct: Sequence[bool]
) -> tuple[int, int]:
    """(b, c): items only the control got right, items only the candidate got right."""
    pairs = list(zip(control_correct, candidate_correct, strict=True))
    return sum(a and not b for a, b in pairs), sum(b and not a for a, b in pairs)


def latency_percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p95 and p99 (linear interpolation; None when there are no values)."""
    if not values:
        return {f"p{q}": None for q in _LATENCY_QS}
    found = np.percentile(np.asarray(values, float), _LATENCY_QS)
    return {f"p{q}": float(v) for q, v in zip(_LATENCY_QS, found, strict=True)}


def _labels(gold: Sequence[str], pred: Sequence[str | None]) -> list[str]:
    return list(dict.fromkeys([*gold, *(p for p in pred if p is not None)]))


def _answers(pred: Sequence[str | None]) -> list[str]:
    """Predictions with a missing answer spelled INVALID (sklearn needs one label type)."""
    return [INVALID if p is None else p for p in pred]


def _same_length(gold: Sequence[str], pred: Sequence[str | None]) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
