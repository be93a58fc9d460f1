"""Offline eval end to end: the CLI on the MARC test set, in process, with the built-in local
model and the simulator standing in for GPT-4o; the HTML report opened in real Chromium; the
gate exit code; the cascade sweep; and a cascade variant served by a real gateway."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.experiments.config import RoutesFileError, parse_routes
from tests.servers import CHROMIUM_ARGS, Simulator, run_gateway, run_simulator

REPO = Path(__file__).resolve().parents[1]
MARC_TEST = REPO / ".." / "shared" / "data" / "jha-mahmoud-marc" / "BOW Test.arff"
needs_marc = pytest.mark.skipif(not MARC_TEST.is_file(), reason="shared/data (MARC) not present")


def eval_routes(base_url: str, threshold: float = 0.8) -> dict[str, Any]:
    return {
        "experiments": [
            {
                "name": "triage",
                "salt": "eval-salt",
                "variants": [
                    {
                        "name": "control",
                        "model": "openrouter/openai/gpt-4o",
                        "api_base": base_url,
                        "weight": 1.0,
                        "timeout_s": 5,
                    },
                    {"name": "local", "model": "local", "weight": 0.0},
                    {
                        "name": "cascade",
                        "model": "cascade",
                        "weight": 0.0,
                        "cascade": {"cheap": "local", "strong": "control", "threshold": threshold},
                    },
                ],
                "fallback": ["control"],
                "gates": {"accuracy_margin": 0.5},
            }
        ]
    }


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory, so the baseline local model is trained once for the module."""
    return tmp_path_factory.mktemp("eval-data")


def run_eval(
    tmp: Path, sim: Simulator, data_dir: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    routes = tmp / "routes.yaml"
    routes.write_text(yaml.safe_dump(eval_routes(sim.base_url)))
    out = tmp / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_PROVIDER_KEYS": '{"openrouter": "sk-or-test-secret-0123456789"}',
    }
    cmd = [sys.executable, "-m", "cli", "eval", "--routes", str(routes), "--out", str(out)]
    proc = subprocess.run(
        [*cmd, "--no-progress", *args], capture_output=True, text=True, env=env, timeout=110
    )
    return proc, out


