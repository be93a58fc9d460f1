"""Readers for the labelled sets the local model trains on, into one record shape.

Formats, chosen by file suffix (`read_examples`):

* `.jsonl` / `.json`: one object per line, either a labelled review `{"text", "category",
  "urgency"?, "topic"?, "summary"?, "review_id"?, "app"?, "rating"?}` or a chat example as the
  gateway exports it (`{"messages": [system, user, assistant]}`), whose review is the user
  message (with its `App:` / `Rating:` head taken off) and whose labels are the assistant's
  triage JSON;
* `.csv`: a header row with at least `text` and `category` (other columns as above);
* `.arff`: the MARC sets of Jha & Mahmoud (`'text',Label` rows after `@data`);
* `.xlsx`: the Huang Google Play sets (columns `review`, `label`), filtered for the synthetic
  augmentation the data README describes and de-duplicated (`read_huang_xlsx`).

Every label mapping from an outside set to the triage taxonomy lives here (`MARC_LABELS`,
`HUANG_LABELS`), and free-form labels are canonicalised with the validator's synonyms.
`read_reviews` reads the same files for prediction, keeping only the review (labels ignored).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway.request.triage import DEFAULT_TAXONOMY, Taxonomy
from gateway.request.validate import CATEGORY_SYNONYMS, URGENCY_SYNONYMS, canonical_label

__all__ = [
    "HUANG_AUGMENTED_RE",
    "HUANG_LABELS",
    "MARC_LABELS",
    "MARC_TRAIN_KEEPS_OTHER",
    "DataError",
    "Example",
    "Review",
    "dedupe",
    "read_examples",
    "read_huang_xlsx",
    "read_marc_arff",
    "read_reviews",
    "stratified_split",
]

# --- label mappings: the one place that says what an outside label means in our taxonomy ---

MARC_LABELS: dict[str, str] = {
    "BugReport": "Bug Report",
    "FeatureRequest": "Feature Request",
    # a mix of praise, complaints and generic comments at sentence level: only "not a bug, not
    # a feature". Read only with `keep_other=True`: for training it is left out (see below).
    "Other": "Other",
}
# MARC's "Other" is not our "Other": it mixes praise, complaints and chatter, while Huang's
# "user experience" (our Other) describes using the app. Training on both under one label
# taught the model to call short bug and feature sentences "Other"; leaving MARC's Other rows
# out raised bug/feature accuracy in cross-validation on the training data (0.81 -> 0.85) with
# Huang macro-F1 unchanged, so `read_marc_arff` drops them unless asked.
MARC_TRAIN_KEEPS_OTHER = False
HUANG_LABELS: dict[str, str] = {
    "bug report": "Bug Report",
    "feature request": "Feature Request",
    # mostly short praise ("Very nice and cool"); the file has no stars to split off negatives
    "rating": "Praise",
    # descriptions of using a feature; overlaps praise and complaint
    "user experience": "Other",
}
# EDA-style augmentation artefacts in the Huang files (WordNet lemma names such as
# `atomic_number_53`, tokenised contractions `ca n't`, split clitics ` 's`, spaced punctuation).
HUANG_AUGMENTED_RE = re.compile(r"\b[a-z]+_[a-z_0-9]+\b|\w n't\b| '(s|re|ve|m|ll|d)\b| [.,!?]( |$)")

_ARFF_ROW = re.compile(r"^'(.*)',\s*([A-Za-z]+)\s*$")
_PROMPT_HEAD = re.compile(r"^(?:App: (?P<app>.*)\n)?(?:Rating: (?P<rating>[1-5])/5\n)?Review:\n")
_SPACES = re.compile(r"\s+")
MAX_TEXT_CHARS = 8000


class DataError(ValueError):
    """A data file is unreadable or holds a row that cannot be used."""


@dataclass(frozen=True, slots=True)
class Review:
    """One review to classify (labels, if the file had any, are not kept)."""

    text: str
    review_id: str | None = None
    app: str | None = None
    rating: int | None = None


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled review. `urgency`, `topic` and `summary` are optional: the outside sets
    label the category only."""

    text: str
    category: str
    urgency: str | None = None
    topic: str | None = None
    summary: str | None = None
    review_id: str | None = None
    app: str | None = None
    rating: int | None = None
    source: str = ""


# --------------------------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------------------------


