"""Offline batch triage with a local model: `triage-gateway predict`.

`predict_file(model_dir, data, out)` loads the model directory (any registered format, through
`gateway.local.loader.load_local_model`), reads the reviews of a JSONL/CSV file (labels, if
any, are ignored; see `training.data.read_reviews`) and writes one JSON line per review:

    {"review_id": "r-17", "triage": {"category", "urgency", "topic", "summary"},
     "confidence": 0.93}

`review_id` is the row's `review_id` (or `id`) when it has one, else its 1-based position
among the reviews of the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from gateway.local.loader import load_local_model
from training.data import read_reviews

__all__ = ["predict_file"]


def predict_file(
    model_dir: Path,
    data: Path,
    out: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Triage every review of `data` with the model in `model_dir`, writing JSON lines to
    `out` (replaced atomically when done). Returns the number of lines written."""
    model = load_local_model(Path(model_dir))
    reviews = read_reviews(Path(data))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for n, review in enumerate(reviews, 1):
                pred = model.predict(review.text, review.app, review.rating)
                line = {
                    "review_id": review.review_id if review.review_id is not None else str(n),
                    "triage": pred.triage.to_json_dict(),
                    "confidence": round(pred.confidence, 6),
                }
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
                if progress is not None and (n % 500 == 0 or n == len(reviews)):
                    progress(n, len(reviews))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return len(reviews)
