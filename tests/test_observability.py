"""Observability: the alert rules (promtool), the Grafana dashboard, and a real Prometheus
scraping a real gateway, so that every dashboard and alert query is known to return data.

Needs Debian's `prometheus` package (/usr/bin/prometheus and /usr/bin/promtool): .ci/run
installs it. The tests fail, not skip, when it is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from gateway.infra.embedded_redis import EmbeddedRedis
from tests.servers import Gateway, Simulator, ab_routes, run_gateway, run_module, run_prometheus

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "triage-gateway.json"
RUNBOOK = ROOT / "docs" / "runbook.md"
PROMETHEUS_RULE = ROOT / "k8s" / "base" / "prometheusrule.yaml"
CI_RUN = ROOT / ".ci" / "run"

PROVIDER_KEY = "sk-or-test-secret-0123456789"  # what tests.servers.run_gateway configures
API_KEY = "test-key"
TRAFFIC_S = 30.0
# Concrete values for the dashboard's template variables.
TEMPLATE_VALUES = {"experiment": "triage", "__rate_interval": "30s"}
SERVED_LABELS = {
    "experiment",
    "variant",
    "model",
    "outcome",
    "kind",
    "reason",
    "from_variant",
    "to_variant",
    "result",
    "changed",
    "version",
    "python",
    "le",
}


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found on PATH: `apt-get install prometheus` (.ci/run does it)")
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def load_alerts() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    return data


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in load_alerts()["groups"] for r in g["rules"] if "alert" in r]


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL with the template variables substituted) for every target."""
    out = []
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            out.append((panel["title"], substitute(target["expr"])))
    return out


def substitute(expr: str) -> str:
    for name, value in TEMPLATE_VALUES.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    assert "$" not in expr, f"unsubstituted template variable in {expr!r}"
    return expr


_COMPARISON = re.compile(r"(>=|<=|==|!=|>|<)(\s*)(?=-?[0-9])")


def signal_expr(alert_expr: str) -> str:
    """The alert's expression with each comparison against a number turned into a `bool`
    comparison: it returns a 0/1 series wherever the alert's inputs exist, firing or not, so
    "returns data" checks the metrics, labels and joins without needing the alert to fire."""
    return _COMPARISON.sub(r"\1 bool\2", alert_expr)


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


# --------------------------------------------------------------------------- static checks


def test_promtool_checks_the_rules_file() -> None:
    done = promtool("check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 7 rules found" in done.stdout


def test_promtool_unit_tests_pass_and_cover_every_alert() -> None:
    done = promtool("test", "rules", str(ALERTS_TEST))
    assert done.returncode == 0, done.stdout + done.stderr
    tests = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names == fired, f"alerts without a firing case: {names - fired}"
    assert names == quiet, f"alerts without a non-firing case: {names - quiet}"


def test_alerts_have_severity_annotations_and_runbook_anchors() -> None:
    anchors = {
        slug(line.lstrip("#")) for line in RUNBOOK.read_text().splitlines() if line.startswith("#")
    }
    groups = load_alerts()["groups"]
    assert [g["name"] for g in groups] == ["triage-gateway"]
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], rule["alert"]
        path, _, anchor = notes["runbook_url"].partition("#")
        assert path == "docs/runbook.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no heading for #{anchor} in the runbook"


def test_k8s_prometheusrule_has_the_same_groups() -> None:
    if not PROMETHEUS_RULE.exists():
        pytest.skip(f"{PROMETHEUS_RULE.relative_to(ROOT)} does not exist (yet)")
    docs = [d for d in yaml.safe_load_all(PROMETHEUS_RULE.read_text()) if d]
    rules = [d for d in docs if d.get("kind") == "PrometheusRule"]
    assert len(rules) == 1, "expected one PrometheusRule document"
    assert rules[0]["spec"]["groups"] == load_alerts()["groups"]


def test_ci_installs_prometheus() -> None:
    assert "command -v prometheus >/dev/null || need+=(prometheus)" in CI_RUN.read_text()


