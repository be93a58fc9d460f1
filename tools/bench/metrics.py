"""What the Prometheus metrics cost per classify request, in one process and in
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, as under `serve --workers N`).

It runs the gateway's own recording code on real `GatewayMetrics`: one upstream call
observed the way `VariantPool` does it, then `Classifier._count_success` (requests, end-to-end
and overhead histograms, cost, tokens). A second figure adds a shadow call. Each mode runs in
a fresh interpreter, since prometheus-client picks its value store at import time.

    python -m tools.bench.metrics                 # both modes
    python -m tools.bench.metrics --requests 50000 --mode multiprocess

Prints CPU microseconds per request (process time, best of --repeats runs, so that other
processes on a busy machine do not inflate it; wall-clock figures follow) and exits 1 when a
CPU figure is over --target-us (50).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any


def _measure(requests: int, repeats: int) -> dict[str, float]:
    from prometheus_client import generate_latest

    from gateway.experiments.config import parse_routes
    from gateway.experiments.table import RouteTable
    from gateway.infra.metrics import GatewayMetrics, scrape_registry
    from gateway.request.classify import Classifier
    from gateway.request.triage import Triage
    from gateway.request.upstream import UpstreamClient
    from gateway.request.variants import VariantAnswer, VariantPool

    routes = parse_routes(
        {
            "experiments": [
                {
                    "name": "triage",
                    "salt": "bench",
                    "variants": [
                        {"name": "control", "model": "openrouter/openai/gpt-4o", "weight": 0.9},
                        {"name": "candidate", "model": "openrouter/acme/llama", "weight": 0.1},
                    ],
                    "shadow": {"variant": "candidate", "sample_rate": 1.0},
                }
            ]
        }
    )
    exp = routes.experiments[0]
    metrics = GatewayMetrics()
    table = RouteTable(routes)
    metrics.set_weights(exp.name, table.weights(exp.name))
    metrics.init_experiment(exp)
    classifier = Classifier(
        table=table, pool=VariantPool(UpstreamClient(), metrics), metrics=metrics
    )
    triage = Triage(category="bug", urgency="high", topic="crash", summary="Crashes on start.")
    answers = [
        VariantAnswer(
            variant=v.name,
            model=v.model,
            triage=triage,
            attempts=1,
            raw_if_repaired=None,
            cost_usd=0.00042,
            prompt_tokens=180,
            completion_tokens=40,
            model_seconds=0.2,
        )
        for v in exp.variants
    ]
    upstream = metrics.upstream_duration
    shadow = answers[1]

    def served(n: int) -> None:
        for i in range(n):
            a = answers[i & 1]
            # VariantPool._call: one upstream call
            upstream.labels(exp.name, a.variant, a.model).observe(0.2)
            classifier._count_success(exp, a, 0.2007)

    def with_shadow(n: int) -> None:
        a = answers[0]
        for _ in range(n):
            upstream.labels(exp.name, a.variant, a.model).observe(0.2)
            classifier._count_success(exp, a, 0.2007)
            # Classifier._run_shadow: the shadow call and its comparison
            upstream.labels(exp.name, shadow.variant, shadow.model).observe(0.2)
            metrics.shadow.labels(exp.name, shadow.variant, "agree").inc()
            metrics.requests.labels(exp.name, shadow.variant, shadow.model, "shadow").inc()

    def best_us(fn: Any) -> tuple[float, float]:
        """Best CPU time and best wall time per request, in µs, over `repeats` runs."""
        fn(min(requests, 1000))  # warm up: create the children
        cpu = wall = float("inf")
        for _ in range(repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            fn(requests)
            cpu = min(cpu, time.process_time() - c0)
            wall = min(wall, time.perf_counter() - w0)
        return cpu / requests * 1e6, wall / requests * 1e6

    out: dict[str, float] = {}
    out["served_us"], out["served_wall_us"] = best_us(served)
    out["with_shadow_us"], out["with_shadow_wall_us"] = best_us(with_shadow)
    start = time.perf_counter()
    body = generate_latest(scrape_registry(metrics))
    out["scrape_ms"] = (time.perf_counter() - start) * 1000
    out["scrape_bytes"] = float(len(body))
    return out


def _child(mode: str, requests: int, repeats: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        if mode == "multiprocess":
            env["PROMETHEUS_MULTIPROC_DIR"] = tmp
        args = ["--child", "--requests", str(requests), "--repeats", str(repeats)]
        done = subprocess.run(
            [sys.executable, "-m", "tools.bench.metrics", *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["mode"] = mode
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["both", "single", "multiprocess"], default="both")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--target-us", type=float, default=50.0)
    parser.add_argument("--json", action="store_true", help="Print one JSON object per mode.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_measure(args.requests, args.repeats)))
        return 0
    modes = ["single", "multiprocess"] if args.mode == "both" else [args.mode]
    over = False
    for mode in modes:
        r = _child(mode, args.requests, args.repeats)
        worst = max(r["served_us"], r["with_shadow_us"])
        over |= worst > args.target_us
        if args.json:
            print(json.dumps(r))
            continue
        verdict = "ok" if worst <= args.target_us else "OVER TARGET"
        print(
            f"{mode:<12} {r['served_us']:6.1f} µs/request served, "
            f"{r['with_shadow_us']:6.1f} µs/request with a shadow call "
            f"(target < {args.target_us:g} µs: {verdict}); "
            f"wall {r['served_wall_us']:.1f} / {r['with_shadow_wall_us']:.1f} µs; "
            f"/metrics render {r['scrape_ms']:.2f} ms, {int(r['scrape_bytes'])} bytes"
        )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
