"""Statistics for offline eval: accuracy, macro-F1, per-class figures, confusion matrices, the
paired bootstrap interval of an accuracy difference, McNemar's exact test, latency percentiles.

Proportion intervals and sample sizes come from `gateway.pairs.online_report` (the online report
needs them too), so both paths use one implementation.

A prediction of None is an invalid answer or a failed call: it counts as wrong, and it shows in
confusion matrices as the column `INVALID`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest

from gateway.pairs.online_report import (
    newcombe,
    percentile,
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


def accuracy(gold: Sequence[str], pred: Sequence[str | None]) -> float:
    """Share of predictions equal to the gold label (None is never equal)."""
    _same_length(gold, pred)
    if not gold:
        return 0.0
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)


def per_class(
    gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per label (0 where undefined, like sklearn's
    `zero_division=0`). Labels default to those in gold or predicted, in first-seen order."""
    _same_length(gold, pred)
    names = list(labels) if labels is not None else _labels(gold, pred)
    out: dict[str, dict[str, float]] = {}
    for name in names:
        tp = sum(g == name and p == name for g, p in zip(gold, pred, strict=True))
        predicted = sum(p == name for p in pred)
        support = sum(g == name for g in gold)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return out


def macro_f1(gold: Sequence[str], pred: Sequence[str | None]) -> float:
    """Unweighted mean F1 over the classes present in the gold labels (a class the set does not
    contain has no recall to measure; predicting it still lowers the other classes' recall)."""
    classes = list(dict.fromkeys(gold))
    if not classes:
        return 0.0
    table = per_class(gold, pred, classes)
    return sum(table[c]["f1"] for c in classes) / len(classes)


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
    index = {name: i for i, name in enumerate(columns)}
    matrix = [[0] * len(columns) for _ in row_names]
    rows = {name: i for i, name in enumerate(row_names)}
    for g, p in zip(gold, pred, strict=True):
        if g in rows:
            col = index.get(INVALID if p is None else p)
            if col is not None:
                matrix[rows[g]][col] += 1
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
    diff = np.asarray(candidate_correct, float) - np.asarray(control_correct, float)
    rng = np.random.default_rng(seed)
    n = diff.size
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diff[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


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
    return {f"p{q}": percentile(values, q) for q in (50, 95, 99)}


def _labels(gold: Sequence[str], pred: Sequence[str | None]) -> list[str]:
    return list(dict.fromkeys([*gold, *(p for p in pred if p is not None)]))


def _same_length(gold: Sequence[str], pred: Sequence[str | None]) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
