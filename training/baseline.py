"""The built-in baseline local model: `tfidf-linear`, trained from the shipped seed reviews.

`triage-gateway serve` builds it before the server starts, so the gateway classifies with no
API key and no network; the server itself only loads the directory
(`gateway.local.loader.baseline_model_path`). `serve` checks the card in its own process
(`training.baseline_card`) and, when the model is missing or stale, runs this module
(`python -m training.baseline DATA_DIR`) in a child process, so scikit-learn never stays in
the server's memory. Training is the one `tfidf-linear` trainer, `training.local.train_tfidf`,
with `BASELINE_TFIDF` settings (one fit per head: it runs at first start).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gateway.experiments.config import RoutesConfig
from gateway.infra.logs import configure_logging
from gateway.local.loader import (
    BASELINE_NAME,
    LocalModelError,
    baseline_model_path,
    needs_baseline,
)
from training.baseline_card import BASELINE_RECIPE, PACKAGED_BASELINE, card_is_current
from training.dirs import swap_dir
from training.local import TfidfConfig, train_tfidf
from training.seed import SEED_SOURCE, load_seed_examples, seed_bytes

__all__ = ["BASELINE_RECIPE", "BASELINE_TFIDF", "baseline_for_routes", "ensure_baseline_model"]

log = logging.getLogger("training.baseline")  # by name: `python -m` runs it as __main__

# The baseline's settings: C=10 for both heads, no cross-validated calibration. A change here
# bumps `BASELINE_RECIPE`.
BASELINE_TFIDF = TfidfConfig(category_c=10.0, urgency_c=10.0, calibrate=False)


def baseline_for_routes(routes: RoutesConfig, data_dir: Path) -> Path | None:
    """`ensure_baseline_model(data_dir)` when a local variant of `routes` has no `model_path`
    (so uses the baseline); None otherwise."""
    return ensure_baseline_model(data_dir) if needs_baseline(routes) else None


def ensure_baseline_model(data_dir: Path) -> Path:
    """Return `baseline_model_path(data_dir)`, (re)training it from the shipped seed reviews
    when it is missing, or its card's seed sha256, format version or recipe differ from this
    code's (`training.baseline_card.card_is_current`). Safe with several processes at once:
    training runs under a file lock into a temporary directory that is renamed into place."""
    return build_baseline(baseline_model_path(data_dir))


def build_baseline(target: Path) -> Path:
    """Train the baseline into the directory `target` unless a current one is there."""
    models = target.parent
    seed = seed_bytes()
    sha = hashlib.sha256(seed).hexdigest()
    if card_is_current(target, sha):
        return target
    models.mkdir(parents=True, exist_ok=True)
    with _file_lock(models / f".{BASELINE_NAME}.lock"):
        if card_is_current(target, sha):  # built by another process while we waited
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
    if not card_is_current(target, sha):
        raise LocalModelError(f"{target}: baseline model could not be built")
    return target


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


def main(argv: list[str] | None = None) -> int:
    """`python -m training.baseline DATA_DIR [--log-level LEVEL]`: `ensure_baseline_model` in a
    process of its own, as `serve` runs it; `--packaged` instead (re)builds the baseline the
    package ships (`make seed-data`). A failure's message is the only output on stdout (exit
    status 1), for the caller to report; logs go to stderr."""
    parser = argparse.ArgumentParser(prog="python -m training.baseline")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("data_dir", type=Path, nargs="?")
    where.add_argument("--packaged", action="store_true", help="rebuild the shipped baseline")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        if args.packaged:
            build_baseline(PACKAGED_BASELINE)
        else:
            ensure_baseline_model(args.data_dir)
    except (LocalModelError, OSError, ValueError) as exc:
        print(exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
