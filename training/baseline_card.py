"""Whether the built-in baseline model of a data directory is current, read from its card with
no training library loaded.

`triage-gateway serve` checks this in its own process and builds the model
(`training.baseline`, which loads scikit-learn) only when it is not current, in a child
process: the server never holds the training libraries.
"""

from __future__ import annotations

import json
from pathlib import Path

from gateway.local.loader import baseline_model_path
from gateway.local.tfidf import FORMAT, FORMAT_VERSION, VOCABULARY_FILE, WEIGHTS_FILE
from training.seed import seed_sha256

__all__ = ["BASELINE_RECIPE", "baseline_is_current", "card_is_current"]

# Bumped when the recipe changes (settings, features, export): a baseline of another recipe is
# rebuilt by the next `serve`.
BASELINE_RECIPE = 2


def baseline_is_current(data_dir: Path) -> bool:
    """Whether `baseline_model_path(data_dir)` holds a baseline of the shipped seed reviews,
    this code's format version and recipe (`card_is_current`)."""
    return card_is_current(baseline_model_path(data_dir), seed_sha256())


def card_is_current(path: Path, seed_sha: str) -> bool:
    """Whether the model directory `path` has both its files and a card that records
    `seed_sha` (the seed file's sha256), the `tfidf-linear` format version and
    `BASELINE_RECIPE` (the files are plain JSON + numpy arrays: library versions do not
    matter)."""
    try:
        card = json.loads((path / "model_card.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(card, dict)
        and card.get("format") == FORMAT
        and card.get("format_version") == FORMAT_VERSION
        and card.get("seed_sha256") == seed_sha
        and card.get("recipe") == BASELINE_RECIPE
        and (path / str(card.get("vocabulary_file") or VOCABULARY_FILE)).is_file()
        and (path / str(card.get("weights_file") or WEIGHTS_FILE)).is_file()
    )
