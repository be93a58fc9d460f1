"""Cascade threshold sweep: what a `model: cascade` variant would do at each threshold.

Both variants answer every review once; the sweep then replays the cascade rule of
`VariantPool` offline for thresholds 0, 0.05, ..., 1: the cheap answer stands when it is valid
and its confidence is at least the threshold, otherwise the review escalates to the strong
variant and pays for both calls (cost and latency add up). The escalation share can only grow
with the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Answered(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def category(self) -> str | None: ...
    @property
    def confidence(self) -> float | None: ...
    @property
    def cost_usd(self) -> float: ...
    @property
    def latency_ms(self) -> float: ...


def thresholds(step: float = 0.05) -> list[float]:
    count = round(1 / step)
    return [round(i * step, 6) for i in range(count + 1)]


def cascade_point(
    gold: Sequence[str], cheap: Sequence[Answered], strong: Sequence[Answered], threshold: float
) -> dict[str, float]:
    """Accuracy, cost per review, mean latency and escalation share at one threshold."""
    by_index = {s.index: s for s in strong}
    right = escalated = 0
    cost = latency = 0.0
    for c in cheap:
        s = by_index[c.index]
        keep = c.category is not None and c.confidence is not None and c.confidence >= threshold
        answer = c if keep else s
        escalated += not keep
        right += answer.category == gold[c.index]
        cost += c.cost_usd + (0.0 if keep else s.cost_usd)
        latency += c.latency_ms + (0.0 if keep else s.latency_ms)
    n = len(cheap) or 1
    return {
        "threshold": threshold,
        "accuracy": right / n,
        "cost_per_review_usd": cost / n,
        "mean_latency_ms": latency / n,
        "escalation_share": escalated / n,
    }


def sweep_cascade(
    gold: Sequence[str],
    cheap: Sequence[Answered],
    strong: Sequence[Answered],
    *,
    target: float | None = None,
    step: float = 0.05,
) -> dict[str, Any]:
    """The curve over thresholds and the cheapest threshold whose accuracy reaches `target`
    (default: the strong variant's own accuracy)."""
    if {c.index for c in cheap} != {s.index for s in strong}:
        raise ValueError("cheap and strong must answer the same reviews")
    n = len(strong) or 1
    strong_acc = sum(s.category == gold[s.index] for s in strong) / n
    cheap_acc = sum(c.category == gold[c.index] for c in cheap) / n
    goal = strong_acc if target is None else target
    curve = [cascade_point(gold, cheap, strong, t) for t in thresholds(step)]
    reaching = [p for p in curve if p["accuracy"] >= goal - 1e-12]
    best = min(reaching, key=lambda p: (p["cost_per_review_usd"], -p["accuracy"]), default=None)
    return {
        "target_accuracy": goal,
        "target_source": "strong variant accuracy" if target is None else "--target-accuracy",
        "cheap_accuracy": cheap_acc,
        "strong_accuracy": strong_acc,
        "strong_cost_per_review_usd": sum(s.cost_usd for s in strong) / n,
        "curve": curve,
        "best": best,
    }
