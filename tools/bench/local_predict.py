"""In-process cost of the zero-setup local model: train (or reuse) the baseline in a data dir,
load it, time `predict` over generated reviews. Prints one JSON object.

    python -m tools.bench.local_predict --data-dir DIR [--calls 2000] [--budget-s 15]

`make bench` (loadtest/bench.py) runs it as a subprocess: load tests talk to the gateway over
HTTP only, so the in-process figure comes from here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import orjson

from gateway.local.loader import load_local_model
from loadtest.reviews import ReviewGenerator
from training.baseline import ensure_baseline_model


def measure(data_dir: Path, calls: int, budget_s: float) -> dict[str, float | int]:
    reviews = ReviewGenerator(seed=7).batch(calls)
    t0 = time.perf_counter()
    path = ensure_baseline_model(data_dir)
    t1 = time.perf_counter()
    model = load_local_model(path)
    t2 = time.perf_counter()
    times: list[float] = []
    deadline = t2 + budget_s
    for review in reviews:
        start = time.perf_counter()
        model.predict(review.text, review.app, review.rating)
        times.append(time.perf_counter() - start)
        if start > deadline:
            break
    ms = np.asarray(times) * 1000
    return {
        "calls": len(times),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "train_s": round(t1 - t0, 3),
        "load_s": round(t2 - t1, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--budget-s", type=float, default=15.0)
    args = parser.parse_args(argv)
    sys.stdout.write(orjson.dumps(measure(args.data_dir, args.calls, args.budget_s)).decode())


if __name__ == "__main__":
    main()
