"""Figures of an eval run: per-variant accuracy, F1, validity, latency and cost, and each
candidate compared with the control (the body of summary.json, before gates)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eval import stats
from eval.data import LabelledReview
from gateway.request.triage import DEFAULT_CATEGORIES

FAILED = "(failed)"  # gateway mode: requests no variant answered


@dataclass(frozen=True, slots=True)
class Outcome:
    """One review answered (or not) by one variant."""

    variant: str
    index: int
    category: str | None  # None: invalid answer or failed call
    urgency: str | None
    latency_ms: float
    cost_usd: float
    attempts: int
    confidence: float | None = None
    error: str | None = None
    fallback: bool = False


def variant_figures(
    rows: Sequence[LabelledReview], outs: Sequence[Outcome], categories: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, F1, validity, latency and cost of one variant over its outcomes."""
    gold = [rows[o.index].category for o in outs]
    pred = [o.category for o in outs]
    n = len(outs)
    correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    urg = [(rows[o.index].urgency, o.urgency) for o in outs if rows[o.index].urgency]
    seen = {*gold, *pred}
    labels = [c for c in categories if c in seen] + sorted(
        {p for p in seen if p is not None and p not in categories}
    )
    cost = sum(o.cost_usd for o in outs)
    latencies = [o.latency_ms for o in outs]
    return {
        "n": n,
        "correct": correct,
        "accuracy": correct / n if n else 0.0,
        "accuracy_ci95": list(stats.wilson(correct, n)),
        "macro_f1": stats.macro_f1(gold, pred),
        "per_class": stats.per_class(gold, pred, labels),
        "confusion": stats.confusion(gold, pred, labels),
        "urgency_accuracy": (sum(g == p for g, p in urg) / len(urg)) if urg else None,
        "urgency_n": len(urg),
        "validity_rate": sum(p is not None for p in pred) / n if n else 0.0,
        "reask_rate": sum(o.attempts >= 2 for o in outs) / n if n else 0.0,
        "fallback_rate": sum(o.fallback for o in outs) / n if n else 0.0,
        "failures": dict(Counter(o.error for o in outs if o.error)),
        "latency_ms": stats.latency_percentiles(latencies),
        "mean_latency_ms": sum(latencies) / n if n else None,
        "cost_per_review_usd": cost / n if n else 0.0,
        "cost_per_1000_usd": cost / n * 1000 if n else 0.0,
    }


def compare(
    rows: Sequence[LabelledReview],
    control: Sequence[Outcome],
    cand: Sequence[Outcome],
    paired: bool,
) -> dict[str, Any]:
    """Candidate minus control accuracy: paired bootstrap CI and McNemar on the same items,
    else (gateway mode, different items) Newcombe's interval."""

    def right(outs: Sequence[Outcome]) -> dict[int, bool]:
        return {o.index: o.category == rows[o.index].category for o in outs}

    a, b = right(control), right(cand)
    if paired:
        items = sorted(set(a) & set(b))
        ca, cb = [a[i] for i in items], [b[i] for i in items]
        lo, hi = stats.paired_bootstrap_diff(ca, cb)
        only_ctrl, only_cand = stats.discordant(ca, cb)
        diff = (sum(cb) - sum(ca)) / len(items)
        mcnemar = {
            "b": only_ctrl,
            "c": only_cand,
            "p_value": stats.mcnemar_exact(only_ctrl, only_cand),
        }
        method = (
            f"paired bootstrap ({stats.BOOTSTRAP_RESAMPLES} resamples, seed {stats.BOOTSTRAP_SEED})"
        )
        n = len(items)
    else:
        ka, kb = sum(a.values()), sum(b.values())
        diff = kb / len(b) - ka / len(a)
        lo, hi = stats.newcombe(kb, len(b), ka, len(a))
        mcnemar, method, n = None, "newcombe hybrid score (unpaired)", min(len(a), len(b))
    return {
        "n": n,
        "accuracy_diff": diff,
        "ci95": [lo, hi],
        "method": method,
        "mcnemar": mcnemar,
        "significant": (mcnemar["p_value"] < 0.05) if mcnemar else (lo > 0 or hi < 0),
    }


def summarise(
    rows: Sequence[LabelledReview],
    outcomes: dict[str, list[Outcome]],
    control: str,
    *,
    paired: bool,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
) -> dict[str, Any]:
    """The summary.json body (without gates): per-variant figures and comparisons."""
    variants = {name: variant_figures(rows, outs, categories) for name, outs in outcomes.items()}
    comparisons = {
        name: {"control": control, **compare(rows, outcomes[control], outs, paired)}
        for name, outs in outcomes.items()
        if name != control and outs and outcomes[control]
    }
    meta: dict[str, Any] = {"rows": len(rows), "control": control, "variants": list(outcomes)}
    return {"meta": meta, "variants": variants, "comparisons": comparisons}
