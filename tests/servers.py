"""Real servers for tests: the gateway, the upstream simulator and Prometheus as child
processes on 127.0.0.1 (the first two started by loadtest.procs, the one launcher), and a real
redis-server. Each waits until it answers before returning. Plus what several test files send
them or run beside them: CLI runs, admin and correction calls, pair records, chat examples."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from gateway.pairs.record import PairRecord
from gateway.request.triage import system_prompt, user_prompt
from loadtest import procs
from loadtest.procs import free_port, wait_http

__all__ = [
    "CHROMIUM_ARGS",
    "TRAINING_REVIEWS",
    "Gateway",
    "Simulator",
    "ab_routes",
    "chat_example",
    "clean_env",
    "correction",
    "free_port",
    "pair_record",
    "put_experiment",
    "run_gateway",
    "run_module",
    "run_prometheus",
    "run_simulator",
    "stop",
    "wait_http",
    "write_routes",
]

# Headless Chromium (Debian's `chromium`, driven by Playwright) for the browser tests.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

PROVIDER_KEYS = {"openrouter": "sk-or-test-secret-0123456789"}


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    procs.stop_process(proc, timeout_s)


class Simulator:
    def __init__(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.url}/v1"

    def control(self, **patch: Any) -> None:
        httpx.post(f"{self.url}/_control", json=patch, timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.url}/_stats", timeout=5).json()
        return data


@contextlib.contextmanager
def run_simulator(*args: str, log: Path | None = None) -> Iterator[Simulator]:
    server = procs.start_simulator(args=args, log=log, timeout_s=60)
    try:
        yield Simulator(server.port, server.proc)
    finally:
        server.stop(15.0)


class Gateway:
    def __init__(
        self, port: int, proc: subprocess.Popen[bytes], log: Path, api_key: str | None
    ) -> None:
        self.port = port
        self.proc = proc
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        self.api_key = api_key

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)

    def async_client(self, timeout: float = 30.0) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=64)
        return httpx.AsyncClient(
            base_url=self.url, headers=self.headers, timeout=timeout, limits=limits
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def write_routes(path: Path, routes: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(routes, sort_keys=False))
    return path


@contextlib.contextmanager
def run_gateway(
    tmp: Path,
    *,
    routes: dict[str, Any] | Path | None = None,
    env: dict[str, str] | None = None,
    api_key: str | None = "test-key",
    redis_url: str | None = None,
    extra_args: tuple[str, ...] = (),
    data_dir: Path | None = None,
) -> Iterator[Gateway]:
    """Run `python -m cli serve` on a free port until the block ends."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    extra: dict[str, str] = {}
    if redis_url:
        extra["GATEWAY_REDIS_URL"] = redis_url
    if isinstance(routes, dict):
        routes = write_routes(tmp / f"routes-{port}.yaml", routes)
    if routes is not None:
        extra["GATEWAY_ROUTES"] = str(routes)
    extra.update(env or {})
    full_env = procs.gateway_env(
        data_dir or tmp / "data", api_key=api_key, provider_keys=PROVIDER_KEYS, **extra
    )
    log = tmp / f"gateway-{port}.log"
    server = procs.start_gateway(env=full_env, args=extra_args, port=port, log=log)
    try:
        yield Gateway(port, server.proc, log, api_key)
    except Exception:
        sys.stderr.write(server.tail(4000))
        raise
    finally:
        server.stop(15.0)


def ab_routes(
    base_url: str, *, control: float = 0.9, candidate: float = 0.1, **extra: Any
) -> dict[str, Any]:
    """The two-variant experiment used across tests, pointed at a simulator."""
    exp: dict[str, Any] = {
        "name": "triage",
        "salt": "test-salt",
        "variants": [
            {
                "name": "control",
                "model": "openrouter/openai/gpt-4o",
                "api_base": base_url,
                "weight": control,
                "timeout_s": 5,
            },
            {
                "name": "candidate",
                "model": "openrouter/acme/llama-3-8b-ft",
                "api_base": base_url,
                "weight": candidate,
                "timeout_s": 5,
                "price": {"input_per_1m": 0.2, "output_per_1m": 0.2},
            },
        ],
        "fallback": ["control", "candidate"],
    }
    exp.update(extra)
    return {"experiments": [exp]}


