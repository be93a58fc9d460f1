"""`make loadtest`: start the upstream simulator and a gateway in front of it, run locust
headless against the gateway, stop both, and exit with locust's code (non-zero on any failure).

    python -m loadtest.run_loadtest [--users 50 --spawn-rate 25 --run-time 30s]

Everything listens on 127.0.0.1. Each step has a timeout: servers must answer within a minute,
locust is killed 60 s after its run time, servers are killed when they do not stop in 20 s.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from loadtest import procs
from loadtest.procs import start_gateway, start_simulator, stop_process

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
API_KEY = "loadtest-key"


def run_time_seconds(value: str) -> float:
    """Locust's `-t` syntax: 30s, 2m, 1h30m, or plain seconds."""
    if value.isdigit():
        return float(value)
    parts = re.fullmatch(r"(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?", value.strip())
    if not parts or not any(parts.groups()):
        raise argparse.ArgumentTypeError(f"not a run time: {value!r}")
    h, m, s = (int(g or 0) for g in parts.groups())
    return float(h * 3600 + m * 60 + s)


def point_routes(source: Path, target: Path, api_base: str) -> Path:
    """Copy a routes file with every variant's api_base set to `api_base`."""
    data: dict[str, Any] = yaml.safe_load(source.read_text())
    for exp in data["experiments"]:
        for variant in exp["variants"]:
            if "api_base" in variant:
                variant["api_base"] = api_base
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def gateway_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a gateway under load: the load test's keys and a fresh data dir."""
    return procs.gateway_env(
        data_dir,
        api_key=API_KEY,
        provider_keys={"openrouter": "sk-or-loadtest-0123456789"},
        **extra,
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", "-u", type=int, default=50)
    p.add_argument("--spawn-rate", "-r", type=float, default=25)
    p.add_argument("--run-time", "-t", default="30s")
    p.add_argument("--reports", type=Path, default=Path("reports"))
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--sim-port", type=int, default=18101, help="0 picks a free port")
    p.add_argument("--port", type=int, default=0, help="gateway port (0 picks a free port)")
    p.add_argument("--routes", type=Path, default=HERE / "routes.loadtest.yaml")
    p.add_argument("--reviewers", type=int, default=0, help="ReviewerUser weight (0: off)")
    p.add_argument("--seed", type=int, default=2026)
    return p


def run_locust(args: argparse.Namespace, host: str) -> int:
    seconds = run_time_seconds(args.run_time)
    cmd = [
        sys.executable, "-m", "locust",
        "-f", str(HERE / "locustfile.py"),
        "--headless",
        "-u", str(args.users),
        "-r", str(args.spawn_rate),
        "-t", args.run_time,
        "--host", host,
        "--csv", str(args.reports / "loadtest"),
        "--html", str(args.reports / "loadtest.html"),
        "--exit-code-on-error", "1",
        "--stop-timeout", "5",
        "--only-summary",
    ]  # fmt: skip
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        LOADTEST_API_KEY=API_KEY,
        LOADTEST_REVIEWER_WEIGHT=str(args.reviewers),
        LOADTEST_SEED=str(args.seed),
    )
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        return proc.wait(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        print(f"locust did not finish within {seconds + 60:g}s: killed", file=sys.stderr)
        stop_process(proc, timeout_s=5)
        return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.reports.mkdir(parents=True, exist_ok=True)
    sim_args = ["--latency-ms", str(args.latency_ms), "--seed", str(args.seed)]
    with tempfile.TemporaryDirectory(prefix="triage-loadtest-") as tmp:
        sim = start_simulator(
            args=sim_args,
            port=args.sim_port,
            log=args.reports / "loadtest-simulator.log",
            timeout_s=30,
        )
        try:
            routes = point_routes(args.routes, Path(tmp) / "routes.yaml", f"{sim.url}/v1")
            gw = start_gateway(
                args=["--routes", str(routes)],
                port=args.port,
                log=args.reports / "loadtest-gateway.log",
                env=gateway_env(Path(tmp) / "data"),
                timeout_s=60,
            )
            print(f"simulator {sim.url} ready in {sim.ready_s:.2f}s; gateway {gw.url} ready in "
                  f"{gw.ready_s:.2f}s", flush=True)  # fmt: skip
            try:
                code = run_locust(args, gw.url)
            finally:
                gw.stop()
        finally:
            sim.stop()
    print(f"load test {'passed' if code == 0 else f'FAILED (exit {code})'}; reports in "
          f"{args.reports}/loadtest*")  # fmt: skip
    return code


if __name__ == "__main__":
    sys.exit(main())
