"""One store for every command: a CLI command run from another folder reaches the Redis of the
running gateway (the embedded one of its data directory, the default data directory included),
says which store it uses, reads the routes the gateway recorded, and exits 1 when it finds no
pairs instead of writing empty files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gateway.infra.embedded_redis import find_running
from gateway.infra.redis_client import describe_url
from loadtest import procs
from tests.servers import PROVIDER_KEYS, Gateway, Simulator, ab_routes, run_gateway, write_routes

REVIEWS = [
    "The app crashes every time I open the camera.",
    "Please add a dark mode, my eyes hurt at night.",
    "I was charged twice for the premium plan.",
]


def cli(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=cwd,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_env(**extra: str) -> dict[str, str]:
    """No GATEWAY_* from the developer's shell; PYTHONPATH so `-m cli` runs from any folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.pop("XDG_DATA_HOME", None)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    env.update(extra)
    return env


def classify_and_correct(gw: Gateway) -> list[str]:
    """Three served pairs, two of them corrected (every answer field reviewed)."""
    ids = []
    with gw.client() as client:
        for i, text in enumerate(REVIEWS):
            r = client.post("/v1/classify", json={"text": text, "review_id": f"r-{i}"})
            assert r.status_code == 200, r.text
            ids.append(r.json()["request_id"])
        for rid in ids[:2]:
            body = {
                "request_id": rid,
                "category": "Bug Report",
                "urgency": "High",
                "topic": "camera crash",
                "summary": "The app crashes when the camera opens.",
                "corrected_by": "tester",
            }
            for _ in range(100):  # the pair log writes in the background
                r = client.post("/v1/corrections", json=body)
                if r.status_code != 404:
                    break
                time.sleep(0.05)
            assert r.status_code == 201, r.text
    return ids


def test_export_from_another_folder_reads_the_running_gateways_pairs(
    tmp: Path, sim: Simulator
) -> None:
    data = tmp / "data"
    routes = write_routes(tmp / "routes.yaml", ab_routes(sim.base_url, control=1, candidate=0))
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    with run_gateway(tmp / "gw", routes=routes, data_dir=data) as gw:
        classify_and_correct(gw)
        env = cli_env(GATEWAY_DATA_DIR=str(data))  # no GATEWAY_ROUTES, no GATEWAY_REDIS_URL
        proc = cli("export", "--out", str(tmp / "out"), cwd=elsewhere, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        stats = json.loads((tmp / "out" / "stats.json").read_text())
        assert stats["counts"]["pairs_read"] == 3 and stats["train"] + stats["val"] == 2
        store_line = next(x for x in proc.stderr.splitlines() if x.startswith("store: "))
        assert f"embedded redis in {data / 'redis'} (running gateway, pid " in store_line
        assert f"pid {gw.proc.pid})" in store_line
        # The routes the gateway serves, read from the store: the report knows both variants.
        report = cli("report", "--experiment", "triage", "--json", cwd=elsewhere, env=env)
        assert report.returncode == 0, report.stdout + report.stderr
        assert f"routes: {routes.resolve()} (the gateway's" in report.stderr
        rows = json.loads(report.stdout)["variants"]
        assert rows["control"]["traffic"] == 3 and "candidate" in rows
        # `history` needs the experiment from the routes file too (not the packaged default).
        hist = cli("history", "--experiment", "triage", cwd=elsewhere, env=env)
        assert hist.returncode == 0, hist.stdout + hist.stderr
        assert "the routes file is in force" in hist.stdout
    assert sorted(p.name for p in elsewhere.iterdir()) == []  # nothing created in the cwd
    assert find_running(data / "redis") is None  # the gateway's Redis went with it


def test_the_default_data_dir_does_not_depend_on_the_current_folder(
    tmp: Path, sim: Simulator, request: pytest.FixtureRequest
) -> None:
    # A short HOME: the socket under ~/.local/share/... must fit a unix socket path.
    home = Path(tempfile.mkdtemp(prefix="home-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(home, ignore_errors=True))
    routes = write_routes(tmp / "routes.yaml", ab_routes(sim.base_url, control=1, candidate=0))
    env = procs.gateway_env(
        tmp / "unused", api_key="test-key", provider_keys=PROVIDER_KEYS, GATEWAY_ROUTES=str(routes)
    )
    del env["GATEWAY_DATA_DIR"]
    env.pop("XDG_DATA_HOME", None)
    env["HOME"] = str(home)
    log = tmp / "gateway.log"
    server = procs.start_gateway(env=env, log=log)
    try:
        gw = Gateway(server.port, server.proc, log, "test-key")
        classify_and_correct(gw)
        elsewhere = tmp / "elsewhere"
        elsewhere.mkdir()
        proc = cli("export", "--out", str(tmp / "out"), cwd=elsewhere, env=cli_env(HOME=str(home)))
        assert proc.returncode == 0, proc.stdout + proc.stderr + server.tail(2000)
    finally:
        server.stop(15.0)
    default = home / ".local" / "share" / "triage-gateway"
    assert f"store: embedded redis in {default / 'redis'} (running gateway" in proc.stderr
    assert json.loads((tmp / "out" / "stats.json").read_text())["train"] >= 1
    assert (default / "redis" / "redis.log").is_file() and list(elsewhere.iterdir()) == []


def test_export_with_no_pairs_exits_1_and_writes_nothing(tmp: Path) -> None:
    data = tmp / "empty"
    proc = cli(
        "export", "--out", str(tmp / "out"), cwd=tmp, env=cli_env(GATEWAY_DATA_DIR=str(data))
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no labelled example to export: 0 pairs read; nothing written" in proc.stderr
    assert "(no gateway running on it: started for this command)" in proc.stderr
    assert not (tmp / "out").exists()
    assert find_running(data / "redis") is None  # the command stopped what it started
    report = cli(
        "report", "--experiment", "triage", cwd=tmp, env=cli_env(GATEWAY_DATA_DIR=str(data))
    )
    assert report.returncode == 1 and "no served pairs" in report.stderr, report.stderr


def test_store_line_names_a_configured_url_without_credentials(redis_url: str, tmp: Path) -> None:
    assert describe_url("redis://user:s3cret@10.0.0.5:6380/2?password=x") == (
        "redis://10.0.0.5:6380/2"
    )
    assert describe_url("rediss://:s3cret@[::1]:6379/0") == "rediss://[::1]:6379/0"
    assert describe_url("unix:///run/redis.sock") == "unix:///run/redis.sock"
    proc = cli(
        "models",
        "list",
        cwd=tmp,
        env=cli_env(GATEWAY_REDIS_URL=redis_url, GATEWAY_DATA_DIR=str(tmp)),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"store: {redis_url}" in proc.stderr
    assert "routes: none recorded in this store" in proc.stderr