def read_examples(path: Path, taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> list[Example]:
    """Read a labelled file (see the module docstring for the formats)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return read_huang_xlsx(path)
    if suffix == ".arff":
        return read_marc_arff(path)
    rows = list(_rows(path))
    if not rows:
        raise DataError(f"{path}: no rows")
    return [_example(path, line, row, taxonomy) for line, row in rows]


def read_reviews(path: Path) -> list[Review]:
    """Read the reviews of a JSONL/CSV (or ARFF/XLSX) file for prediction; labels are ignored.
    A row's `review_id` (or `id`) is kept when present."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in {".arff", ".xlsx"}:
        rows = read_marc_arff(path, keep_other=True) if suffix == ".arff" else read_examples(path)
        return [
            Review(text=e.text, review_id=e.review_id, app=e.app, rating=e.rating) for e in rows
        ]
    out: list[Review] = []
    for line, row in _rows(path, labels=False):
        text = str(row.get("text") or "").strip()
        if not text:
            raise DataError(f"{path}:{line}: empty text")
        rid = row.get("review_id", row.get("id"))
        out.append(
            Review(
                text=text[:MAX_TEXT_CHARS],
                review_id=str(rid) if rid not in (None, "") else None,
                app=str(row["app"])[:200] if row.get("app") else None,
                rating=_rating(row.get("rating")),
            )
        )
    return out


def read_marc_arff(path: Path, *, keep_other: bool = MARC_TRAIN_KEEPS_OTHER) -> list[Example]:
    """The MARC `BOW *.arff` files: `'text',Label` rows after `@data`, labels mapped with
    `MARC_LABELS`; `Other` rows only with `keep_other` (see `MARC_TRAIN_KEEPS_OTHER`). Rows
    are returned as they are (the training file repeats a few texts)."""
    path = Path(path)
    out: list[Example] = []
    in_data = False
    for line_no, line in enumerate(_read_text(path).splitlines(), 1):
        stripped = line.strip()
        if not in_data:
            in_data = stripped.lower() == "@data"
            continue
        if not stripped or stripped.startswith("%"):
            continue
        match = _ARFF_ROW.match(stripped)
        if match is None or match.group(2) not in MARC_LABELS:
            raise DataError(f"{path}:{line_no}: not a `'text',Label` row with a MARC label")
        text = match.group(1).strip()
        if match.group(2) == "Other" and not keep_other:
            continue
        if text:
            out.append(Example(text=text, category=MARC_LABELS[match.group(2)], source="marc"))
    if not out:
        raise DataError(f"{path}: no @data rows")
    return out


def read_huang_xlsx(path: Path, *, keep_augmented: bool = False) -> list[Example]:
    """A Huang Google Play workbook (`review`, `label` columns), labels mapped with
    `HUANG_LABELS`. Rows that look like synthetic augmentation (`HUANG_AUGMENTED_RE`) are dropped
    unless `keep_augmented`; then texts are de-duplicated (`dedupe`), dropping texts that carry
    conflicting labels. `review_id` is the file's `ID`."""
    from openpyxl import load_workbook  # only this reader needs it

    path = Path(path)
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: cannot read workbook ({exc})") from None
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = [str(h or "").strip().lower() for h in next(rows, ())]
        if "review" not in header or "label" not in header:
            raise DataError(f"{path}: the first sheet needs `review` and `label` columns")
        i_text, i_label = header.index("review"), header.index("label")
        i_id = header.index("id") if "id" in header else None
        out: list[Example] = []
        for row_no, row in enumerate(rows, 2):
            text = str(row[i_text] or "").strip()
            raw_label = str(row[i_label] or "")
            if not text:
                continue
            label = canonical_label(raw_label, tuple(HUANG_LABELS), {})
            if label is None:
                raise DataError(f"{path}:{row_no}: label {raw_label!r} is not a Huang label")
            if not keep_augmented and HUANG_AUGMENTED_RE.search(text):
                continue
            rid = row[i_id] if i_id is not None else None
            out.append(
                Example(
                    text=text[:MAX_TEXT_CHARS],
                    category=HUANG_LABELS[label],
                    review_id=str(rid) if rid is not None else None,
                    source="huang",
                )
            )
    finally:
        wb.close()
    return dedupe(out)


def dedupe(examples: Sequence[Example]) -> list[Example]:
    """Keep the first example of each text (compared case- and whitespace-insensitively); a
    text seen with two different categories is dropped altogether."""
    by_key: dict[str, list[Example]] = defaultdict(list)
    order: list[str] = []
    for ex in examples:
        key = text_key(ex.text)
        if key not in by_key:
            order.append(key)
        by_key[key].append(ex)
    return [by_key[k][0] for k in order if len({e.category for e in by_key[k]}) == 1 and k.strip()]


def text_key(text: str) -> str:
    """The identity of a text for de-duplication and split leak checks."""
    return _SPACES.sub(" ", text.casefold()).strip()


def stratified_split(
    examples: Sequence[Example], test_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split into (train, test), `test_fraction` of each category held out, at random with a
    fixed `seed`; both keep the input order. A category with a single example stays in train."""
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    from sklearn.model_selection import train_test_split  # slow to import; only needed here

    cats = [ex.category for ex in examples]
    sizes = Counter(cats)
    splittable = [i for i, cat in enumerate(cats) if sizes[cat] > 1]
    if not splittable:
        return list(examples), []
    try:
        _, held_idx = train_test_split(
            splittable,
            test_size=test_fraction,
            random_state=seed,
            stratify=[cats[i] for i in splittable],
        )
    except ValueError as exc:  # too few rows for one of each category on both sides
        raise ValueError(f"cannot hold out {test_fraction:.0%} of each category: {exc}") from None
    held = set(held_idx)
    train = [ex for i, ex in enumerate(examples) if i not in held]
    test = [ex for i, ex in enumerate(examples) if i in held]
    return train, test


def label_counts(examples: Sequence[Example]) -> dict[str, int]:
    return dict(sorted(Counter(e.category for e in examples).items()))


# --------------------------------------------------------------------------------------------
# JSONL / CSV rows
# --------------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


def _rows(path: Path, *, labels: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".jsonl", ".json", ".ndjson"}:
        raise DataError(f"{path}: unknown format (use .jsonl, .csv, .arff or .xlsx)")
    text = _read_text(path)
    if suffix == ".csv":
        yield from _csv_rows(path, text, labels=labels)
    else:
        yield from _jsonl_rows(path, text, labels=labels)


def _csv_rows(path: Path, text: str, *, labels: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    need = {"text", "category"} if labels else {"text"}
    if reader.fieldnames is None or not need <= {f.strip() for f in reader.fieldnames}:
        raise DataError(f"{path}: the header needs columns {sorted(need)}")
    for row in reader:
        yield reader.line_num, {(k or "").strip(): v for k, v in row.items()}


def _jsonl_rows(path: Path, text: str, *, labels: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        obj = _json_object(line, f"{path}:{line_no}: ")
        yield line_no, (_from_chat(path, line_no, obj, labels=labels) if "messages" in obj else obj)


def _json_object(raw: str, prefix: str) -> dict[str, Any]:
    """`raw` as a JSON object: a row and a chat example's answer must both be one, and the
    DataError says which (`prefix` opens its message)."""
    try:
        obj = json.loads(raw)
    except ValueError:
        raise DataError(f"{prefix}not JSON") from None
    if not isinstance(obj, dict):
        raise DataError(f"{prefix}not a JSON object")
    return obj


def _from_chat(path: Path, line_no: int, obj: dict[str, Any], *, labels: bool) -> dict[str, Any]:
    """A chat example: the review is the user message, the labels the assistant's JSON."""
    where = f"{path}:{line_no}"
    messages = obj.get("messages")
    if not isinstance(messages, list):
        raise DataError(f"{where}: `messages` must be a list")
    by_role = {m.get("role"): m.get("content") for m in messages if isinstance(m, dict)}
    user, answer = by_role.get("user"), by_role.get("assistant")
    if not isinstance(user, str):
        raise DataError(f"{where}: needs a user message")
    row: dict[str, Any] = {}
    head = _PROMPT_HEAD.match(user)
    if head is not None:
        row.update(text=user[head.end() :], app=head["app"], rating=head["rating"])
    else:
        row["text"] = user
    for key in ("review_id", "id"):
        if obj.get(key) is not None:
            row["review_id"] = obj[key]
    if isinstance(obj.get("metadata"), dict) and obj["metadata"].get("review_id") is not None:
        row.setdefault("review_id", obj["metadata"]["review_id"])
    if not labels:
        return row
    if not isinstance(answer, str):
        raise DataError(f"{where}: needs an assistant message")
    label = _json_object(answer, f"{where}: the assistant message is ")
    for key in ("category", "urgency", "topic", "summary"):
        row[key] = label.get(key)
    return row


def _example(path: Path, line: int, row: dict[str, Any], tax: Taxonomy) -> Example:
    where = f"{path}:{line}"
    text = str(row.get("text") or "").strip()
    if not text:
        raise DataError(f"{where}: empty text")
    category = canonical_label(str(row.get("category") or ""), tax.categories, CATEGORY_SYNONYMS)
    if category is None:
        raise DataError(f"{where}: category {row.get('category')!r} is not in the taxonomy")
    urgency = None
    if row.get("urgency"):
        urgency = canonical_label(str(row["urgency"]), tax.urgencies, URGENCY_SYNONYMS)
        if urgency is None:
            raise DataError(f"{where}: urgency {row['urgency']!r} is not in the taxonomy")
    rid = row.get("review_id", row.get("id"))
    return Example(
        text=text[:MAX_TEXT_CHARS],
        category=category,
        urgency=urgency,
        topic=_opt_str(row.get("topic")),
        summary=_opt_str(row.get("summary")),
        review_id=str(rid) if rid not in (None, "") else None,
        app=str(row["app"])[:200] if row.get("app") else None,
        rating=_rating(row.get("rating")),
        source=path.name,
    )


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def _rating(value: Any) -> int | None:
    try:
        rating = int(value)
    except (TypeError, ValueError):
        return None
    return rating if 1 <= rating <= 5 else None


def with_source(examples: Sequence[Example], source: str) -> list[Example]:
    return [replace(e, source=source) for e in examples]
