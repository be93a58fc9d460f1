"""Promotion with automatic rollback against a real gateway, simulator and Redis; the rollback
command; and the online A/B report (pure figures, the API route and the CLI) on pairs and
corrections written in their documented Redis shapes."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from gateway.infra import redis_keys
from gateway.pairs import online_report, pairstore
from gateway.request.triage import DEFAULT_TAXONOMY, Triage
from tests.servers import (
    Gateway,
    Simulator,
    ab_routes,
    clean_env,
    run_gateway,
    run_module,
    run_prometheus,
    write_routes,
)

ADMIN = {"Authorization": "Bearer k"}
INTERVAL_S = 0.5


def cli_env(redis_url: str, routes: Path) -> dict[str, str]:
    return clean_env(GATEWAY_REDIS_URL=redis_url, GATEWAY_ROUTES=str(routes))


def stored_weights(r: redis.Redis, experiment: str) -> dict[str, float] | None:
    raw = r.hget(redis_keys.weights(experiment), "weights")
    return None if raw is None else dict(orjson.loads(raw))


class Load:
    """Classify requests with unique review ids from two threads until stopped."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.stop = threading.Event()
        self.responses: list[tuple[int, dict[str, Any]]] = []
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(2)]

    def _run(self, worker: int) -> None:
        with self.gw.client(timeout=10) as client:
            i = 0
            while not self.stop.is_set():
                review = {"text": f"Login fails after update {i}", "review_id": f"p{worker}-{i}"}
                r = client.post("/v1/classify", json=review)
                self.responses.append((r.status_code, r.json()))
                i += 1

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def promote_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", "promote", "--experiment", "triage", *args]


def run_cli(cmd: list[str], redis_url: str, routes: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, capture_output=True, text=True, env=cli_env(redis_url, routes), timeout=90
    )


