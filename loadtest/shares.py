"""What the load test's users saw, and the end-of-run judgement of the variant shares.

Kept apart from the locustfile so it can be imported (and tested) without locust, whose
import monkey-patches the standard library with gevent.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from loadtest.reviews import Review

SHARE_TOLERANCE = 0.02  # 2 points
# Judge shares only on enough distinct reviews that a correct gateway stays within the
# tolerance with ~99.7% probability (3 standard deviations of a binomial share).
SIGMAS = 3.0


@dataclass
class Tally:
    """What the users saw, for the end-of-run checks (one process: gevent, no locks needed)."""

    categories: frozenset[str] = frozenset()
    urgencies: frozenset[str] = frozenset()
    expected: dict[str, float] = field(default_factory=dict)  # variant -> share, from routes
    per_request: Counter[str] = field(default_factory=Counter)
    first_variant: dict[str, str] = field(default_factory=dict)  # review_id -> assigned variant
    routes_error: str | None = None

    def check(self, review: Review, payload: Any, variant: Any, fallback_from: Any) -> str | None:
        """None when the answer is right, else what is wrong with it."""
        if not isinstance(payload, dict):
            return "triage is not an object"
        category, urgency = payload.get("category"), payload.get("urgency")
        if category not in self.categories:
            return f"category {category!r} is not in the taxonomy"
        if urgency not in self.urgencies:
            return f"urgency {urgency!r} is not in the taxonomy"
        for key in ("topic", "summary"):
            if not isinstance(payload.get(key), str) or not payload[key].strip():
                return f"{key} missing or empty"
        # A fallback answer was served by another variant than the one assigned: count the
        # assignment (that is what the weights govern).
        assigned = fallback_from if isinstance(fallback_from, str) else variant
        if assigned not in self.expected:
            return f"variant {assigned!r} is not in the experiment"
        self.per_request[assigned] += 1
        first = self.first_variant.setdefault(review.review_id, assigned)
        if first != assigned:
            return f"review {review.review_id} moved from {first} to {assigned} (not sticky)"
        return None


def share_report(tally: Tally) -> tuple[list[str], list[str]]:
    """(report lines, problems). Shares are judged over distinct review ids, not requests.

    Assignment is a deterministic function of (salt, review_id, weights): a repeated id is no
    new draw, it replays its first outcome. Counting every request would weight each id by how
    often the generator happened to repeat it (early ids more often), which adds variance and
    no information; the independent samples are the distinct ids. The per-request split is
    printed too (it is what traffic and cost look like), but only the per-id share is judged.
    """
    distinct = Counter(tally.first_variant.values())
    n = sum(distinct.values())
    total = sum(tally.per_request.values())
    lines, problems = [f"variant shares over {n} distinct reviews ({total} answers):"], []
    worst = max((p * (1 - p) for p in tally.expected.values()), default=0.0)
    needed = math.ceil(SIGMAS**2 * worst / SHARE_TOLERANCE**2)
    for variant, want in sorted(tally.expected.items()):
        got = distinct[variant] / n if n else 0.0
        req = tally.per_request[variant] / total if total else 0.0
        lines.append(
            f"  {variant:<12} expected {want:6.1%}  per review {got:6.1%}  per request {req:6.1%}"
        )
        if n >= needed and abs(got - want) > SHARE_TOLERANCE:
            problems.append(f"{variant}: {got:.1%} of reviews, expected {want:.1%} ± 2 points")
    if n < needed:
        lines.append(f"  (shares not judged: {n} distinct reviews, {needed} needed)")
    return lines, problems
