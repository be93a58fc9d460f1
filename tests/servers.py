"""Real servers for tests: the gateway and the upstream simulator as child processes on
127.0.0.1, and a real redis-server. Each waits until it answers before returning."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[bytes] | None, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s}s")


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    port = free_port()
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "simulate", "--port", str(port), *args],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        yield Simulator(port, proc)
    finally:
        stop(proc)
        if log:
            out.close()  # type: ignore[union-attr]


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
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    full_env.update(
        GATEWAY_DATA_DIR=str(data_dir or tmp / "data"),
        GATEWAY_LOG_LEVEL="info",
        GATEWAY_PROVIDER_KEYS='{"openrouter": "sk-or-test-secret-0123456789"}',
    )
    if api_key:
        full_env["GATEWAY_API_KEYS"] = api_key
    if redis_url:
        full_env["GATEWAY_REDIS_URL"] = redis_url
    if isinstance(routes, dict):
        routes = write_routes(tmp / f"routes-{port}.yaml", routes)
    if routes is not None:
        full_env["GATEWAY_ROUTES"] = str(routes)
    full_env.update(env or {})
    log = tmp / f"gateway-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port), *extra_args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    gw = Gateway(port, proc, log, api_key)
    try:
        wait_http(f"{gw.url}/readyz", proc)
        yield gw
    except Exception:
        sys.stderr.write(log.read_text(errors="replace")[-4000:])
        raise
    finally:
        stop(proc)


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
