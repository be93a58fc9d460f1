"""Sticky, weighted assignment of reviews to variants.

Scheme: weighted rendezvous hashing (highest random weight). For a review with an id, every
variant `v` with weight `w_v > 0` draws `u_v = H(salt, review_id, v)` uniform in (0, 1) from
BLAKE2b, and the review goes to the variant with the largest `w_v / -ln(u_v)`. This gives:

* deterministic: the same (salt, review_id, weights) gives the same variant on every replica,
  with no shared state beyond the weights;
* exact shares: P(v wins) = w_v / sum(w) (the scores are exponential races);
* minimal movement: changing one variant's weight moves only reviews into or out of that
  variant: between any two other variants nothing moves, so raising a candidate from 5% to
  25% moves ~20% of reviews, all of them to the candidate. Adding a variant likewise only
  takes reviews to the new one. A contiguous-bucket scheme would reshuffle the tail instead.

Requests without a review id get a random draw with the same shares. Changing the salt
reshuffles everything (use it to start a fresh experiment).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from hashlib import blake2b

_SCALE = float(1 << 64)
_RNG = random.Random()


def _uniform(prefix: bytes, variant: str) -> float:
    digest = blake2b(prefix + variant.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / _SCALE


def assign_variant(
    salt: str,
    weights: Mapping[str, float],
    review_id: str | None,
    rng: random.Random | None = None,
) -> str:
    """Pick a variant name for `review_id` (sticky) or at random when there is none.

    `weights` maps variant names to non-negative weights, at least one positive.
    """
    live = [(name, w) for name, w in weights.items() if w > 0]
    if not live:
        raise ValueError("no variant has a weight above 0")
    if len(live) == 1:
        return live[0][0]
    if review_id is None:
        return _random_pick(live, rng or _RNG)
    prefix = f"{salt}\x1f{review_id}\x1f".encode()
    best_name, best_score = live[0][0], -1.0
    for name, w in live:
        score = w / -math.log(_uniform(prefix, name))
        if score > best_score:
            best_name, best_score = name, score
    return best_name


def _random_pick(live: Sequence[tuple[str, float]], rng: random.Random) -> str:
    total = sum(w for _, w in live)
    x = rng.random() * total
    for name, w in live:
        x -= w
        if x < 0:
            return name
    return live[-1][0]


def should_sample(rate: float, rng: random.Random | None = None) -> bool:
    """True with probability `rate` (used for shadow traffic)."""
    return rate > 0 and (rate >= 1 or (rng or _RNG).random() < rate)
