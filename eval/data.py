"""Labelled review sets for offline eval, read into one shape.

Formats, by file suffix:

* `.jsonl`: one object per line, either `{"text", "category", "urgency"?, "review_id"?, "app"?,
  "rating"?}` or a chat example (`{"messages": [system, user, assistant]}`, as in the exported
  `val.jsonl`) whose label is the assistant's JSON answer;
* `.csv`: a header row with at least `text` and `category` (and optionally the fields above);
* `.arff`: the MARC sets (`'text',Label` after `@data`; BugReport, FeatureRequest, Other).

Labels are mapped onto the taxonomy (case-insensitive, with the validator's synonyms); a label
that maps to no category is an error naming the file and line.
"""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.triage import DEFAULT_TAXONOMY, ReviewIn, Taxonomy
from gateway.validation import CATEGORY_SYNONYMS, URGENCY_SYNONYMS

MARC_LABELS = {"BugReport": "Bug Report", "FeatureRequest": "Feature Request", "Other": "Other"}
_ARFF_ROW = re.compile(r"^'(.*)',\s*(BugReport|FeatureRequest|Other)\s*$")
_PROMPT_HEAD = re.compile(r"^(?:App: (?P<app>.*)\n)?(?:Rating: (?P<rating>[1-5])/5\n)?Review:\n")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


class DataError(ValueError):
    """A labelled file is unreadable or holds a row that cannot be used."""


@dataclass(frozen=True, slots=True)
class LabelledReview:
    text: str
    category: str
    urgency: str | None = None
    review_id: str | None = None
    app: str | None = None
    rating: int | None = None

    def review(self) -> ReviewIn:
        return ReviewIn(text=self.text, review_id=self.review_id, app=self.app, rating=self.rating)


def _norm(label: str) -> str:
    return _NON_ALNUM.sub("", label.casefold())


def canonical(label: str, allowed: tuple[str, ...], synonyms: dict[str, str]) -> str | None:
    """`label` as one of `allowed` (case, spacing and synonyms ignored), or None."""
    key = _norm(label)
    for name in allowed:
        if _norm(name) == key:
            return name
    mapped = synonyms.get(key)
    return mapped if mapped in allowed else None


def load_labelled(path: Path, taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> list[LabelledReview]:
    """Read a labelled set (see the module docstring for the formats)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    suffix = path.suffix.lower()
    if suffix == ".arff":
        rows = list(_arff_rows(path, text))
    elif suffix == ".csv":
        rows = list(_csv_rows(path, text))
    elif suffix in {".jsonl", ".json"}:
        rows = list(_jsonl_rows(path, text))
    else:
        raise DataError(f"{path}: unknown format (use .jsonl, .csv or .arff)")
    if not rows:
        raise DataError(f"{path}: no labelled rows")
    return [_labelled(path, line, row, taxonomy) for line, row in rows]


def sample(rows: list[LabelledReview], limit: int | None, seed: int = 0) -> list[LabelledReview]:
    """At most `limit` rows, a seeded random subset in file order (files are often sorted by
    label, so the first N rows would be one class)."""
    if limit is None or limit >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in keep]


def _labelled(path: Path, line: int, row: dict[str, Any], tax: Taxonomy) -> LabelledReview:
    where = f"{path}:{line}"
    text = str(row.get("text") or "").strip()
    if not text:
        raise DataError(f"{where}: empty text")
    category = canonical(str(row.get("category") or ""), tax.categories, CATEGORY_SYNONYMS)
    if category is None:
        raise DataError(f"{where}: category {row.get('category')!r} is not in the taxonomy")
    urgency = None
    if row.get("urgency"):
        urgency = canonical(str(row["urgency"]), tax.urgencies, URGENCY_SYNONYMS)
        if urgency is None:
            raise DataError(f"{where}: urgency {row['urgency']!r} is not in the taxonomy")
    return LabelledReview(
        text=text[:8000],
        category=category,
        urgency=urgency,
        review_id=str(row["review_id"]) if row.get("review_id") else None,
        app=str(row["app"])[:200] if row.get("app") else None,
        rating=_rating(row.get("rating")),
    )


def _rating(value: Any) -> int | None:
    try:
        rating = int(value)
    except (TypeError, ValueError):
        return None
    return rating if 1 <= rating <= 5 else None


def _arff_rows(path: Path, text: str) -> Any:
    in_data = False
    for line_no, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not in_data:
            in_data = stripped.lower() == "@data"
            continue
        if not stripped or stripped.startswith("%"):
            continue
        match = _ARFF_ROW.match(stripped)
        if match is None:
            raise DataError(f"{path}:{line_no}: not a `'text',Label` row")
        yield line_no, {"text": match.group(1), "category": MARC_LABELS[match.group(2)]}


def _csv_rows(path: Path, text: str) -> Any:
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or not {"text", "category"} <= set(reader.fieldnames):
        raise DataError(f"{path}: the header needs `text` and `category` columns")
    yield from enumerate(reader, 2)


def _jsonl_rows(path: Path, text: str) -> Any:
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise DataError(f"{path}:{line_no}: not JSON") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{line_no}: not a JSON object")
        yield line_no, (_from_chat(path, line_no, obj) if "messages" in obj else obj)


def _from_chat(path: Path, line_no: int, obj: dict[str, Any]) -> dict[str, Any]:
    """A chat example: the review is the user message, the label the assistant's JSON."""
    messages = obj.get("messages")
    if not isinstance(messages, list):
        raise DataError(f"{path}:{line_no}: `messages` must be a list")
    by_role = {m.get("role"): m.get("content") for m in messages if isinstance(m, dict)}
    user, answer = by_role.get("user"), by_role.get("assistant")
    if not isinstance(user, str) or not isinstance(answer, str):
        raise DataError(f"{path}:{line_no}: needs a user and an assistant message")
    try:
        label = json.loads(answer)
    except ValueError:
        raise DataError(f"{path}:{line_no}: the assistant message is not JSON") from None
    if not isinstance(label, dict):
        raise DataError(f"{path}:{line_no}: the assistant message is not a JSON object")
    row: dict[str, Any] = {"category": label.get("category"), "urgency": label.get("urgency")}
    head = _PROMPT_HEAD.match(user)
    if head is not None:
        row.update(text=user[head.end() :], app=head["app"], rating=head["rating"])
    else:
        row["text"] = user
    return row
