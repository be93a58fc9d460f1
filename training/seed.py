"""The project's own labelled seed reviews, shipped in `gateway/data/seed_reviews.jsonl`.

They train the built-in baseline model (`training.baseline`) and stand in for urgency labels
when a training set has none (`training.local`).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from importlib import resources
from typing import Any

from training.data import Example

__all__ = [
    "SEED_SOURCE",
    "load_seed_examples",
    "load_seed_records",
    "records_to_examples",
    "seed_bytes",
    "seed_sha256",
    "template_split",
]

_SEED_PACKAGE = "gateway"
_SEED_RESOURCE = ("data", "seed_reviews.jsonl")
SEED_SOURCE = "/".join((_SEED_PACKAGE, *_SEED_RESOURCE))


def seed_bytes() -> bytes:
    """The shipped seed file's bytes."""
    return resources.files(_SEED_PACKAGE).joinpath(*_SEED_RESOURCE).read_bytes()


def seed_sha256() -> str:
    """sha256 of the shipped seed file (recorded in the baseline's card)."""
    return hashlib.sha256(seed_bytes()).hexdigest()


def load_seed_records(data: bytes | None = None) -> list[dict[str, Any]]:
    """The seed reviews (of `data`, default the shipped file): dicts with text, category,
    urgency, topic, summary, app, rating."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate((seed_bytes() if data is None else data).decode().splitlines(), 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if not isinstance(rec, dict):
            raise ValueError(f"seed line {n}: expected a JSON object")
        out.append(rec)
    return out


def load_seed_examples(data: bytes | None = None) -> list[Example]:
    """`load_seed_records` as training examples (text, category, urgency, app, rating)."""
    return records_to_examples(load_seed_records(data))


def template_split(
    records: Sequence[dict[str, Any]], test_share: float = 0.25, seed: int = 20240611
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, test) seed records such that no sentence template (the record's `template`,
    the core sentence it was generated from) has rows on both sides. Templates are shuffled
    with `seed` and taken into the test side, per category, until it holds `test_share` of
    that category's rows."""
    by_cat: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for rec in records:
        template = str(rec.get("template") or rec["text"])
        by_cat.setdefault(str(rec["category"]), {}).setdefault(template, []).append(rec)
    rng = random.Random(seed)
    train: list[dict[str, Any]] = []
    test: list[dict[str, Any]] = []
    for category in sorted(by_cat):
        groups = by_cat[category]
        names = sorted(groups)
        rng.shuffle(names)
        total = sum(len(g) for g in groups.values())
        taken = 0
        for name in names:
            if taken < test_share * total:
                test += groups[name]
                taken += len(groups[name])
            else:
                train += groups[name]
    return train, test


def records_to_examples(records: Sequence[dict[str, Any]]) -> list[Example]:
    """Seed records as training examples."""
    return [
        Example(
            text=str(r["text"]),
            category=str(r["category"]),
            urgency=str(r["urgency"]),
            app=r.get("app"),
            rating=r.get("rating"),
            source=SEED_SOURCE,
        )
        for r in records
    ]