def timed_run(
    cmd: list[str], redis_url: str, routes: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    """The promotion's run and how many seconds it took."""
    started = time.monotonic()
    proc = run_cli(cmd, redis_url, routes)
    return proc, time.monotonic() - started


def rollback_cmd() -> list[str]:
    return [sys.executable, "-m", "cli", "rollback", "--experiment", "triage", "--reason", "undo"]


def live_weights(gw: Gateway) -> dict[str, float]:
    """The weights in force in the gateway (`/v1/routes`), once it installed the stored ones."""
    with gw.client() as client:
        exp = client.get("/v1/routes").json()["experiments"][0]
    return {v["name"]: v["weight"] for v in exp["variants"]}


def wait_live(gw: Gateway, wanted: dict[str, float]) -> dict[str, float]:
    deadline = time.monotonic() + 5
    while (seen := live_weights(gw)) != wanted and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


def admin_history(gw: Gateway) -> list[dict[str, Any]]:
    r = httpx.get(f"{gw.url}/admin/experiments/triage/history", headers=ADMIN, timeout=5)
    history: list[dict[str, Any]] = r.json()["history"]
    return history


def rolled_back(
    gw: Gateway, load: Load, proc: subprocess.CompletedProcess[str]
) -> list[dict[str, Any]]:
    """Once a promotion that should breach is done: the load stopped, the run failed and the
    baseline is in force again; the change history, latest first."""
    load.stop.set()
    history = admin_history(gw)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert wait_live(gw, BASELINE) == BASELINE
    return history


def breach_gate(history: list[dict[str, Any]]) -> str:
    """The gate that stopped the promotion, from the latest change: a breach rollback."""
    latest = history[0]
    assert latest["kind"] == "breach_rollback", latest
    reason: str = latest["reason"]
    return reason.split(": ", 1)[1]


BASELINE = {"control": 1.0, "candidate": 0.0}


@pytest.fixture
def routes(tmp: Path, sim: Simulator) -> Path:
    """The A/B routes at the baseline a ramp starts from: all traffic on the control."""
    return write_routes(tmp / "routes.yaml", ab_routes(sim.base_url, **BASELINE))


@contextlib.contextmanager
def loaded_gateway(tmp: Path, routes: Path, redis_url: str) -> Iterator[tuple[Gateway, Load]]:
    """A gateway on `routes` (admin key `k`, for the change history), under Load."""
    env = {"GATEWAY_ADMIN_KEYS": "k"}
    with run_gateway(tmp, routes=routes, redis_url=redis_url, env=env) as gw, Load(gw) as load:
        yield gw, load


def test_a_candidate_that_breaks_mid_ramp_is_rolled_back_to_the_exact_baseline(
    tmp: Path, sim: Simulator, routes: Path, redis_url: str
) -> None:
    r = redis.Redis.from_url(redis_url)
    step3 = {"candidate": 0.5, "control": 0.5}
    failure: dict[str, float] = {}

    def break_candidate_at_step_3() -> None:
        deadline = time.monotonic() + 60
        while stored_weights(r, "triage") != step3 and time.monotonic() < deadline:
            time.sleep(0.01)
        overrides = {"acme/llama-3-8b-ft": {"invalid_rate": 0.6, "error_rate": 0.4}}
        sim.control(model_overrides=overrides)
        failure["start"] = time.time()

    with loaded_gateway(tmp, routes, redis_url) as (gw, load):
        breaker = threading.Thread(target=break_candidate_at_step_3)
        breaker.start()
        cmd = promote_cmd("--candidate", "candidate", "--steps", "10,30,50,100", "--hold", "1s")
        cmd += ["--interval", f"{INTERVAL_S}s", "--gateway", gw.url, "--min-requests", "20"]
        cmd += ["--min-corrected", "0", "--max-step-wait", "30s"]
        proc = run_cli(cmd, redis_url, routes)
        breaker.join(timeout=5)
        history = rolled_back(gw, load, proc)  # the candidate at weight 0, not at a ramp step
        assert "start" in failure, "the weights never reached step 3"
        latest = history[0]
        assert [e["kind"] for e in reversed(history)] == [*["ramp_step"] * 3, "breach_rollback"]
        assert all(e["baseline_version"] == 0 for e in history)
        assert latest["actor"].startswith("promote:")
        assert latest["reason"].startswith("breach at promote step 3 (candidate 50%): ")
        gate = breach_gate(history)
        assert gate.startswith(("error rate", "invalid answers")) and "/" in gate, gate
        assert stored_weights(r, "triage") == BASELINE
        # rolled back within one evaluation interval (plus scheduling slack) of the failures
        assert latest["ts"] - failure["start"] < INTERVAL_S + 1.0, (latest["ts"], failure)
        assert "STOPPED: breach at promote step 3" in proc.stdout
        assert (
            "evidence plan" in proc.stdout and "baseline: triage weights version 0" in proc.stdout
        )

        # a second rollback finds the baseline in force and changes nothing
        back = run_cli(rollback_cmd(), redis_url, routes)
        assert back.returncode == 0, back.stderr
        assert stored_weights(r, "triage") == BASELINE
        assert len(admin_history(gw)) == len(history)

    statuses = {status for status, _ in load.responses}
    assert len(load.responses) > 100 and statuses <= {200, 502}
    for status, body in load.responses:
        if status == 200:
            triage = Triage.model_validate(body["triage"])
            assert triage.category in DEFAULT_TAXONOMY.categories
        else:
            assert set(body) == {"error", "detail"}
            assert body["error"] in {"upstream_error", "invalid_output"}


def test_a_worse_candidate_breaches_the_error_rate_comparison(
    tmp: Path, sim: Simulator, routes: Path, redis_url: str
) -> None:
    """The guardrail is out of the way (--max-error-rate 0.9): the anytime-valid comparison
    with the control decides."""
    sim.control(model_overrides={"acme/llama-3-8b-ft": {"error_rate": 0.3}})
    with loaded_gateway(tmp, routes, redis_url) as (gw, load):
        cmd = promote_cmd("--candidate", "candidate", "--steps", "50,100", "--hold", "2s")
        cmd += ["--interval", f"{INTERVAL_S}s", "--gateway", gw.url, "--min-corrected", "0"]
        cmd += ["--max-error-rate", "0.9", "--error-margin", "0.05", "--max-step-wait", "30s"]
        proc, took = timed_run(cmd, redis_url, routes)
        history = rolled_back(gw, load, proc)
    gate = breach_gate(history)
    assert gate.startswith("error rate +") and "vs control" in gate and "anytime-valid" in gate
    assert gate.endswith(": breach"), gate
    print(f"worse candidate: breach after {took:.1f}s, {len(load.responses)} requests in all")


class Reviewer:
    """Corrects every served answer as it arrives (through POST /v1/corrections): the control's
    answers are confirmed, the candidate's are changed, until stopped (bounded by the load)."""

    def __init__(self, gw: Gateway, load: Load) -> None:
        self.gw, self.load = gw, load
        self.stop = threading.Event()
        self.done = {"control": 0, "candidate": 0}
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        seen = 0
        with self.gw.client(timeout=10) as client:
            while not self.stop.is_set():
                fresh = self.load.responses[seen:]
                seen += len(fresh)
                for status, body in fresh:
                    if status != 200 or self.stop.is_set():
                        continue
                    correct(client, body, wrong=body["variant"] == "candidate")
                    self.done[body["variant"]] += 1
                if not fresh:
                    time.sleep(0.05)

    def __enter__(self) -> Reviewer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def test_a_candidate_reviewers_correct_more_often_is_rolled_back_on_the_accuracy_gate(
    tmp: Path, routes: Path, redis_url: str
) -> None:
    """Same error rate, validity and latency as the control: only the online accuracy from
    reviewer corrections tells the candidate is worse, and the non-inferiority gate stops it."""
    with loaded_gateway(tmp, routes, redis_url) as (gw, load):
        with Reviewer(gw, load) as reviewer:
            cmd = promote_cmd("--candidate", "candidate", "--steps", "50,100", "--hold", "2s")
            cmd += ["--interval", f"{INTERVAL_S}s", "--gateway", gw.url, "--min-requests", "30"]
            cmd += ["--min-corrected", "20", "--min-accuracy-delta", "-0.02"]
            cmd += ["--error-margin", "0.1", "--validity-margin", "0.1", "--latency-margin", "0.5"]
            cmd += ["--max-step-wait", "60s"]
            proc, took = timed_run(cmd, redis_url, routes)
        history = rolled_back(gw, load, proc)
        again = run_cli(rollback_cmd(), redis_url, routes)
        assert again.returncode == 0, again.stdout + again.stderr
        assert len(admin_history(gw)) == len(history)
    gate = breach_gate(history)
    assert gate.startswith("accuracy -") and "anytime-valid" in gate, gate
    assert gate.endswith(": breach"), gate
    assert reviewer.done["candidate"] >= 20 and reviewer.done["control"] >= 20, reviewer.done
    print(f"less accurate candidate: breach after {took:.1f}s, corrections {reviewer.done}")


def test_an_equal_candidate_reaches_100_percent_and_rollback_restores_the_pre_ramp_weights(
    tmp: Path, routes: Path, redis_url: str
) -> None:
    r = redis.Redis.from_url(redis_url)
    with loaded_gateway(tmp, routes, redis_url) as (gw, load):
        cmd = promote_cmd("--candidate", "candidate", "--steps", "50,100", "--hold", "1s")
        cmd += ["--interval", f"{INTERVAL_S}s", "--gateway", gw.url, "--min-requests", "30"]
        cmd += ["--min-corrected", "0", "--error-margin", "0.1", "--validity-margin", "0.1"]
        cmd += ["--latency-margin", "0.25", "--max-step-wait", "40s"]
        proc, took = timed_run(cmd, redis_url, routes)
        load.stop.set()
        served = len(load.responses)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "PROMOTED: candidate promoted to 100%" in proc.stdout
        assert "error rate +0.000 vs control" in proc.stdout and ": pass" in proc.stdout
        assert wait_live(gw, {"control": 0.0, "candidate": 1.0}) == {
            "control": 0.0,
            "candidate": 1.0,
        }
        back = run_cli(rollback_cmd(), redis_url, routes)
        assert back.returncode == 0, back.stdout + back.stderr
        assert stored_weights(r, "triage") == BASELINE
        assert wait_live(gw, BASELINE) == BASELINE
        kinds = [e["kind"] for e in admin_history(gw)]
        assert kinds == ["manual_rollback", "ramp_step", "ramp_step"]
        again = run_cli(rollback_cmd(), redis_url, routes)
        assert again.returncode == 0, again.stdout + again.stderr
        assert len(admin_history(gw)) == 3 and stored_weights(r, "triage") == BASELINE
    assert all(status == 200 for status, _ in load.responses)
    print(f"equal candidate: promoted in {took:.1f}s, {served} requests in all")


def test_too_little_traffic_stops_the_ramp_at_its_current_share(
    tmp: Path, routes: Path, redis_url: str
) -> None:
    r = redis.Redis.from_url(redis_url)
    with run_gateway(tmp, routes=routes, redis_url=redis_url) as gw:
        with gw.client() as client:  # a trickle: far from the evidence a step needs
            for i in range(10):
                client.post("/v1/classify", json={"text": f"Crash on start {i}"})
        cmd = promote_cmd("--candidate", "candidate", "--steps", "10,100", "--hold", "0.5s")
        cmd += ["--interval", "0.25s", "--gateway", gw.url, "--min-requests", "50"]
        cmd += ["--max-step-wait", "1.5s"]
        proc = run_cli(cmd, redis_url, routes)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "STOPPED: stopped at step 1 (candidate 10%)" in proc.stdout
    assert "candidate requests 0/50 this step" in proc.stdout
    assert "corrected pairs 0/" in proc.stdout  # the accuracy gate is on by default
    assert stored_weights(r, "triage") == {"candidate": 0.1, "control": 0.9}


def test_promote_without_a_metrics_source_refuses_and_changes_nothing(
    tmp: Path, sim: Simulator, redis_url: str
) -> None:
    routes = write_routes(tmp / "routes.yaml", ab_routes(sim.base_url))
    proc = run_cli(promote_cmd("--candidate", "candidate", "--hold", "1s"), redis_url, routes)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--gateway" in proc.stderr and "--prometheus" in proc.stderr
    r = redis.Redis.from_url(redis_url)
    assert stored_weights(r, "triage") is None
    assert r.xlen(redis_keys.weights_history("triage")) == 0


def classify_and_correct(gw: Gateway) -> dict[str, list[dict[str, Any]]]:
    """30 reviews through the gateway (50/50), then corrections through POST /v1/corrections:
    control's first 8 answers: 6 confirmed, 2 changed; candidate's first 5 answers: 2
    confirmed, 3 changed. The first control answer is corrected twice (changed, then
    confirmed: the last correction wins)."""
    served: dict[str, list[dict[str, Any]]] = {"control": [], "candidate": []}
    with gw.client() as client:
        for i in range(30):
            body = client.post(
                "/v1/classify", json={"text": f"The app crashes at login {i}", "review_id": f"o{i}"}
            ).json()
            served[body["variant"]].append(body)
        plan = [("control", 8, {1, 2}), ("candidate", 5, {0, 1, 2})]
        assert all(len(served[v]) >= n for v, n, _ in plan), {v: len(b) for v, b in served.items()}
        for variant, count, wrong in plan:
            for k, body in enumerate(served[variant][:count]):
                if variant == "control" and k == 0:
                    correct(client, body, wrong=True)  # overruled by the next correction
                correct(client, body, wrong=k in wrong)
    return served


def correct(client: httpx.Client, body: dict[str, Any], *, wrong: bool) -> None:
    model = body["triage"]
    category = "Praise" if wrong and model["category"] != "Praise" else model["category"]
    if wrong and category == model["category"]:
        category = "Complaint"
    fix = {
        "request_id": body["request_id"],
        "category": category,
        "urgency": model["urgency"],
        "corrected_by": "tester",
    }
    deadline = time.monotonic() + 10
    while True:  # the pair log writes in the background: wait for the pair to be stored
        r = client.post("/v1/corrections", json=fix)
        if r.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert r.status_code == 201, r.text
    assert r.json()["changed"] is wrong


def check_report(report: dict[str, Any], served: dict[str, list[dict[str, Any]]]) -> None:
    ctrl, cand = report["variants"]["control"], report["variants"]["candidate"]
    assert ctrl["traffic"] + cand["traffic"] == 30
    assert (ctrl["traffic"], cand["traffic"]) == (len(served["control"]), len(served["candidate"]))
    # control: 8 corrected, the last correction of 6 says unchanged -> 6/8 = 0.75
    assert (ctrl["corrected"], ctrl["right"], ctrl["accuracy"]) == (8, 6, 0.75)
    # Wilson 6/8: centre (0.75 + 1.9208/8) / (1 + 3.8415/8) = 0.6689, half 0.2596
    assert ctrl["accuracy_ci95"] == pytest.approx([0.4093, 0.9285], abs=1e-4)
    latencies = sorted(b["latency_ms"] for b in served["control"])
    assert ctrl["p95_latency_ms"] == pytest.approx(online_report.percentile(latencies, 95))
    mean_cost = sum(b["cost_usd"] for b in served["control"]) / len(served["control"])
    assert ctrl["mean_cost_usd"] == pytest.approx(mean_cost) and mean_cost > 0
    # candidate: 5 corrected, 2 unchanged -> 0.4; 0.4 - 0.75 = -0.35
    assert (cand["corrected"], cand["right"], cand["accuracy"]) == (5, 2, 0.4)
    assert cand["diff_vs_control"] == pytest.approx(-0.35)
    assert cand["diff_ci95"] == pytest.approx(list(online_report.newcombe(2, 5, 6, 8)))
    lo, hi = cand["diff_ci95"]
    assert lo < -0.35 < hi < 0.2
    # per arm, to detect 0.02 below the control's 0.75: (1.96 sqrt(2 * .74 * .26)
    # + 0.8416 sqrt(.75 * .25 + .73 * .27))^2 / 0.02^2 = (1.2158 + 0.5219)^2 / 0.0004 = 7549.4
    needed = online_report.sample_size(0.75, 0.73)
    assert report["needed_per_variant"] == needed == 7550
    assert cand["still_needed"] == needed - 5 and ctrl["still_needed"] == needed - 8
    assert report["control"] == "control" and report["baseline_source"] == "control"
    acc = cand["gates"]["accuracy"]
    assert acc["test"] == "non_inferiority" and acc["margin"] == 0.02
    assert acc["fixed_ci95"] == pytest.approx(cand["diff_ci95"])
    lo, hi = acc["anytime_ci95"]  # wider than the fixed-horizon interval: valid at any look
    assert lo < acc["fixed_ci95"][0] and hi > acc["fixed_ci95"][1]
    assert acc["decision"] == "continue" and acc["still_needed"] == acc["needed_per_arm"] - 5
    assert cand["gates"]["p95_latency"]["test"] == "harm"
    assert "gates" not in ctrl


def test_online_report_from_pairs_and_corrections(
    tmp: Path, sim: Simulator, redis_url: str
) -> None:
    routes = write_routes(tmp / "routes.yaml", ab_routes(sim.base_url, control=0.5, candidate=0.5))
    with run_gateway(tmp, routes=routes, redis_url=redis_url) as gw, gw.client() as client:
        served = classify_and_correct(gw)
        resp = client.get("/v1/experiments/triage/report")
        assert resp.status_code == 200, resp.text
        check_report(resp.json(), served)
        assert client.get("/v1/experiments/nope/report").status_code == 404
        assert client.get("/v1/experiments/triage/report?control=zz").status_code == 422
        assert httpx.get(f"{gw.url}/v1/experiments/triage/report").status_code == 401
    report = ("report", "--experiment", "triage")
    out = run_module("cli", *report, "--json", env=cli_env(redis_url, routes), timeout=60)
    assert out.returncode == 0, out.stderr
    check_report(json.loads(out.stdout), served)
    table = run_module("cli", *report, env=cli_env(redis_url, routes), timeout=60)
    assert table.returncode == 0 and "candidate" in table.stdout and "75.0%" in table.stdout
    assert "candidate accuracy (non_inferiority, margin 2 pp): -35.0 pp" in table.stdout
    assert "anytime-valid" in table.stdout and "decision now continue" in table.stdout


async def test_corrections_since_counts_served_pairs_of_the_experiment(redis_url: str) -> None:
    import redis.asyncio as aioredis

    from gateway.pairs.corrections import Correction, store_corrections
    from gateway.pairs.record import PairRecord

    def pair(rid: str, variant: str, **extra: Any) -> dict[str, Any]:
        triage = {"category": "Bug Report", "urgency": "High"}
        base = {"request_id": rid, "experiment": "triage", "variant": variant, "triage": triage}
        return base | extra

    def fix(rid: str, variant: str, changed: bool) -> Correction:
        return Correction(
            id=f"c-{rid}",
            request_id=rid,
            review_id=None,
            category="Bug Report",
            urgency="High",
            topic=None,
            summary=None,
            corrected_by="test",
            note=None,
            original_category="Bug Report",
            original_urgency="High",
            variant=variant,
            changed=changed,
            source="review",
            created_at="2026-01-01T00:00:00Z",
        )

    client = aioredis.Redis.from_url(redis_url)
    stream = redis_keys.pairs_stream()
    try:
        records = [pair("a", "control"), pair("b", "control"), pair("c", "candidate")]
        records += [pair("s", "candidate", shadow=True), pair("x", "control", experiment="other")]
        await pairstore.write_pairs(client, stream, [PairRecord.from_dict(r) for r in records])
        fixes = [fix("a", "control", False), fix("b", "control", True)]
        fixes += [fix("c", "candidate", False), fix("s", "candidate", True)]
        fixes += [fix("x", "control", True), fix("gone", "candidate", True)]  # "gone": no pair
        await store_corrections(client, fixes)
        names = ["control", "candidate"]
        tally = await online_report.corrections_since(
            client, stream, "triage", names, since=time.time() - 60
        )
        assert tally == {"control": (1, 2), "candidate": (1, 2)}
        later = await online_report.corrections_since(
            client, stream, "triage", names, since=time.time() + 60
        )
        assert later == {}
    finally:
        await client.aclose()


@contextlib.contextmanager
def scraping_prometheus(tmp: Path, target: str) -> Iterator[str]:
    """A real Prometheus scraping `target` every 0.5 s, once it has scraped it."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    config = {
        "global": {"scrape_interval": "500ms", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "gw", "static_configs": [{"targets": [target]}]}],
    }
    with run_prometheus(tmp, binary, config) as url:
        deadline = time.monotonic() + 30
        while not scraped(url) and time.monotonic() < deadline:  # the first scrape is done
            time.sleep(0.1)
        yield url


def scraped(url: str) -> bool:
    query = {"query": 'triage_gateway_requests_total{variant="candidate"}'}
    body = httpx.get(f"{url}/api/v1/query", params=query, timeout=5).json()
    return bool(body["data"]["result"])


def test_promotion_through_prometheus_rolls_back_a_failing_candidate(
    tmp: Path, sim: Simulator, redis_url: str
) -> None:
    sim.control(model_overrides={"acme/llama-3-8b-ft": {"error_rate": 1.0}})
    routes = write_routes(tmp / "routes.yaml", ab_routes(sim.base_url))
    with (
        run_gateway(tmp, routes=routes, redis_url=redis_url) as gw,
        scraping_prometheus(tmp, f"127.0.0.1:{gw.port}") as prometheus,
        Load(gw) as load,
    ):
        cmd = [sys.executable, "-m", "cli", "promote", "--experiment", "triage"]
        cmd += ["--candidate", "candidate", "--steps", "50,100", "--hold", "5s"]
        cmd += ["--interval", "1s", "--prometheus", prometheus, "--max-step-wait", "30s"]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=cli_env(redis_url, routes), timeout=60
        )
        load.stop.set()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "breach at promote step 1 (candidate 50%): error rate" in proc.stdout
    r = redis.Redis.from_url(redis_url)
    assert stored_weights(r, "triage") == {"control": 0.9, "candidate": 0.1}
    assert all(status == 200 for status, _ in load.responses)  # control answered throughout