def test_dashboard_is_importable_as_is(tmp_path: Path) -> None:
    dashboard = load_dashboard()
    text = DASHBOARD.read_text()
    assert "__inputs" not in dashboard and "__requires" not in dashboard
    assert dashboard.get("uid") is None and dashboard.get("id") is None
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    assert "experiment" in variables
    # Every "uid" anywhere is the variable: no hard-coded data source or dashboard UID.
    uids = re.findall(r'"uid":\s*("[^"]*"|null)', text)
    assert uids and set(uids) == {'"${datasource}"'}, set(uids)
    query_panels = [p for p in all_panels(dashboard) if p["type"] != "row"]
    for panel in query_panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    exprs = " ".join(e for _, e in dashboard_exprs(dashboard))
    for needed in (
        "triage_gateway_route_weight",
        "histogram_quantile(0.99, sum by (model, le) "
        "(rate(triage_gateway_request_duration_seconds_bucket",
        "triage_gateway_overhead_duration_seconds_bucket",
        "1000 * sum by (variant) (rate(triage_gateway_cost_usd_total",
        "triage_gateway_validation_failures_total",
        "triage_gateway_fallbacks_total",
        "triage_gateway_shadow_comparisons_total",
        '1 - sum by (variant) (increase(triage_gateway_corrections_total{changed="true"}',
        "triage_gateway_pair_queue_depth",
        "triage_gateway_pair_spool_records",
        'outcome="error"',
    ):
        assert needed in exprs, needed
    # Every expression parses: promtool checks them as recording rules.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr}
                    for i, (_, expr) in enumerate(dashboard_exprs(dashboard))
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_bench_metrics_reports_both_modes() -> None:
    args = ["--requests", "2000", "--repeats", "1", "--json", "--target-us", "10000"]
    done = run_module("tools.bench.metrics", *args, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    results = {r["mode"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert set(results) == {"single", "multiprocess"}
    for r in results.values():
        assert 0 < r["served_us"] < 10_000 and 0 < r["with_shadow_us"] < 10_000


def test_scrape_drops_live_gauge_files_of_exited_workers(tmp_path: Path) -> None:
    from gateway.infra.metrics import _reap_dead_workers

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    names = [
        f"gauge_livesum_{gone.pid}.db",
        f"gauge_livesum_{os.getpid()}.db",
        f"counter_{gone.pid}.db",
        f"gauge_mostrecent_{gone.pid}.db",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    _reap_dead_workers(str(tmp_path))
    left = sorted(p.name for p in tmp_path.iterdir())
    # Only the exited worker's live gauges go; its counters and other gauges stay counted.
    assert left == sorted(names[1:])


# ------------------------------------------------------- a real Prometheus, a real gateway


@dataclass
class Observed:
    gateway: Gateway
    prometheus_url: str
    review_ids: list[str]
    texts: list[str]

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def alerting_prometheus(tmp: Path, target: str) -> contextlib.AbstractContextManager[str]:
    """A real Prometheus scraping `target` every second, with the alert rules loaded."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": "triage-gateway", "static_configs": [{"targets": [target]}]}
        ],
    }
    return run_prometheus(tmp, binary("prometheus"), config)


def _traffic(gw: Gateway, seconds: float, threads: int) -> tuple[list[str], list[str]]:
    """Classify distinct reviews from `threads` clients for `seconds`."""
    deadline = time.monotonic() + seconds
    ids: list[str] = []
    texts: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        i = 0
        with gw.client() as c:
            while time.monotonic() < deadline:
                review_id = f"obs-review-{n}-{i}"
                text = f"The zebra-widget {n}x{i} crashes whenever I open settings"
                c.post("/v1/classify", json={"text": text, "review_id": review_id})
                with lock:
                    ids.append(review_id)
                    texts.append(text)
                i += 1

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return ids, texts


@pytest.fixture(scope="module")
def observed(
    tmp_path_factory: pytest.TempPathFactory,
    simulator: Simulator,
    redis_server: EmbeddedRedis,
) -> Iterator[Observed]:
    """A gateway (A/B with a shadow variant, faults injected) scraped every second by
    Prometheus with the alert rules loaded, after ~30 s of traffic."""
    tmp = tmp_path_factory.mktemp("observability")
    redis.Redis.from_url(redis_server.url).flushall()
    routes = ab_routes(simulator.base_url, shadow={"variant": "candidate", "sample_rate": 0.5})
    simulator.control(invalid_rate=0.2, error_rate=0.05, rate_limit_rate=0, timeout_rate=0)
    try:
        with (
            run_gateway(tmp / "gw", routes=routes, redis_url=redis_server.url) as gw,
            alerting_prometheus(tmp / "prom", f"127.0.0.1:{gw.port}") as prom,
        ):
            obs = Observed(gw, prom, [], [])
            deadline = time.monotonic() + 30
            while not obs.query('up{job="triage-gateway"} == 1'):
                assert time.monotonic() < deadline, "Prometheus never scraped the gateway"
                time.sleep(0.2)
            obs.review_ids, obs.texts = _traffic(gw, TRAFFIC_S, threads=4)
            time.sleep(2.5)  # a last scrape and rule evaluation after the traffic
            yield obs
    finally:
        simulator.control(invalid_rate=0, error_rate=0)


def test_every_dashboard_query_returns_data(observed: Observed) -> None:
    dashboard = load_dashboard()
    empty = [
        f"{title}: {expr}" for title, expr in dashboard_exprs(dashboard) if not observed.query(expr)
    ]
    assert not empty, "dashboard queries with no data:\n" + "\n".join(empty)
    # The experiment variable: label_values(triage_gateway_route_weight, experiment).
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "experiment")
    match = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]["query"])
    assert match, variable["query"]
    series = observed.query(match.group(1))
    assert {s["metric"].get(match.group(2)) for s in series} == {"triage"}


def test_every_alert_expression_returns_data_and_evaluates(observed: Observed) -> None:
    rules = alert_rules()
    empty = [
        f"{r['alert']}: {signal_expr(r['expr'])}"
        for r in rules
        if not observed.query(signal_expr(r["expr"]))
    ]
    assert not empty, "alert expressions with no data:\n" + "\n".join(empty)
    loaded = httpx.get(f"{observed.prometheus_url}/api/v1/rules", timeout=10).json()
    states = {
        r["name"]: (r["health"], r.get("lastError", ""))
        for g in loaded["data"]["groups"]
        for r in g["rules"]
    }
    assert set(states) == {r["alert"] for r in rules}
    assert all(health == "ok" for health, _ in states.values()), states


def test_shadow_validation_and_fallback_series_exist(observed: Observed) -> None:
    for expr in (
        "triage_gateway_shadow_comparisons_total",
        "triage_gateway_validation_failures_total",
        "triage_gateway_reasks_total > 0",
        "triage_gateway_fallbacks_total",
        'triage_gateway_requests_total{outcome="shadow"}',
        'triage_gateway_tokens_total{kind="completion"}',
        'triage_gateway_corrections_total{changed="true"}',
        'triage_gateway_route_weight{variant="control"} == 0.9',
        "triage_gateway_build_info == 1",
    ):
        assert observed.query(expr), expr


def test_no_label_holds_a_review_id_text_or_key(observed: Observed) -> None:
    body = httpx.get(f"{observed.gateway.url}/metrics", timeout=10).text
    forbidden = [PROVIDER_KEY, API_KEY, "obs-review", "zebra"]
    assert len(observed.review_ids) > 500
    seen = 0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            for name, value in sample.labels.items():
                seen += 1
                if family.name.startswith("triage_gateway_"):
                    assert name in SERVED_LABELS, (sample.name, name)
                for bad in forbidden:
                    assert bad not in value, (sample.name, name, value)
                assert value not in observed.review_ids[:1000]
                assert len(value) <= 64, (sample.name, name, value)
    assert seen > 100
    assert PROVIDER_KEY not in body and "zebra" not in body


def test_access_log_carries_the_callers_request_id(observed: Observed) -> None:
    gw = observed.gateway
    with gw.client() as c:
        r = c.post(
            "/v1/classify",
            json={"text": "Dark mode please", "review_id": "log-1"},
            headers={"x-request-id": "abc-123"},
        )
    assert r.status_code in {200, 502, 504}, r.text
    assert r.headers["x-request-id"] == "abc-123"
    deadline = time.monotonic() + 5
    line: dict[str, Any] | None = None
    while line is None and time.monotonic() < deadline:
        for raw in gw.log_text().splitlines():
            if '"abc-123"' in raw and '"triage_gateway.access"' in raw:
                line = json.loads(raw)
        time.sleep(0.05)
    assert line is not None, "no access-log line with the caller's id abc-123"
    # The gateway's own id names the request (and its pair); the caller's is kept beside it.
    assert line["caller_request_id"] == "abc-123"
    assert line["request_id"] != "abc-123" and len(line["request_id"]) == 32
    assert line["path"] == "/v1/classify" and line["status"] == r.status_code
    assert line["variant"] in {"control", "candidate"} or r.status_code != 200
    assert isinstance(line["latency_ms"], float | int) and line["latency_ms"] > 0
    assert line["outcome"] == ("ok" if r.status_code == 200 else "error")


# ------------------------------------------------------------------------- several workers


def _scrape(gw: Gateway) -> list[Any]:
    body = httpx.get(f"{gw.url}/metrics", timeout=10).text
    return list(text_string_to_metric_families(body))


def _requests_total(families: list[Any]) -> float:
    return float(
        sum(
            s.value
            for f in families
            for s in f.samples
            if s.name == "triage_gateway_requests_total"
        )
    )


def _file_samples(path: Path, name: str) -> list[Any]:
    """The samples named `name` in one worker's metrics file."""
    merged = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
    return [s for m in merged for s in m.samples if s.name == name]


async def test_two_workers_count_every_request_once(
    tmp: Path, sim: Simulator, redis_url: str
) -> None:
    """Both workers serve the routes given by --routes, not GATEWAY_ROUTES (another experiment):
    each builds its app from the settings `serve` built, not from the environment."""
    n = 400
    cli_routes = tmp / "cli-routes.yaml"
    cli_routes.write_text(yaml.safe_dump(ab_routes(sim.base_url)))
    env_routes = ab_routes(sim.base_url, name="from-env")
    args = ("--workers", "2", "--routes", str(cli_routes))
    with run_gateway(tmp, routes=env_routes, redis_url=redis_url, extra_args=args) as gw:
        sem = asyncio.Semaphore(32)
        async with gw.async_client() as client:

            async def one(i: int) -> int:
                async with sem:
                    body = {"text": f"Sync fails on tablet {i}", "review_id": f"w-{i}"}
                    return (await client.post("/v1/classify", json=body)).status_code

            codes = await asyncio.gather(*(one(i) for i in range(n)))
        assert codes == [200] * n
        scrapes = [_scrape(gw) for _ in range(8)]  # the workers take turns answering
        prom_dir = tmp / "data" / "prometheus-multiproc"
        per_worker = {
            path.name: sum(s.value for s in _file_samples(path, "triage_gateway_requests_total"))
            for path in sorted(prom_dir.glob("counter_*.db"))
        }
        # Each worker sets the weights in force at its start, in its own file.
        routes_per_worker = [
            {
                (s.labels["experiment"], s.labels["variant"]): s.value
                for s in _file_samples(path, "triage_gateway_route_weight")
            }
            for path in sorted(prom_dir.glob("gauge_mostrecent_*.db"))
        ]
    cli_weights = {("triage", "control"): 0.9, ("triage", "candidate"): 0.1}
    assert routes_per_worker == [pytest.approx(cli_weights)] * 2, routes_per_worker
    for families in scrapes:
        assert _requests_total(families) == n
        samples = [s for f in families for s in f.samples]
        assert not any("pid" in s.labels for s in samples)
        info = [s for s in samples if s.name == "triage_gateway_build_info"]
        assert len(info) == 1 and info[0].value == 1
        weights = {
            s.labels["variant"]: s.value for s in samples if s.name == "triage_gateway_route_weight"
        }
        assert weights == pytest.approx({"control": 0.9, "candidate": 0.1})
        gauges = {s.name for s in samples}
        assert {"triage_gateway_pair_queue_depth", "triage_gateway_pair_spool_records"} <= gauges
    assert sum(per_worker.values()) == n
    # Both workers keep their own file; which one accepts each connection is up to the kernel.
    assert len(per_worker) == 2, per_worker
