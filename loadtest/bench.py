"""`make bench`: what the gateway costs on the request path, next to the upstream called
directly and to the LiteLLM proxy in front of the same upstream.

    python -m loadtest.bench [--quick] [--soak] [--doc docs/benchmarks.md]
                             [--scaling docs/scaling.md]
                             [--targets direct,passthrough,gateway,litellm]
                             [--concurrency 1,16,64,256] [--sections points,local,workers,soak]

Closed-loop load at each concurrency (wrk where installed, else an aiohttp loop; bounded in
time per point, and the aiohttp loop in count too) against:

* direct: the upstream simulator (fixed 50 ms latency), the floor;
* passthrough: loadtest/passthrough.py, a minimal FastAPI + aiohttp passthrough (no logging,
  no metrics), the yardstick the gateway must beat;
* gateway: `triage-gateway serve` with examples/ab-simulator.yaml (two weighted deployments of
  the simulator, 0.9/0.1, and a `local` fallback variant), pair log, metrics, embedded Redis
  and access log on: the real configuration;
* litellm: the LiteLLM proxy with the same two deployments (loadtest/litellm-proxy.yaml), when
  `.venv-litellm` exists (`make bench-litellm-env`).

On a machine with two cores the server under test runs alone on core 1 (`taskset -c 1`); the
load generator and the simulator share core 0. Per point: req/s, p50/p90/p99, overhead over
direct, server CPU ms per request, peak RSS, and each server's time to ready. Then the local
model path (HTTP and in process), 1 vs 2 gateway workers, and a soak; the gateway's time to
ready on a first and on a warm start, and whether importing it loads scikit-learn, torch or
litellm. Results go to reports/bench.json, a markdown summary to stdout, and with `--doc` the
same summary with its method to that file (docs/benchmarks.md), and with `--scaling` the
per-core figures (R) and the pods a few loads need into that page's measured block
(docs/scaling.md). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import urllib.request
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from gateway.request.triage import DEFAULT_TAXONOMY, system_prompt, user_prompt
from loadtest import procs, wrk
from loadtest.bench_load import ServerMeter, closed_loop, measure_point
from loadtest.bench_report import (
    add_overheads,
    document,
    evaluate_targets,
    markdown,
    ratios,
    scaling_block,
)
from loadtest.procs import (
    LOOPBACK,
    Server,
    StartError,
    can_pin,
    free_port,
    memory_kb,
    start_server,
    start_simulator,
)
from loadtest.reviews import Review, ReviewGenerator
from loadtest.run_loadtest import API_KEY, gateway_env, point_routes
from tools.bench.docblock import markers, write_block

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SIM_KEY = "sk-simulator"
LITELLM_KEY = "sk-bench-master"
SOAK_FULL = 100_000
GATEWAY_ROUTES = ROOT / "examples" / "ab-simulator.yaml"
HEAVY_MODULES = ("sklearn", "torch", "litellm")
T = TypeVar("T")


@dataclass
class Plan:
    targets: list[str]
    concurrency: list[int]
    sections: set[str]
    duration_s: float
    max_requests: int
    warmup_s: float
    soak_requests: int
    soak_kind: str
    local_calls: int
    latency_ms: float
    out: Path
    doc: Path | None
    scaling: Path | None
    litellm_venv: Path
    pin: bool
    quick: bool


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Benchmark the gateway (see module docstring).")
    p.add_argument("--quick", action="store_true", help="smoke run: a few hundred requests/point")
    p.add_argument("--soak", action="store_true", help=f"full soak of {SOAK_FULL:,} requests")
    p.add_argument("--soak-requests", type=int, help="soak size (overrides the default)")
    p.add_argument("--targets", default="direct,passthrough,gateway,litellm")
    p.add_argument("--concurrency", default="1,16,64,256")
    p.add_argument("--sections", default="points,local,workers,soak")
    p.add_argument("--duration", type=float, help="seconds per point (default 8, quick 2)")
    p.add_argument("--max-requests", type=int, help="requests per point at most")
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--out", type=Path, default=Path("reports/bench.json"))
    p.add_argument("--doc", type=Path, help="also write the summary there (docs/benchmarks.md)")
    p.add_argument("--scaling", type=Path, help="also rewrite docs/scaling.md's measured block")
    p.add_argument("--litellm-venv", type=Path, default=ROOT / ".venv-litellm")
    p.add_argument("--no-pin", action="store_true", help="do not pin servers to cores")
    return p


def make_plan(argv: Sequence[str] | None = None) -> Plan:
    a = _parser().parse_args(argv)
    soak = a.soak_requests or (SOAK_FULL if a.soak else 1_000 if a.quick else 20_000)
    kind = "full" if soak >= SOAK_FULL else "reduced; --soak runs 100,000"
    return Plan(
        targets=_csv(a.targets),
        concurrency=[int(c) for c in _csv(a.concurrency)],
        sections=set(_csv(a.sections)),
        duration_s=a.duration or (2.0 if a.quick else 8.0),
        max_requests=a.max_requests or (300 if a.quick else 50_000),
        warmup_s=0.3 if a.quick else 1.0,
        soak_requests=soak,
        soak_kind=kind,
        local_calls=300 if a.quick else 2_000,
        latency_ms=a.latency_ms,
        out=a.out,
        doc=a.doc,
        scaling=a.scaling,
        litellm_venv=a.litellm_venv,
        pin=not a.no_pin and can_pin(),
        quick=a.quick,
    )


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(coro)
    return uvloop.run(coro)


def _json_bytes(obj: Any) -> bytes:
    return orjson.dumps(obj)


SYSTEM = system_prompt(DEFAULT_TAXONOMY)


def upstream_body(review: Review, model: str) -> bytes:
    """What the gateway itself sends upstream (and what LiteLLM's clients send it)."""
    user = user_prompt(review.text, review.app, review.rating)
    return _json_bytes(
        {
            "model": model,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": user},
            ],
            "temperature": 0,
            "max_tokens": 300,
            "response_format": {"type": "json_object"},
        }
    )


