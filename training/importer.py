"""Import labelled reviews as corrected pairs, so they join the data `training.export` writes.

`import_labelled` reads a JSONL or CSV file (`text`, `category`, and optionally `urgency`,
`topic`, `summary`, `review_id`, `app`, `rating`; also chat lines as `export` writes them)
with `training.data.read_examples`, which checks every label against the default taxonomy
(case and spacing ignored, the validator's synonyms accepted) and names the line of the first
bad row. Nothing is written unless the whole file is valid. Topics and summaries longer than
the triage limits are cut at a word boundary.

Each row becomes a pair record in the pair stream (variant and experiment `import`, model
`human`, the label as the answer), written with `gateway.pairs.pairstore.write_pairs` so the pair
index and the review's set are kept as for live traffic, plus one correction equal to the label
(`source: "import"`). Missing urgency is `Medium`; a missing topic is the first words of the
text, a missing summary its first sentence. Review texts are stored as given: imported files
are not redacted (the gateway redacts live traffic only).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import redis.asyncio as aioredis

from gateway.pairs import pairstore
from gateway.pairs.corrections import make_correction, store_corrections
from gateway.pairs.record import PairRecord, PairTriage
from gateway.request.triage import DEFAULT_TAXONOMY, SUMMARY_MAX_CHARS, TOPIC_MAX_CHARS, Triage
from training.data import DataError, Example, read_examples

IMPORT_VARIANT = "import"
IMPORT_MODEL = "human"
DEFAULT_URGENCY = "Medium"
TOPIC_WORDS = 4
BATCH = 500

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

__all__ = ["DataError", "derive_summary", "derive_topic", "import_labelled", "write_records"]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:-")


def derive_topic(text: str) -> str:
    """A cheap topic: the first few words of the text, title-cased."""
    words = _WORD.findall(text)[:TOPIC_WORDS]
    topic = _clip(" ".join(w[:1].upper() + w[1:] for w in words), TOPIC_MAX_CHARS)
    return topic or "Review"


def derive_summary(text: str) -> str:
    """A cheap summary: the first sentence of the text, ending with a period."""
    first = _SENTENCE_END.split(" ".join(text.split()), maxsplit=1)[0]
    summary = _clip(first, SUMMARY_MAX_CHARS - 1).rstrip(" ,;:-")
    if not summary:
        return "Imported review."
    return summary if summary[-1] in ".!?" else summary + "."


def _triage(ex: Example, line: int, path: Path) -> Triage:
    try:
        return Triage(
            category=ex.category,
            urgency=ex.urgency or DEFAULT_URGENCY,
            topic=_clip(ex.topic, TOPIC_MAX_CHARS) if ex.topic else derive_topic(ex.text),
            summary=_clip(ex.summary, SUMMARY_MAX_CHARS) if ex.summary else derive_summary(ex.text),
        )
    except ValueError as exc:
        raise DataError(f"{path}: row {line}: {exc}") from None


def _record(ex: Example, triage: Triage, experiment: str, now: float) -> PairRecord:
    return PairRecord(
        request_id=f"import-{uuid.uuid4().hex}",
        review_id=ex.review_id,
        text=ex.text,
        app=ex.app,
        rating=ex.rating,
        experiment=experiment,
        variant=IMPORT_VARIANT,
        model=IMPORT_MODEL,
        triage=PairTriage.of(triage),
        ts=now,
    )


async def write_records(
    redis: aioredis.Redis,
    stream: str,
    records: Sequence[PairRecord],
    corrected_by: str | None = None,
) -> int:
    """Write pair records straight into the pair stream (no PairLog, no spool), with a
    correction equal to each record's answer when `corrected_by` is given; returns pairs added.
    Tests use it to seed exact pairs (shadow pairs, confidences) too."""
    added = 0
    for start in range(0, len(records), BATCH):
        chunk = records[start : start + BATCH]
        n, _ = await pairstore.write_pairs(redis, stream, chunk)
        added += n
        if corrected_by is not None:
            corrections = [
                make_correction(
                    rec,
                    DEFAULT_TAXONOMY,
                    category=rec.triage.category or "",
                    urgency=rec.triage.urgency or "",
                    topic=rec.triage.topic,
                    summary=rec.triage.summary,
                    corrected_by=corrected_by,
                    source="import",
                )
                for rec in chunk
            ]
            await store_corrections(redis, corrections)
    return added


async def import_labelled(
    redis: aioredis.Redis,
    stream: str,
    path: Path | str,
    corrected_by: str = "import",
    *,
    experiment: str = IMPORT_VARIANT,
) -> int:
    """Import a labelled JSONL/CSV file as corrected pairs; returns the rows imported.

    Raises `training.data.DataError` (a `ValueError`) naming the file and line of the first
    unusable row, before anything is written."""
    path = Path(path)
    examples = read_examples(path, DEFAULT_TAXONOMY)
    now = time.time()
    records = [
        _record(ex, _triage(ex, i, path), experiment, now) for i, ex in enumerate(examples, 1)
    ]
    return await write_records(redis, stream, records, corrected_by)
