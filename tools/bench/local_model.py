"""Quality, latency, size and training time of the local model approaches on the shared data.

    python -m tools.bench.local_model [--approaches tfidf-baseline,tfidf-keep-other,tfidf]
                                         [--minilm-epochs 3] [--out reports/local_model.json]

The split (fixed before any tuning): train on MARC `BOW Dataset.arff` plus the de-duplicated,
augmentation-filtered Huang `dataset_balanced_4000.xlsx` less 20% of it, held out stratified
with seed 20240611. Figures:

* MARC test accuracy: `BOW Test.arff` (Bug Report / Feature Request only; the model predicts
  over every category it knows, so "Other" or "Praise" counts as wrong);
* Huang-20% macro-F1: over the four mapped classes (Bug Report, Feature Request, Praise, Other);
* p50 / p99 latency of one `predict` call, one review at a time, pinned to one core with one
  BLAS/onnxruntime thread, over the Huang held-out reviews;
* size on disk of the model directory, training time (this machine, 2 cores).

Approaches:

* `tfidf-baseline`: `training.local.train_tfidf` with the zero-setup baseline's settings
  (`training.baseline.BASELINE_TFIDF`: C=10, no calibration), MARC's "Other" mapped to Other;
* `tfidf-keep-other`: `train-local --approach tfidf` (C by cross-validation, temperature
  calibration) with MARC's "Other" kept;
* `tfidf`: `train-local --approach tfidf` as shipped (MARC "Other" rows left out; the default);
* `minilm`: `train-local --approach minilm` (needs the local-strong extra; minutes of CPU).

The data lives in `shared/data` beside the repository; nothing is copied. The shared data's
licences are unclear (internal evaluation only), so no model trained on it is shipped.
"""

from __future__ import annotations

import os

# one thread everywhere, before numpy / onnxruntime load their thread pools
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TRIAGE_LOCAL_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from sklearn.metrics import accuracy_score, f1_score  # noqa: E402

from gateway.local.loader import LocalModel, load_local_model  # noqa: E402
from training.baseline import BASELINE_TFIDF  # noqa: E402
from training.data import (  # noqa: E402
    Example,
    read_huang_xlsx,
    read_marc_arff,
    stratified_split,
)
from training.local import (  # noqa: E402
    dir_size,
    measure_latency,
    train_local_examples,
    train_tfidf,
)

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
MARC_TRAIN = DATA / "jha-mahmoud-marc" / "BOW Dataset.arff"
MARC_TEST = DATA / "jha-mahmoud-marc" / "BOW Test.arff"
HUANG = DATA / "huang-gplay" / "dataset_balanced_4000.xlsx"
SPLIT_SEED = 20240611
APPROACHES = ("tfidf-baseline", "tfidf-keep-other", "tfidf", "minilm")


def load_split(*, keep_marc_other: bool) -> tuple[list[Example], list[Example], list[Example]]:
    """(train, MARC test, Huang held-out 20%)."""
    huang_train, huang_test = stratified_split(read_huang_xlsx(HUANG), 0.2, SPLIT_SEED)
    train = read_marc_arff(MARC_TRAIN, keep_other=keep_marc_other) + huang_train
    return train, read_marc_arff(MARC_TEST, keep_other=True), huang_test


def score(model: LocalModel, marc: Sequence[Example], huang: Sequence[Example]) -> dict[str, Any]:
    marc_pred = [model.predict(e.text).triage.category for e in marc]
    huang_pred = [model.predict(e.text).triage.category for e in huang]
    gold_h = [e.category for e in huang]
    labels = sorted(set(gold_h))
    return {
        "marc_test_accuracy": round(
            float(accuracy_score([e.category for e in marc], marc_pred)), 4
        ),
        "huang20_macro_f1": round(
            float(f1_score(gold_h, huang_pred, labels=labels, average="macro")), 4
        ),
    }


def _pinned_latency(model: LocalModel, texts: Sequence[str]) -> dict[str, float]:
    """`measure_latency` pinned to one core (training uses all of them)."""
    if not hasattr(os, "sched_setaffinity"):
        return measure_latency(model, texts)
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(cores)})
    try:
        return measure_latency(model, texts)
    finally:
        os.sched_setaffinity(0, cores)


def run(approach: str, work: Path, minilm_epochs: float) -> dict[str, Any]:
    keep_other = approach in ("tfidf-baseline", "tfidf-keep-other")
    train, marc_test, huang_test = load_split(keep_marc_other=keep_other)
    out = work / approach
    t0 = time.perf_counter()
    if approach == "tfidf-baseline":
        # as the baseline trains: an urgency on every row; the sets have none and urgency is
        # not scored here, so a fixed one per category stands in
        urgency = {"Bug Report": "High"}
        rows = [replace(e, urgency=urgency.get(e.category, "Low")) for e in train]
        train_tfidf(rows, out, name=approach, config=BASELINE_TFIDF)
    else:
        options = {"epochs": minilm_epochs} if approach == "minilm" else None
        train_local_examples(
            train,
            None,
            out,
            approach="minilm" if approach == "minilm" else "tfidf",
            name=approach,
            progress=lambda m: print(f"  [{approach}] {m}", file=sys.stderr, flush=True),
            minilm_options=options,
        )
    seconds = time.perf_counter() - t0
    model = load_local_model(out)
    figures = score(model, marc_test, huang_test)
    latency = _pinned_latency(model, [e.text for e in huang_test])
    return {
        "approach": approach,
        **figures,
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "size_mb": round(dir_size(out) / 1e6, 2),
        "train_s": round(seconds, 1),
        "n_train": len(train),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--approaches", default="tfidf-baseline,tfidf-keep-other,tfidf")
    parser.add_argument("--minilm-epochs", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    approaches = [a.strip() for a in args.approaches.split(",") if a.strip()]
    unknown = sorted(set(approaches) - set(APPROACHES))
    if unknown:
        parser.error(f"unknown approaches {unknown} (known: {', '.join(APPROACHES)})")
    if not (MARC_TRAIN.is_file() and HUANG.is_file()):
        print(f"shared data not found under {DATA}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        for approach in approaches:
            print(f"== {approach}", file=sys.stderr, flush=True)
            rows.append(run(approach, Path(tmp), args.minilm_epochs))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    head = (
        f"{'approach':<18} {'MARC acc':>8} {'Huang F1':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'size MB':>8} {'train s':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['approach']:<18} {r['marc_test_accuracy']:>8.3f} {r['huang20_macro_f1']:>8.3f} "
            f"{r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['size_mb']:>8.2f} {r['train_s']:>8.1f}"
        )
    print("targets: MARC acc >= 0.90, Huang F1 >= 0.80, p50 <= 5 ms (one core)")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
