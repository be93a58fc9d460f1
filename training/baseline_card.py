"""Whether the built-in baseline model of a data directory is current, read from its card with
no training library loaded.

The package ships the baseline trained (`PACKAGED_BASELINE`, rebuilt by `make seed-data`), so
`triage-gateway serve` checks this in its own process and copies that directory into the data
directory (`install_packaged_baseline`); only when the shipped one is not current either does
it build the model (`training.baseline`, which loads scikit-learn), in a child process: the
server never holds the training libraries.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import gateway
from gateway.local.loader import BASELINE_NAME, baseline_model_path
from gateway.local.tfidf import FORMAT, FORMAT_VERSION, VOCABULARY_FILE, WEIGHTS_FILE
from training.dirs import swap_dir
from training.seed import seed_sha256

__all__ = [
    "BASELINE_RECIPE",
    "PACKAGED_BASELINE",
    "baseline_is_current",
    "card_is_current",
    "install_packaged_baseline",
]

PACKAGED_BASELINE = Path(gateway.__file__).parent / "data" / BASELINE_NAME
"""The baseline trained on the shipped seed reviews, in the package: `make seed-data` rebuilds
it with the seed file, and a test checks that its card matches them."""

# Bumped when the recipe changes (settings, features, export): a baseline of another recipe is
# rebuilt by the next `serve`.
BASELINE_RECIPE = 2


def baseline_is_current(data_dir: Path) -> bool:
    """Whether `baseline_model_path(data_dir)` holds a baseline of the shipped seed reviews,
    this code's format version and recipe (`card_is_current`)."""
    return card_is_current(baseline_model_path(data_dir), seed_sha256())


def card_is_current(path: Path, seed_sha: str) -> bool:
    """Whether the model directory `path` has a card that records `seed_sha` (the seed file's
    sha256), the `tfidf-linear` format version and `BASELINE_RECIPE`, and both its files with
    the sha256 the card records (a truncated or damaged copy is not current; the files are
    plain JSON + numpy arrays: library versions do not matter)."""
    try:
        card = json.loads((path / "model_card.json").read_text())
    except (OSError, ValueError):
        return False
    if not (
        isinstance(card, dict)
        and card.get("format") == FORMAT
        and card.get("format_version") == FORMAT_VERSION
        and card.get("seed_sha256") == seed_sha
        and card.get("recipe") == BASELINE_RECIPE
    ):
        return False
    files = (
        (card.get("vocabulary_file") or VOCABULARY_FILE, card.get("vocabulary_sha256")),
        (card.get("weights_file") or WEIGHTS_FILE, card.get("model_sha256")),
    )
    return all(_sha256(path / str(name)) == expected for name, expected in files)


def _sha256(file: Path) -> str | None:
    try:
        return hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError:
        return None


def install_packaged_baseline(data_dir: Path) -> bool:
    """Copy the shipped baseline into `baseline_model_path(data_dir)` when it is current (a
    copy and a rename: milliseconds, where training takes seconds); False when it is not, and
    the caller builds one. Raises OSError when the data directory cannot take it."""
    sha = seed_sha256()
    if not card_is_current(PACKAGED_BASELINE, sha):
        return False
    target = baseline_model_path(data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{BASELINE_NAME}.tmp-", dir=target.parent))
    try:
        shutil.copytree(PACKAGED_BASELINE, tmp, dirs_exist_ok=True)
        tmp.chmod(0o755)
        swap_dir(tmp, target)
    except OSError:
        # Another process starting on this data directory may have put it there first (the
        # renames then collide): theirs is as good as ours.
        if not card_is_current(target, sha):
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return card_is_current(target, sha)
