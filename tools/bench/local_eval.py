"""The project's hand-labelled evaluation sets for the local model and the figures measured on
them (used by `tools.bench.local_model` and tests/test_local_model.py).

The sets (tests/data/local_eval/, written and labelled by hand, never used for training):

* `urgency`: 100 English reviews of varied apps, urgency labelled (crash, payment, data loss,
  security and lock-out reports are High or Critical);
* `english`: 60 English reviews, 10 per category;
* `multilingual`: 31 reviews in each of German, Spanish, French, Portuguese, Italian and
  Japanese across the six categories.

Every row: `review_id`, `text`, `lang`, `category`, `urgency`, `app`, `crash` (the review
reports a crash, a freeze or an app that will not open).
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sklearn.metrics import classification_report

from gateway.request.triage import DEFAULT_CATEGORIES, DEFAULT_URGENCIES, Triage

__all__ = [
    "EVAL_DIR",
    "LANGUAGES",
    "SETS",
    "URGENT",
    "accuracy",
    "accuracy_by",
    "crash_misfiled",
    "load_eval_set",
    "summary_checks",
    "token_f1",
    "topic_checks",
    "urgency_report",
    "urgent_recall",
]

EVAL_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "local_eval"
SETS: tuple[str, ...] = ("urgency", "english", "multilingual")
LANGUAGES: dict[str, str] = {
    "en": "English",
    "de": "German",
    "es": "Spanish",
    "fr": "French",
    "pt": "Portuguese",
    "it": "Italian",
    "ja": "Japanese",
}
URGENT: tuple[str, ...] = ("Critical", "High")
_KEYS = {"review_id", "text", "lang", "category", "urgency", "app", "crash"}
_TOKEN_RE = re.compile(r"\w+")
_FIRST_PERSON_RE = re.compile(r"\b(?:i|me|my|mine|myself|we|us|our|ours|i'm|i've|i'd)\b", re.I)


def load_eval_set(name: str, directory: Path = EVAL_DIR) -> list[dict[str, Any]]:
    """The rows of set `name` (one of `SETS`), checked: every key present, labels known."""
    if name not in SETS:
        raise ValueError(f"unknown evaluation set {name!r} (one of {', '.join(SETS)})")
    path = directory / f"{name}.jsonl"
    rows: list[dict[str, Any]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        where = f"{path.name} line {n}"
        if not isinstance(row, dict) or set(row) != _KEYS:
            raise ValueError(f"{where}: expected exactly the keys {sorted(_KEYS)}")
        if row["category"] not in DEFAULT_CATEGORIES:
            raise ValueError(f"{where}: unknown category {row['category']!r}")
        if row["urgency"] not in DEFAULT_URGENCIES:
            raise ValueError(f"{where}: unknown urgency {row['urgency']!r}")
        if row["lang"] not in LANGUAGES:
            raise ValueError(f"{where}: unknown lang {row['lang']!r}")
        if not isinstance(row["text"], str) or not row["text"].strip():
            raise ValueError(f"{where}: empty text")
        if not isinstance(row["crash"], bool):
            raise ValueError(f"{where}: 'crash' must be true or false")
        rows.append(row)
    return rows


def accuracy(rows: Sequence[dict[str, Any]], preds: Sequence[Triage]) -> float:
    """Share of rows whose predicted category is the labelled one."""
    pairs = list(zip(rows, preds, strict=True))
    return statistics.fmean(p.category == r["category"] for r, p in pairs) if pairs else 0.0


def accuracy_by(
    rows: Sequence[dict[str, Any]], preds: Sequence[Triage], key: str
) -> dict[str, tuple[float, int]]:
    """Category accuracy and row count per value of `key` (e.g. "lang")."""
    groups: dict[str, list[bool]] = {}
    for r, p in zip(rows, preds, strict=True):
        groups.setdefault(str(r[key]), []).append(p.category == r["category"])
    return {k: (statistics.fmean(v), len(v)) for k, v in groups.items()}


def urgent_recall(rows: Sequence[dict[str, Any]], preds: Sequence[Triage]) -> float:
    """Of the rows labelled Critical or High, the share predicted Critical or High."""
    hits = [p.urgency in URGENT for r, p in zip(rows, preds, strict=True) if r["urgency"] in URGENT]
    return statistics.fmean(hits) if hits else 0.0


def urgency_report(rows: Sequence[dict[str, Any]], preds: Sequence[Triage]) -> dict[str, Any]:
    """scikit-learn's classification report of the urgency (per class precision, recall, F1,
    support; accuracy; macro and weighted averages)."""
    report: dict[str, Any] = classification_report(
        [r["urgency"] for r in rows],
        [p.urgency for p in preds],
        labels=list(DEFAULT_URGENCIES),
        output_dict=True,
        zero_division=0,
    )
    return report


def crash_misfiled(rows: Sequence[dict[str, Any]], preds: Sequence[Triage]) -> list[str]:
    """review_ids of crash reports predicted Praise or Other."""
    return [
        str(r["review_id"])
        for r, p in zip(rows, preds, strict=True)
        if r["crash"] and p.category in ("Praise", "Other")
    ]


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN_RE.findall(text)]


def token_f1(predicted: str, gold: str) -> float:
    """Token-level F1 of two phrases (lower-cased words, counted with multiplicity)."""
    p, g = Counter(_tokens(predicted)), Counter(_tokens(gold))
    common = sum((p & g).values())
    if not common:
        return 0.0
    precision, recall = common / sum(p.values()), common / sum(g.values())
    return 2 * precision * recall / (precision + recall)


def topic_checks(preds: Sequence[Triage], stop_words: frozenset[str]) -> dict[str, float]:
    """Shares of topics that are 1-4 words and not made only of stop words."""
    n = len(preds)
    if not n:
        return {"n": 0, "one_to_four_words": 0.0, "not_stop_words_only": 0.0}
    words = [p.topic.split() for p in preds]
    return {
        "n": n,
        "one_to_four_words": sum(1 <= len(w) <= 4 for w in words) / n,
        "not_stop_words_only": sum(not all(x.lower() in stop_words for x in w) for w in words if w)
        / n,
    }


def summary_checks(rows: Sequence[dict[str, Any]], preds: Sequence[Triage]) -> dict[str, Any]:
    """The summary rules: at most 25 words; a third-person frame ("The user ...") with no
    first-person pronoun (English rows: non-English clauses are quoted as written); a
    question's summary (a row labelled Question whose text has a question mark) ends with
    "?"; the summary is not the review's first sentence copied back."""
    pairs = list(zip(rows, preds, strict=True))
    english = [(r, p) for r, p in pairs if r["lang"] == "en"]
    questions = [
        (r, p) for r, p in pairs if r["category"] == "Question" and re.search(r"[?？]", r["text"])
    ]

    def first_sentence(text: str) -> str:
        return re.split(r"(?<=[.!?。！？])\s*", text.strip())[0].strip().lower()

    def share(items: list[bool]) -> float:
        return statistics.fmean(items) if items else 1.0

    return {
        "n": len(pairs),
        "max_words": max((len(p.summary.split()) for _, p in pairs), default=0),
        "within_25_words": share([len(p.summary.split()) <= 25 for _, p in pairs]),
        "n_english": len(english),
        "third_person": share(
            [
                p.summary.startswith("The user ") and not _FIRST_PERSON_RE.search(p.summary)
                for _, p in english
            ]
        ),
        "n_questions": len(questions),
        "question_kept": share([p.summary.rstrip().endswith(("?", "？")) for _, p in questions]),
        "not_first_sentence": share(
            [p.summary.strip().lower() != first_sentence(r["text"]) for r, p in pairs]
        ),
    }
