"""The load-test and benchmark tooling, run small: the review generator, the variant-share
judgement, a quick benchmark (direct + gateway at c=1 and 16) and an 8 s locust run.

No timing assertions: this machine is shared, so only the shape and sanity of the numbers
are checked (requests served, no errors, overhead computed).
"""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from pathlib import Path

from gateway.request.triage import DEFAULT_CATEGORIES
from loadtest.reviews import MAX_WORDS, MIN_WORDS, ReviewGenerator
from loadtest.shares import Tally, share_report
from tests.servers import run_module

ROOT = Path(__file__).resolve().parent.parent


def test_reviews_are_deterministic_varied_and_repeat_ids() -> None:
    reviews = ReviewGenerator(seed=3).batch(3000)
    assert reviews == ReviewGenerator(seed=3).batch(3000)
    assert reviews != ReviewGenerator(seed=4).batch(3000)
    lengths = [len(r.text.split()) for r in reviews]
    assert min(lengths) >= MIN_WORDS and max(lengths) <= MAX_WORDS
    assert min(lengths) <= 5 and max(lengths) >= 100
    assert set(Counter(r.category for r in reviews)) == set(DEFAULT_CATEGORIES)
    assert {r.rating for r in reviews} >= {1, 2, 3, 4, 5}
    assert len({r.app for r in reviews}) > 10
    ids = Counter(r.review_id for r in reviews)
    repeated = sum(n - 1 for n in ids.values()) / len(reviews)
    assert 0.25 <= repeated <= 0.35
    first: dict[str, object] = {}
    for r in reviews:  # a repeated id is the same review
        assert first.setdefault(r.review_id, r) == r


def _tally(shares: dict[str, float], n: int) -> Tally:
    tally = Tally(expected={"control": 0.9, "candidate": 0.1})
    cut = round(shares["candidate"] * n)
    for i in range(n):
        variant = "candidate" if i < cut else "control"
        tally.first_variant[f"r{i}"] = variant
        tally.per_request[variant] += 1
    return tally


def test_shares_are_judged_over_enough_distinct_reviews() -> None:
    assert share_report(_tally({"candidate": 0.11}, 3000))[1] == []
    lines, problems = share_report(_tally({"candidate": 0.15}, 3000))
    assert len(problems) == 2 and "candidate" in problems[0]
    lines, problems = share_report(_tally({"candidate": 0.15}, 500))
    assert problems == [] and "not judged" in lines[-1]


def test_quick_bench_direct_and_gateway(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    scaling = tmp_path / "scaling.md"
    scaling.write_text(
        "# Scaling\n\nformulas\n\n<!-- bench-scaling:begin -->\nstale\n"
        "<!-- bench-scaling:end -->\n\n## Redis\n"
    )
    args = ["--quick", "--targets", "direct,gateway", "--concurrency", "1,16"]
    args += ["--sections", "points", "--out", str(out), "--scaling", str(scaling)]
    proc = run_module("loadtest.bench", *args, cwd=ROOT, timeout=100)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    points = {(p["target"], p["concurrency"]): p for p in data["points"]}
    assert set(points) == {(t, c) for t in ("direct", "gateway") for c in (1, 16)}
    generator = "wrk" if shutil.which("wrk") else "aiohttp"  # wrk where installed
    for p in points.values():
        assert p["generator"] == generator, p
        assert p["requests"] > 0 and p["rps"] > 0 and p["errors"] == 0, p
        assert 0 < p["p50_ms"] <= p["p90_ms"] <= p["p99_ms"], p
        assert p["cpu_ms_per_req"] >= 0 and p["peak_rss_mb"] > 0, p
    for c in (1, 16):
        gw = points[("gateway", c)]
        assert isinstance(gw["overhead_p50_ms"], float), gw
        assert isinstance(gw["overhead_p99_ms"], float), gw
        assert points[("direct", c)]["overhead_p50_ms"] == 0
    gateway = data["servers"]["gateway"]
    assert gateway["ready_s"] > 0 and gateway["ready_warm_s"] > 0
    assert gateway["ready_warm_again_s"] > 0
    assert "| gateway | 16 |" in proc.stdout
    assert (
        f"the same start again at once, its files just read, {gateway['ready_warm_again_s']:.2f}"
        in proc.stdout
    )
    # docs/scaling.md's measured block: R is one full core at the gateway's fastest point's CPU
    # per request; a quick run, and a point short of a full core, say so; the page around stays
    page = scaling.read_text()
    assert page.startswith("# Scaling\n\nformulas\n\n<!-- bench-scaling:begin -->\n")
    assert page.endswith("<!-- bench-scaling:end -->\n\n## Redis\n") and "stale" not in page
    best = max((p for p in points.values() if p["target"] == "gateway"), key=lambda p: p["rps"])
    r = 1000 / best["cpu_ms_per_req"]
    hosted = "hosted models (`POST /v1/chat/completions`)"
    row = (
        f"| {hosted} | {best['rps']:,.2f} | {best['concurrency']} | {best['cpu_ms_per_req']:,.2f} |"
    )
    assert row in page and f"| {round(r):,} | {round(0.35 * r):,} |" in page, page
    pods = max(3, math.ceil(10_000 / (0.35 * r)))
    assert f"| 10,000 | {hosted} | {round(10_000 / r, 2):,.2f} | {pods:,} |" in page, page
    assert "**Note:** a quick run" in page
    assert ("hosted models used" in page) == (best["rps"] * best["cpu_ms_per_req"] / 1000 < 0.9)


def test_locust_driver_runs_clean(tmp_path: Path) -> None:
    args = ["--run-time", "8s", "--users", "10", "--spawn-rate", "10", "--sim-port", "0"]
    args += ["--reports", str(tmp_path)]
    proc = run_module("loadtest.run_loadtest", *args, cwd=ROOT, timeout=100)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stats = tmp_path / "loadtest_stats.csv"
    assert stats.is_file() and "/v1/classify" in stats.read_text()
    assert (tmp_path / "loadtest.html").is_file()
    assert "variant shares over" in proc.stdout