async def classify_many(
    gw: Gateway,
    n: int,
    review_prefix: str,
    done: list[int],
    *,
    concurrency: int,
    limit_s: float,
    client_timeout: float = 30.0,
) -> list[str | None]:
    """POST n classify requests (review ids `review_prefix` + index), `concurrency` at a time,
    counting each finished one in `done[0]`, all within `limit_s`: the request_id of each 200,
    None for anything else."""
    sem = asyncio.Semaphore(concurrency)
    async with gw.async_client(timeout=client_timeout) as client:

        async def one(i: int) -> str | None:
            body = {
                "text": f"The app crashes when I open screen {i}",
                "review_id": f"{review_prefix}{i}",
            }
            async with sem:
                try:
                    r = await client.post("/v1/classify", json=body)
                except httpx.HTTPError:
                    return None
                finally:
                    done[0] += 1
            return str(r.json()["request_id"]) if r.status_code == 200 else None

        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), limit_s)


@contextlib.contextmanager
def run_prometheus(tmp: Path, binary: str, config: dict[str, Any]) -> Iterator[str]:
    """Prometheus (`binary`) with this configuration on a free port until the block ends: its
    URL once /-/ready answers. Its log goes to stderr when the block fails, to tell why."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = tmp / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/-/ready", proc, timeout_s=30)
        yield url
    except Exception:
        sys.stderr.write(log.read_text(errors="replace")[-4000:])
        raise
    finally:
        stop(proc)


def clean_env(*drop: str, **extra: str) -> dict[str, str]:
    """This environment without the developer's GATEWAY_* settings (nor the names in `drop`),
    then `extra`: a command under test sees only what its test gives it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k not in drop}
    return env | extra


def run_module(
    module: str,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`python -m MODULE ARGS` with this interpreter to its end, its output kept as text (the
    exit status is the test's to check)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def healthz_waits(url: str, pause_s: float = 0.002) -> Iterator[list[float]]:
    """Poll `url`/healthz from a thread while the block runs; yields the list of each
    answer's wait in seconds (filled as it goes, complete when the block ends)."""
    import threading

    waits: list[float] = []
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not done.is_set():
                t0 = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                waits.append(time.perf_counter() - t0)
                time.sleep(pause_s)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        yield waits
    finally:
        done.set()
        poller.join(timeout=30)


def put_experiment(url: str, headers: dict[str, str], part: str, **body: Any) -> httpx.Response:
    """PUT `body` as the triage experiment's `part` (variants or weights) to the admin API."""
    return httpx.put(
        f"{url}/admin/experiments/triage/{part}", headers=headers, json=body, timeout=5
    )


def correction(category: str, urgency: str = "Low", **ref: str) -> dict[str, str]:
    """The body of POST /v1/corrections for the pair `ref` names (request_id or review_id)."""
    return {**ref, "category": category, "urgency": urgency, "corrected_by": "t"}


def pair_record(i: int, text: str | None = None, review_id: str | None = None) -> PairRecord:
    """Served pair number i, in every field: a local Bug Report of experiment `triage`."""
    return PairRecord.from_dict(
        {
            "request_id": f"req-{i}",
            "served_request_id": None,
            "shadow": False,
            "review_id": review_id or f"rev-{i}",
            "text": text or f"The app crashes on screen {i}",
            "app": "demo",
            "rating": 2,
            "experiment": "triage",
            "variant": "control",
            "model": "local",
            "triage": {
                "category": "Bug Report",
                "urgency": "High",
                "topic": "Crash",
                "summary": "x",
            },
            "raw_output": None,
            "attempts": 1,
            "fallback_from": None,
            "latency_ms": 1.0,
            "cost_usd": 0.0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "confidence": 0.9,
            "ts": time.time(),
        }
    )


# (text, category, urgency, topic): one review of each category, for fine-tuning data
TRAINING_REVIEWS = [
    ("The app crashes every time I open the camera", "Bug Report", "High", "camera crash"),
    ("Please add a dark mode option", "Feature Request", "Low", "dark mode"),
    ("Love the new update, works great", "Praise", "Low", "new update"),
    ("How do I export my data to a file", "Question", "Medium", "data export"),
    ("Login fails after the update and I lost my data", "Bug Report", "Critical", "login"),
    ("Too many ads, very annoying", "Complaint", "Medium", "ads"),
]


def chat_example(text: str, category: str, urgency: str, topic: str) -> dict[str, Any]:
    """One fine-tuning example in the chat format: the gateway's own prompts, then the answer."""
    answer = {"category": category, "urgency": urgency, "topic": topic, "summary": text[:60]}
    return {
        "messages": [
            {"role": "system", "content": system_prompt()},
            {"role": "user", "content": user_prompt(text, "Acme", 3)},
            {"role": "assistant", "content": orjson.dumps(answer).decode()},
        ]
    }
