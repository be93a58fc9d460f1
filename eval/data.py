"""Labelled review sets for offline eval: a thin layer over `training.data`, the one reader of
each format (and the one place labels are canonicalised, with the validator's synonyms).

Formats, by file suffix:

* `.jsonl`: one object per line, either `{"text", "category", "urgency"?, "review_id"?, "app"?,
  "rating"?}` or a chat example (`{"messages": [system, user, assistant]}`, as in the exported
  `val.jsonl`) whose label is the assistant's JSON answer;
* `.csv`: a header row with at least `text` and `category` (and optionally the fields above);
* `.arff`: the MARC sets (`'text',Label` after `@data`; BugReport, FeatureRequest, Other).
  Unlike training, eval keeps every row of the file, MARC's `Other` included.

A label that maps to no category is an error naming the file and line.
"""

from __future__ import annotations

import random
from pathlib import Path

from gateway.request.triage import DEFAULT_TAXONOMY, ReviewIn, Taxonomy
from training.data import DataError, Example, read_examples, read_marc_arff

__all__ = ["DataError", "LabelledReview", "load_labelled", "sample", "to_review"]

LabelledReview = Example
"""One labelled review of an eval set (`training.data.Example`)."""

_FORMATS = {".jsonl", ".json", ".ndjson", ".csv", ".arff"}


def load_labelled(path: Path, taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> list[LabelledReview]:
    """Read a labelled set (see the module docstring for the formats)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise DataError(f"{path}: unknown format (use .jsonl, .csv or .arff)")
    if suffix != ".arff":
        return read_examples(path, taxonomy)
    rows = read_marc_arff(path, keep_other=True)
    for row in rows:
        if row.category not in taxonomy.categories:
            raise DataError(f"{path}: category {row.category!r} is not in the taxonomy")
    return rows


def to_review(row: LabelledReview) -> ReviewIn:
    """The review of a labelled row, as the gateway takes it."""
    return ReviewIn(text=row.text, review_id=row.review_id, app=row.app, rating=row.rating)


def sample(rows: list[LabelledReview], limit: int | None, seed: int = 0) -> list[LabelledReview]:
    """At most `limit` rows, a seeded random subset in file order (files are often sorted by
    label, so the first N rows would be one class)."""
    if limit is None or limit >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in keep]
