"""Real servers for tests: the gateway and the upstream simulator as child processes on
127.0.0.1 (started by loadtest.procs, the one launcher), and a real redis-server. Each waits
until it answers before returning."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from loadtest import procs
from loadtest.procs import free_port, wait_http

__all__ = [
    "CHROMIUM_ARGS",
    "Gateway",
    "Simulator",
    "ab_routes",
    "free_port",
    "run_gateway",
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