def gateway_chat_body(review: Review) -> bytes:
    return _json_bytes(
        {
            "model": "triage",
            "messages": [{"role": "user", "content": review.text}],
            "review_id": review.review_id,
        }
    )


def probe(url: str, body: bytes, headers: dict[str, str], classify: bool = False) -> str | None:
    """One request before a target's points: None when it answers a valid triage."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            data = json.loads(resp.read())
        triage = (
            data["triage"] if classify else json.loads(data["choices"][0]["message"]["content"])
        )
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        return f"probe failed: {exc!r}"
    if triage.get("category") not in DEFAULT_TAXONOMY.categories:
        return f"probe: not a triage answer: {triage!r}"
    return None


class Bench:
    def __init__(self, plan: Plan, tmp: Path) -> None:
        self.plan = plan
        self.tmp = tmp
        self.logs = plan.out.parent / "bench-logs"
        self.reviews = ReviewGenerator(seed=7).batch(2_000)
        self.points: list[dict[str, Any]] = []
        self.servers: dict[str, dict[str, Any]] = {}
        self.results: dict[str, Any] = {}
        self.sim: Server | None = None

    # -- servers -----------------------------------------------------------------------------

    def cpus(self, role: str) -> str | None:
        """Core 1 for the server under test, core 0 for the rest, both for "all"."""
        if not self.plan.pin:
            return None
        return {"sut": "1", "aux": "0", "all": "0,1"}[role]

    def start_sim(self) -> Server:
        return start_simulator(
            args=["--latency-ms", str(self.plan.latency_ms)],
            log=self.logs / "simulator.log",
            cpus=self.cpus("aux"),
            timeout_s=30,
        )

    @property
    def sim_base(self) -> str:
        assert self.sim is not None
        return f"{self.sim.url}/v1"

    def start_gateway(
        self,
        name: str,
        routes: Path | None,
        *,
        workers: int = 1,
        cpus: str | None = None,
        data: str | None = None,
    ) -> Server:
        args: list[str] = []
        if routes is not None:
            pointed = point_routes(routes, self.tmp / f"{name}.yaml", self.sim_base)
            args += ["--routes", str(pointed)]
        if workers > 1:
            args += ["--workers", str(workers)]
        return procs.start_gateway(
            args=args,
            log=self.logs / f"{name}.log",
            env=gateway_env(self.tmp / f"data-{data or name}"),
            cpus=cpus,
            timeout_s=120,
            name=name,
        )

    def start_passthrough(self) -> Server:
        port = free_port()
        cmd = [sys.executable, "-m", "loadtest.passthrough", "--port", str(port)]
        cmd += ["--upstream", self.sim_base, "--key", SIM_KEY]
        return start_server(
            "passthrough",
            cmd,
            port=port,
            health_path="/healthz",
            log=self.logs / "passthrough.log",
            cpus=self.cpus("sut"),
            timeout_s=60,
        )

    def start_litellm(self) -> Server:
        port = free_port()
        config = point_routes_litellm(HERE / "litellm-proxy.yaml", self.tmp / "litellm.yaml", self)
        env = dict(os.environ)
        env.update(
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            LITELLM_OFFLINE_MODE="true",
            LITELLM_MASTER_KEY=LITELLM_KEY,
            LITELLM_TELEMETRY="False",
        )
        cmd = [str(self.plan.litellm_venv / "bin" / "litellm"), "--config", str(config)]
        cmd += ["--host", LOOPBACK, "--port", str(port), "--num_workers", "1"]
        return start_server(
            "litellm",
            cmd,
            port=port,
            health_path="/health/liveliness",
            log=self.logs / "litellm.log",
            env=env,
            cpus=self.cpus("sut"),
            timeout_s=180,
        )

    # -- points ------------------------------------------------------------------------------

    def run_points(
        self,
        target: str,
        server: Server,
        url: str,
        bodies: list[bytes],
        headers: dict[str, str],
        concurrency: list[int],
    ) -> list[dict[str, Any]]:
        out = []
        for c in concurrency:
            point = run_async(
                measure_point(
                    url,
                    bodies,
                    headers,
                    concurrency=c,
                    max_requests=self.plan.max_requests,
                    duration_s=self.plan.duration_s,
                    warmup_s=self.plan.warmup_s,
                    server_pid=server.pid,
                )
            )
            point["target"] = target
            print(
                f"  {target:<8} c={c:<4} {point['rps']:>8.1f} req/s  p50 {point['p50_ms']} ms  "
                f"p99 {point['p99_ms']} ms  cpu {point['cpu_ms_per_req']} ms/req  "
                f"errors {point['errors']}",
                file=sys.stderr,
                flush=True,
            )
            out.append(point)
        return out

    def _server_info(self, server: Server) -> dict[str, Any]:
        return {"ready_s": round(server.ready_s, 3), "pid_vmhwm_mb": 0.0}

    def bench_target(self, target: str) -> None:
        print(f"{target}:", file=sys.stderr, flush=True)
        started: Server | None = None
        try:
            if target == "direct":
                assert self.sim is not None
                server = self.sim
                url = f"{self.sim_base}/chat/completions"
                bodies = [upstream_body(r, "openai/gpt-4o") for r in self.reviews]
                headers = {"Authorization": f"Bearer {SIM_KEY}"}
            elif target == "passthrough":
                server = started = self.start_passthrough()
                url = f"{server.url}/v1/chat/completions"
                bodies = [upstream_body(r, "openai/gpt-4o") for r in self.reviews]
                headers = {}
            elif target == "gateway":
                server = started = self.start_gateway("gateway", GATEWAY_ROUTES,
                                                      cpus=self.cpus("sut"))  # fmt: skip
                url = f"{server.url}/v1/chat/completions"
                bodies = [gateway_chat_body(r) for r in self.reviews]
                headers = {"Authorization": f"Bearer {API_KEY}"}
            elif target == "litellm":
                if not (self.plan.litellm_venv / "bin" / "litellm").exists():
                    self.servers[target] = {
                        "skipped": f"no {self.plan.litellm_venv.name} (run make bench-litellm-env)"
                    }
                    return
                server = started = self.start_litellm()
                url = f"{server.url}/v1/chat/completions"
                bodies = [upstream_body(r, "triage") for r in self.reviews]
                headers = {"Authorization": f"Bearer {LITELLM_KEY}"}
            else:
                raise SystemExit(f"unknown target {target!r}")
            info = self._server_info(server)
            self.servers[target] = info
            problem = probe(url, bodies[0], headers)
            if problem:
                info["skipped"] = problem
                return
            self.points += self.run_points(
                target, server, url, bodies, headers, self.plan.concurrency
            )
            info["pid_vmhwm_mb"] = round(memory_kb(server.pid, "VmHWM") / 1024, 1)
            if target == "gateway":
                info["heavy_mapped"] = heavy_mapped(server.pid)
                server.stop()
                info["ready_warm_s"], info["ready_warm_again_s"] = self.warm_ready()
        except StartError as exc:
            self.servers[target] = {"skipped": f"did not start: {str(exc)[:500]}"}
        finally:
            if started is not None:
                started.stop()

    def warm_ready(self) -> tuple[float | None, float | None]:
        """Time to ready of two more starts on the first one's data dir (model built): the
        warm start, after the load points, with the OS page cache as they left it (a machine
        may have dropped the server's files from it since they were read), then one more at
        once, with the files just read."""
        times: list[float | None] = []
        for name in ("gateway-warm", "gateway-warm-again"):
            try:
                gw = self.start_gateway(name, GATEWAY_ROUTES, cpus=self.cpus("sut"),
                                        data="gateway")  # fmt: skip
            except StartError:
                times.append(None)
                continue
            gw.stop()
            times.append(round(gw.ready_s, 3))
        return times[0], times[1]

    def section_imports(self) -> None:
        """What importing the server loads (a fresh interpreter): time, heavy modules."""
        import subprocess

        code = (
            "import sys, time, json; t = time.perf_counter(); import gateway.api.asgi; "
            "from gateway.api.app import create_app; "
            "d = time.perf_counter() - t; "
            f"print(json.dumps([d, [m for m in {HEAVY_MODULES!r} if m in sys.modules]]))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
        if out.returncode != 0:
            self.results["imports"] = {"error": out.stderr.decode()[-500:], "heavy": ["?"]}
            return
        seconds, heavy = json.loads(out.stdout)
        self.results["imports"] = {"import_s": round(seconds, 3), "heavy": heavy}

    # -- sections ----------------------------------------------------------------------------

    def section_local(self) -> None:
        print("local model:", file=sys.stderr, flush=True)
        data_dir = self.tmp / "data-local"
        local: dict[str, Any] = {"in_process": self._local_in_process(data_dir)}
        try:
            gw = self.start_gateway("local", None, cpus=self.cpus("sut"))
        except StartError as exc:
            local["skipped"] = str(exc)[:500]
            self.results["local"] = local
            return
        try:
            local["ready_s"] = round(gw.ready_s, 3)
            url = f"{gw.url}/v1/classify"
            bodies = [_json_bytes(r.classify_body()) for r in self.reviews]
            headers = {"Authorization": f"Bearer {API_KEY}"}
            problem = probe(url, bodies[0], headers, classify=True)
            if problem:
                local["skipped"] = problem
            else:
                local["http"] = self.run_points("local", gw, url, bodies, headers, [1, 16])
        finally:
            gw.stop()
        self.results["local"] = local

    def _local_in_process(self, data_dir: Path) -> dict[str, Any]:
        # The model's own cost, without HTTP, measured by tools.bench.local_predict in its own
        # process (load tests reach the gateway over HTTP only). The gateway started next
        # reuses the model trained there (same data dir).
        import subprocess

        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "tools.bench.local_predict",
                "--data-dir",
                str(data_dir),
                "--calls",
                str(self.plan.local_calls),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        result: dict[str, Any] = orjson.loads(out.stdout)
        return result

    def section_workers(self) -> None:
        print("workers:", file=sys.stderr, flush=True)
        levels = [16] if self.plan.quick else [64, 256]
        bodies = [gateway_chat_body(r) for r in self.reviews]
        headers = {"Authorization": f"Bearer {API_KEY}"}
        rows: list[dict[str, Any]] = []
        for workers in (1, 2):
            name = f"gateway-w{workers}"
            try:
                gw = self.start_gateway(
                    name, GATEWAY_ROUTES, workers=workers, cpus=self.cpus("all")
                )
            except StartError as exc:
                rows.append({"workers": workers, "skipped": str(exc)[:500]})
                continue
            try:
                url = f"{gw.url}/v1/chat/completions"
                for p in self.run_points(name, gw, url, bodies, headers, levels):
                    rows.append({"workers": workers, "ready_s": round(gw.ready_s, 3), **p})
            finally:
                gw.stop()
        self.results["workers"] = [r for r in rows if "skipped" not in r] or rows

    def section_soak(self) -> None:
        n = self.plan.soak_requests
        print(f"soak: {n:,} requests ({self.plan.soak_kind})", file=sys.stderr, flush=True)
        gw = self.start_gateway("soak", GATEWAY_ROUTES, cpus=self.cpus("sut"))
        try:
            self.results["soak"] = run_async(self._soak(gw, n))
        finally:
            gw.stop()

    async def _soak(self, gw: Server, n: int, concurrency: int = 64) -> dict[str, Any]:
        meter = ServerMeter(gw.pid)
        meter.refresh()
        rss_start = meter.rss_kb()
        url = f"{gw.url}/v1/chat/completions"
        bodies = [gateway_chat_body(r) for r in self.reviews]
        headers = {"Authorization": f"Bearer {API_KEY}"}
        chunks, ok, errors, elapsed = 10, 0, 0, 0.0
        lat: list[float] = []
        rss_after: list[int] = []
        time_limit = max(60.0, n / 250)  # a gateway far below 250 req/s ends the soak early
        for _ in range(chunks):
            load = await closed_loop(
                url,
                bodies,
                headers,
                concurrency=concurrency,
                max_requests=n // chunks,
                duration_s=time_limit / chunks,
            )
            ok, errors, elapsed = ok + load.ok, errors + load.errors, elapsed + load.elapsed_s
            lat += load.latencies_s
            rss_after.append(meter.rss_kb())
        lat.sort()
        return {
            "planned": n,
            "kind": self.plan.soak_kind,
            "concurrency": concurrency,
            "requests": ok,
            "errors": errors,
            "rps": round(ok / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(lat[len(lat) // 2] * 1000, 3) if lat else None,
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 3)
            if lat
            else None,
            "rss_start_mb": round(rss_start / 1024, 1),
            "rss_warm_mb": round(rss_after[0] / 1024, 1),
            "rss_end_mb": round(rss_after[-1] / 1024, 1),
            "rss_after_each_tenth_mb": [round(r / 1024, 1) for r in rss_after],
            "vmhwm_mb": round(memory_kb(gw.pid, "VmHWM") / 1024, 1),
        }

    # -- run ---------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        plan = self.plan
        started = time.time()
        self.section_imports()
        self.sim = self.start_sim()
        try:
            if "points" in plan.sections:
                for target in plan.targets:
                    self.bench_target(target)
                add_overheads(self.points)
            if "local" in plan.sections:
                self.section_local()
            if "workers" in plan.sections:
                self.section_workers()
            if "soak" in plan.sections:
                self.section_soak()
        finally:
            self.sim.stop()
        self.results.update(
            meta=self._meta(started),
            servers=self.servers,
            points=self.points,
            ratios=ratios(self.points, self.servers),
        )
        self.results["targets"] = evaluate_targets(self.results)
        return self.results

    def _meta(self, started: float) -> dict[str, Any]:
        plan = self.plan
        pinned = "server under test on core 1, load generator + simulator on core 0"
        return {
            "mode": "quick" if plan.quick else "full",
            "note": pinned if plan.pin else "not pinned",
            "pinned": plan.pin,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "wall_s": round(time.time() - started, 1),
            "cpus": os.cpu_count(),
            "machine": machine(),
            "python": platform.python_version(),
            "upstream_latency_ms": plan.latency_ms,
            "duration_s_per_point": plan.duration_s,
            "max_requests_per_point": plan.max_requests,
            "generator": "wrk" if wrk.available() else "aiohttp",
            "concurrency": plan.concurrency,
            "soak_requests": plan.soak_requests,
            "loadavg_at_end": os.getloadavg(),
        }


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (the platform string where it names none)."""
    fallback = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return fallback
    models = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return next(models, fallback)


def machine() -> str:
    """The CPU model and memory, from /proc (the CPU alone where memory cannot be read)."""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return cpu_model()
    return f"{cpu_model()}, {kb / 1024**2:.0f} GiB memory"


def heavy_mapped(pid: int) -> list[str]:
    """Heavy libraries a running server has loaded (their shared objects in its maps)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return []
    return [m for m in HEAVY_MODULES if f"/{m}/" in maps]


def point_routes_litellm(source: Path, target: Path, bench: Bench) -> Path:
    """The LiteLLM config with each deployment's api_base set to the running simulator."""
    import yaml

    data: dict[str, Any] = yaml.safe_load(source.read_text())
    for entry in data["model_list"]:
        entry["litellm_params"]["api_base"] = bench.sim_base
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def main(argv: Sequence[str] | None = None) -> int:
    plan = make_plan(argv)
    if plan.pin:
        os.sched_setaffinity(0, {0})  # the load generator stays on core 0
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp:
        results = Bench(plan, Path(tmp)).run()
    plan.out.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown(results))
    args = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m loadtest.bench", *args])
    if plan.doc is not None:
        plan.doc.write_text(document(results, command))
        print(f"written: {plan.doc}", file=sys.stderr)
    if plan.scaling is not None:
        begin, end = markers("bench-scaling")
        write_block(plan.scaling, scaling_block(results, command, begin, end), begin, end)
        print(f"written: {plan.scaling}", file=sys.stderr)
    print(f"results: {plan.out}", file=sys.stderr)
    errors = sum(p["errors"] for p in results["points"])
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