def open_in_chromium(report: Path, screenshot: Path) -> dict[str, tuple[str, str]]:
    """Load the report in headless Chromium, screenshot it, read the accuracy cells."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(report.resolve().as_uri())
            page.screenshot(path=str(screenshot), full_page=True)
            cells = page.locator("td.accuracy")
            shown = {
                str(cells.nth(i).get_attribute("data-variant")): (
                    cells.nth(i).inner_text().strip(),
                    str(cells.nth(i).get_attribute("data-value")),
                )
                for i in range(cells.count())
            }
            assert page.locator("svg").count() >= 4  # cost, latency, 2 confusion matrices
        finally:
            browser.close()
    return shown


@needs_marc
def test_eval_on_marc_writes_summary_and_report(tmp: Path, sim: Simulator, data_dir: Path) -> None:
    rows = sum(
        1 for line in MARC_TEST.read_text().splitlines() if line.startswith("'") and "," in line
    )
    proc, out = run_eval(
        tmp, sim, data_dir, "--data", str(MARC_TEST), "--variants", "local,control"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= {"variants", "comparisons", "gates", "meta"}
    assert set(summary["variants"]) == {"local", "control"}
    for figures in summary["variants"].values():
        assert figures["n"] == rows == 131
        assert set(figures) >= {
            "n",
            "accuracy",
            "macro_f1",
            "per_class",
            "validity_rate",
            "latency_ms",
            "cost_per_review_usd",
            "cost_per_1000_usd",
            "confusion",
            "reask_rate",
            "fallback_rate",
        }
        assert set(figures["latency_ms"]) == {"p50", "p95", "p99"}
        assert 0 <= figures["accuracy"] <= 1 and figures["validity_rate"] == 1.0
        assert set(figures["per_class"]) >= {"Bug Report", "Feature Request"}
    assert summary["variants"]["local"]["cost_per_review_usd"] == 0.0
    assert summary["variants"]["control"]["cost_per_review_usd"] > 0
    comparison = summary["comparisons"]["local"]
    assert comparison["control"] == "control" and comparison["n"] == 131
    lo, hi = comparison["ci95"]
    assert lo <= comparison["accuracy_diff"] <= hi
    assert 0 <= comparison["mcnemar"]["p_value"] <= 1
    assert summary["gates"]["passed"] and summary["gates"]["config"]["accuracy_margin"] == 0.5

    shown = open_in_chromium(out / "report.html", REPO / "reports" / "eval-report.png")
    for name, figures in summary["variants"].items():
        text, value = shown[name]
        assert text == f"{figures['accuracy'] * 100:.2f}%"
        assert float(value) == figures["accuracy"]
    assert (REPO / "reports" / "eval-report.png").stat().st_size > 10_000


@needs_marc
def test_impossible_gate_exits_1_and_names_it(tmp: Path, sim: Simulator, data_dir: Path) -> None:
    proc, out = run_eval(
        tmp,
        sim,
        data_dir,
        *("--data", str(MARC_TEST), "--variants", "local,control", "--limit", "20"),
        *("--gate-p95-ms", "0.0001"),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "GATE FAILED: local: p95 latency" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert not summary["gates"]["passed"]
    assert summary["variants"]["local"]["n"] == 20
    unknown = run_eval(tmp, sim, data_dir, "--data", str(MARC_TEST), "--variants", "nope")[0]
    assert unknown.returncode == 2 and "nope" in unknown.stderr


def test_cascade_sweep_on_a_small_set(tmp: Path, sim: Simulator, data_dir: Path) -> None:
    data = tmp / "small.jsonl"
    reviews = [
        ("The app crashes every time I open the camera", "Bug Report", "High"),
        ("Please add a dark mode, it would be nice", "Feature Request", "Low"),
        ("Love this app, works great", "Praise", "Low"),
        ("Login fails with an error since the update", "Bug Report", "High"),
        ("I wish you could export my notes to PDF", "Feature Request", "Medium"),
        ("Worst app ever, a waste of money", "Complaint", "Medium"),
        ("How do I change my password?", "Question", "Low"),
        ("It freezes when I scroll the feed", "Bug Report", "High"),
    ]
    data.write_text(
        "\n".join(
            json.dumps({"text": t, "category": c, "urgency": u, "review_id": f"s{i}"})
            for i, (t, c, u) in enumerate(reviews)
        )
    )
    proc, out = run_eval(
        tmp,
        sim,
        data_dir,
        *("--data", str(data), "--variants", "local,control,cascade"),
        *("--sweep-cascade", "local,control", "--target-accuracy", "0.5"),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    curve = summary["cascade"]["curve"]
    shares = [p["escalation_share"] for p in curve]
    assert [p["threshold"] for p in curve] == [round(i * 0.05, 2) for i in range(21)]
    assert shares == sorted(shares) and shares[-1] == 1.0
    costs = [p["cost_per_review_usd"] for p in curve]
    assert costs == sorted(costs)
    best = summary["cascade"]["best"]
    assert best is None or best["accuracy"] >= 0.5
    assert summary["variants"]["control"]["urgency_accuracy"] is not None
    assert summary["variants"]["cascade"]["n"] == len(reviews)
    assert "Cascade sweep" in (out / "report.html").read_text()


def test_cascade_routes_validation() -> None:
    routes = eval_routes("http://127.0.0.1:9/v1")
    parse_routes(routes)
    broken = eval_routes("http://127.0.0.1:9/v1")
    broken["experiments"][0]["variants"][2]["cascade"]["cheap"] = "control"
    with pytest.raises(RoutesFileError, match="must be a local variant"):
        parse_routes(broken)
    broken["experiments"][0]["variants"][2]["cascade"] = {"cheap": "local", "strong": "gone"}
    with pytest.raises(RoutesFileError, match="unknown variant 'gone'"):
        parse_routes(broken)
    del broken["experiments"][0]["variants"][2]["cascade"]
    with pytest.raises(RoutesFileError, match="go together"):
        parse_routes(broken)


def test_gateway_serves_a_cascade(
    tmp: Path, sim: Simulator, redis_url: str, data_dir: Path
) -> None:
    """Threshold 0: the local model answers everything; 1: every review escalates."""
    experiments = []
    for name, threshold in (("low", 0.0), ("high", 1.0)):
        exp = eval_routes(sim.base_url, threshold)["experiments"][0]
        exp["name"] = name
        for v in exp["variants"]:
            v["weight"] = 1.0 if v["name"] == "cascade" else 0.0
        experiments.append(exp)
    routes = {"experiments": experiments}
    with (
        run_gateway(tmp, routes=routes, redis_url=redis_url, data_dir=data_dir) as gw,
        gw.client() as client,
    ):
        plan = (("low", "local", "local", 0), ("high", "openrouter/openai/gpt-4o", "control", 6))
        for name, model, answered_by, calls in plan:
            before = sim.stats()["requests"]
            for i in range(6):
                review = {"text": f"The app crashes on start {i}", "review_id": f"{name}{i}"}
                body = client.post("/v1/classify", json={**review, "experiment": name}).json()
                assert (body["variant"], body["model"]) == ("cascade", model), body
            assert sim.stats()["requests"] - before == calls
            assert stored_pair(client, body["request_id"])["answered_by"] == answered_by


def stored_pair(client: httpx.Client, request_id: str) -> dict[str, Any]:
    """The pair record, once the background pair log has written it."""
    deadline = time.monotonic() + 10
    while True:
        r = client.get(f"/v1/pairs/{request_id}")
        if r.status_code != 404 or time.monotonic() > deadline:
            assert r.status_code == 200, r.text
            pair: dict[str, Any] = r.json()
            return pair
        time.sleep(0.05)


SEED_SET = REPO / "gateway" / "data" / "seed_reviews.jsonl"
PROFILE_PRICES = {  # the simulator's built-in profiles: USD per 1M input / output tokens
    "openai/gpt-4o": (2.5, 10.0),
    "acme/llama-3-8b-triage-ft": (0.2, 0.2),
    "acme/llama-3-1b-triage-weak": (0.1, 0.1),
}


def test_eval_of_simulated_profiles_shows_a_significant_difference(
    tmp: Path, data_dir: Path
) -> None:
    """On the labelled seed set, the GPT-4o-like control (90%) against the fine-tuned candidate
    (97%): McNemar significant in that direction, and the costs the profiles' prices imply; the
    weak profile fails the gates."""
    routes = yaml.safe_load((REPO / "examples" / "ab-simulator.yaml").read_text())
    with run_simulator("--latency-scale", "0.02", "--seed", "5") as profiled:
        for variant in routes["experiments"][0]["variants"]:
            if "api_base" in variant:
                variant["api_base"] = profiled.base_url
        (tmp / "routes.yaml").write_text(yaml.safe_dump(routes))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env |= {
            "GATEWAY_DATA_DIR": str(data_dir),
            "GATEWAY_PROVIDER_KEYS": '{"openrouter": "sk-or-test-secret-0123456789"}',
        }
        out = tmp / "out"
        cmd = [sys.executable, "-m", "cli", "eval", "--routes", str(tmp / "routes.yaml")]
        cmd += ["--data", str(SEED_SET), "--variants", "control,candidate,weak", "--limit", "300"]
        proc = subprocess.run(
            [*cmd, "--out", str(out), "--no-progress"],
            capture_output=True,
            text=True,
            env=env,
            timeout=170,
        )
        stats = profiled.stats()
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the weak variant fails its gates
    summary = json.loads((out / "summary.json").read_text())
    figures, comparisons = summary["variants"], summary["comparisons"]
    assert all(figures[v]["n"] == 300 for v in ("control", "candidate", "weak"))
    assert 0.85 <= figures["control"]["accuracy"] <= 0.95
    assert figures["candidate"]["accuracy"] >= 0.94
    assert figures["control"]["validity_rate"] == figures["candidate"]["validity_rate"] == 1.0
    better = comparisons["candidate"]
    assert better["accuracy_diff"] > 0.03 and better["significant"]
    assert better["mcnemar"]["p_value"] < 0.05 and better["mcnemar"]["c"] > better["mcnemar"]["b"]
    worse = comparisons["weak"]
    assert worse["accuracy_diff"] < 0 and worse["mcnemar"]["p_value"] < 0.05
    failed = summary["gates"]["failed"]
    assert failed and all(f.startswith("weak:") for f in failed), failed
    assert "GATE FAILED: weak: accuracy" in proc.stdout

    # The cost per review is what the profiles' prices make of the tokens the simulator counted.
    usage = stats["usage"]
    for variant, model in (
        ("control", "openai/gpt-4o"),
        ("candidate", "acme/llama-3-8b-triage-ft"),
    ):
        pin, pout = PROFILE_PRICES[model]
        tokens = usage[model]
        assert stats["by_model"][model] == 300  # one call per review: no faults, no re-asks
        implied = (tokens["prompt_tokens"] * pin + tokens["completion_tokens"] * pout) / 1e6
        assert figures[variant]["cost_per_review_usd"] * 300 == pytest.approx(implied)
    control_cost = figures["control"]["cost_per_review_usd"]
    assert figures["candidate"]["cost_per_review_usd"] < control_cost / 15
    print(
        f"\ncontrol {figures['control']['accuracy']:.4f} ${control_cost:.6f}/review, candidate "
        f"{figures['candidate']['accuracy']:.4f} "
        f"${figures['candidate']['cost_per_review_usd']:.6f}/review, McNemar "
        f"b={better['mcnemar']['b']} c={better['mcnemar']['c']} "
        f"p={better['mcnemar']['p_value']:.2e}"
    )


def cli_env(redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return env | {
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_PROVIDER_KEYS": '{"openrouter": "sk-or-test-secret-0123456789"}',
        "COLUMNS": "200",
        **extra,
    }


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, timeout=110
    )


def two_variant_routes(base_url: str) -> dict[str, Any]:
    variant = {"model": "openrouter/openai/gpt-4o", "api_base": base_url, "timeout_s": 5}
    return {
        "experiments": [
            {
                "name": "triage",
                "salt": "eval-salt",
                "variants": [
                    {"name": "control", "weight": 1.0, **variant},
                    {"name": "candidate", "weight": 0.0, **variant},
                ],
                "fallback": ["control"],
                "gates": {"accuracy_margin": 1.0},
            }
        ]
    }


def test_eval_of_a_registered_model_not_deployed(
    tmp: Path, sim: Simulator, redis_url: str, data_dir: Path
) -> None:
    """`eval --variants control,cand2`: cand2 is only a registry entry (endpoint, model id,
    price); the eval builds its variant from the record, and its cost follows that price."""
    routes = tmp / "routes.yaml"
    routes.write_text(yaml.safe_dump(two_variant_routes(sim.base_url)))
    env = cli_env(redis_url, data_dir, GATEWAY_ROUTES=str(routes))
    added = cli(
        *("models", "add", "cand2", "--kind", "hosted", "--endpoint", sim.base_url),
        *("--model", "acme/llama-3-8b-triage-ft", "--provider", "openrouter"),
        *("--price-in", "0.2", "--price-out", "0.2"),
        env=env,
    )
    assert added.returncode == 0, added.stdout + added.stderr
    out = tmp / "out"
    proc = cli(
        *("eval", "--data", str(SEED_SET), "--variants", "control,cand2", "--limit", "12"),
        *("--out", str(out), "--no-progress", "--gate-margin", "1"),
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"store: {redis_url}" in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["variants"]["cand2"]["n"] == summary["variants"]["control"]["n"] == 12
    assert summary["variants"]["cand2"]["validity_rate"] == 1.0
    cost = summary["variants"]["cand2"]["cost_per_review_usd"]
    assert 0 < cost < summary["variants"]["control"]["cost_per_review_usd"]
    missing = cli(
        *("eval", "--data", str(SEED_SET), "--variants", "control,nobody", "--limit", "2"),
        *("--out", str(tmp / "o2"), "--no-progress"),
        env=env,
    )
    assert missing.returncode == 2 and "nor a registered model" in missing.stderr, missing.stderr


def test_gateway_eval_forces_a_weight_0_variant_and_logs_eval_pairs(
    tmp: Path, sim: Simulator, redis_url: str, data_dir: Path
) -> None:
    """In gateway mode each named variant answers every review (X-Triage-Variant with an admin
    key), the weight-0 candidate included; those pairs are eval pairs: out of the online
    report and of exports unless --include-eval."""
    routes = two_variant_routes(sim.base_url)
    admin = {"GATEWAY_ADMIN_KEYS": "admin-key-0123456789"}
    with run_gateway(tmp / "gw", routes=routes, redis_url=redis_url, env=admin) as gw:
        with gw.client() as client:  # an API key cannot force a variant
            r = client.post(
                "/v1/classify", json={"text": "It crashes."}, headers={"X-Triage-Variant": "x"}
            )
            assert r.status_code == 401, r.text
        env = cli_env(redis_url, data_dir)  # no GATEWAY_ROUTES: the gateway recorded them
        out = tmp / "out"
        proc = cli(
            *("eval", "--gateway", gw.url, "--admin-key", "admin-key-0123456789"),
            *("--data", str(SEED_SET), "--variants", "control,candidate", "--limit", "18"),
            *("--out", str(out), "--no-progress"),
            env=env,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["meta"]["mode"] == "gateway_forced"
        assert summary["variants"]["candidate"]["n"] == summary["variants"]["control"]["n"] == 18
        assert summary["comparisons"]["candidate"]["mcnemar"] is not None  # paired
        unknown = cli(
            *("eval", "--gateway", gw.url, "--admin-key", "admin-key-0123456789"),
            *("--data", str(SEED_SET), "--variants", "control,ghost", "--limit", "2"),
            *("--out", str(tmp / "o2"), "--no-progress"),
            env=env,
        )
        assert unknown.returncode == 2 and "ghost" in unknown.stderr, unknown.stderr
        with gw.client() as client:
            deadline = time.monotonic() + 10
            while True:
                pairs = client.get("/v1/pairs", params={"limit": 100}).json()
                items = pairs["items"] if isinstance(pairs, dict) else pairs
                if len(items) >= 39 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            # 2 x 18, one probe call per variant, and the refused run's probe of control
            assert len(items) == 39, len(items)
            assert {p["purpose"] for p in items} == {"eval"}
            assert {p["variant"] for p in items} == {"control", "candidate"}
            target = next(p for p in items if p["variant"] == "candidate")
            fix = {
                "request_id": target["request_id"],
                "category": "Bug Report",
                "urgency": "High",
                "topic": "crash",
                "summary": "The app crashes.",
                "corrected_by": "tester",
            }
            assert client.post("/v1/corrections", json=fix).status_code == 201
    report = cli("report", "--experiment", "triage", "--json", env=env)
    assert report.returncode == 1 and "no served pairs" in report.stderr, report.stderr
    skipped = cli("export", "--out", str(tmp / "x1"), env=env)
    assert skipped.returncode == 1 and "skipped_eval 39" in skipped.stderr, skipped.stderr
    kept = cli("export", "--out", str(tmp / "x2"), "--include-eval", "--split", "1", env=env)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert json.loads((tmp / "x2" / "stats.json").read_text())["train"] == 1
