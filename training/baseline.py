"""The built-in baseline local model: `tfidf-linear`, trained from the shipped seed reviews.

`triage-gateway serve` calls `ensure_baseline_model` before the server starts, so the gateway
classifies with no API key and no network; the server itself only loads the directory
(`gateway.local.loader.baseline_model_path`). Training is the one `tfidf-linear` trainer,
`training.local.train_tfidf`, with `BASELINE_TFIDF` settings (one fit per head: it runs at
first start).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gateway.experiments.config import RoutesConfig
from gateway.local.loader import (
    BASELINE_NAME,
    LocalModelError,
    baseline_model_path,
    needs_baseline,
)
from gateway.local.tfidf import FORMAT, FORMAT_VERSION, VOCABULARY_FILE, WEIGHTS_FILE
from training.local import TfidfConfig, swap_dir, train_tfidf
from training.seed import SEED_SOURCE, load_seed_examples, seed_bytes

__all__ = ["BASELINE_RECIPE", "BASELINE_TFIDF", "baseline_for_routes", "ensure_baseline_model"]

log = logging.getLogger(__name__)

# The baseline's settings: C=10 for both heads, no cross-validated calibration.
BASELINE_TFIDF = TfidfConfig(category_c=10.0, urgency_c=10.0, calibrate=False)
# Bumped when the recipe changes (settings, features, export): a baseline of another recipe is
# rebuilt by the next `serve`.
BASELINE_RECIPE = 2


def baseline_for_routes(routes: RoutesConfig, data_dir: Path) -> Path | None:
    """`ensure_baseline_model(data_dir)` when a local variant of `routes` has no `model_path`
    (so uses the baseline); None otherwise."""
    return ensure_baseline_model(data_dir) if needs_baseline(routes) else None


def ensure_baseline_model(data_dir: Path) -> Path:
    """Return `baseline_model_path(data_dir)`, (re)training it from the shipped seed reviews
    when it is missing, or its card's seed sha256, format version or recipe differ from this
    code's (the files are plain JSON + numpy arrays: library versions do not matter). Safe
    with several processes at once: training runs under a file lock into a temporary
    directory that is renamed into place."""
    target = baseline_model_path(data_dir)
    models = target.parent
    seed = seed_bytes()
    sha = hashlib.sha256(seed).hexdigest()
    if _is_current(target, sha):
        return target
    models.mkdir(parents=True, exist_ok=True)
    with _file_lock(models / f".{BASELINE_NAME}.lock"):
        if _is_current(target, sha):  # built by another process while we waited
            return target
        # Under the lock nobody else is training: temporary dirs left here are from a crash.
        for pattern in (f".{BASELINE_NAME}.tmp-*", f".{BASELINE_NAME}.old-*"):
            for stale in models.glob(pattern):
                shutil.rmtree(stale, ignore_errors=True)
        log.info("training the baseline local model into %s", target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{BASELINE_NAME}.tmp-", dir=models))
        try:
            train_tfidf(
                load_seed_examples(seed),
                tmp,
                name=BASELINE_NAME,
                config=BASELINE_TFIDF,
                card_extra={"seed_sha256": sha, "source": SEED_SOURCE, "recipe": BASELINE_RECIPE},
            )
            tmp.chmod(0o755)
            swap_dir(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not _is_current(target, sha):
        raise LocalModelError(f"{target}: baseline model could not be built")
    return target


def _is_current(path: Path, sha: str) -> bool:
    try:
        card = json.loads((path / "model_card.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(card, dict)
        and card.get("format") == FORMAT
        and card.get("format_version") == FORMAT_VERSION
        and card.get("seed_sha256") == sha
        and card.get("recipe") == BASELINE_RECIPE
        and (path / str(card.get("vocabulary_file") or VOCABULARY_FILE)).is_file()
        and (path / str(card.get("weights_file") or WEIGHTS_FILE)).is_file()
    )


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (POSIX); a no-op where fcntl is unavailable."""
    if sys.platform == "win32":
        yield
        return
    import fcntl

    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
