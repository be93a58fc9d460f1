"""The one launcher for servers as child processes, used by the load tests, the benchmarks and
the test suite: pick a free port, start the gateway (`python -m cli serve`) or the upstream
simulator (`python -m cli simulate`), optionally pinned to CPUs, wait for the first 200 on a
health URL, read CPU and memory from /proc, and stop them within a bounded time.

The gateway is reached over HTTP only: nothing here imports it. Everything listens on
127.0.0.1; every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

LOOPBACK = "127.0.0.1"
GATEWAY_HEALTH = "/readyz"
SIMULATOR_HEALTH = "/healthz"
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


# Read once, at import: the benchmark later pins its own process to core 0.
_CPUS = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else frozenset()


def two_cores() -> bool:
    """True when cores 0 and 1 are both usable: then servers under test get core 1 alone."""
    return {0, 1} <= _CPUS


def can_pin() -> bool:
    """True when servers can be pinned: two usable cores and `taskset`."""
    return two_cores() and shutil.which("taskset") is not None


def pin_command(cpus: str | None) -> list[str]:
    """The `taskset -c CPUS` prefix, or nothing where pinning is off or unavailable."""
    if not cpus or not can_pin():
        return []
    return ["taskset", "-c", cpus]


def http_status(url: str, timeout_s: float = 1.0, headers: dict[str, str] | None = None) -> int:
    """Status of a GET (0 when nothing answered)."""
    assert url.startswith(("http://127.", "http://localhost")), url  # loopback only
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, urllib.error.URLError):
        return 0


def wait_http(
    url: str,
    proc: subprocess.Popen[bytes] | None = None,
    timeout_s: float = 60.0,
    headers: dict[str, str] | None = None,
) -> None:
    """Wait for a 200 from a GET on `url`: StartError when `proc` exits first, TimeoutError when
    nothing answers 200 within `timeout_s`."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if http_status(url, 1.0, headers) == 200:
            return
        if proc is not None and proc.poll() is not None:
            raise StartError(f"process exited with {proc.returncode} before {url} answered")
        time.sleep(0.01)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s:g}s")


@dataclass
class Server:
    """A started server; `ready_s` is the time from process start to its first 200."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path | None
    ready_s: float

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def tail(self, chars: int = 3000) -> str:
        if self.log is not None:
            with contextlib.suppress(OSError):
                return self.log.read_text(errors="replace")[-chars:]
        return ""

    def stop(self, timeout_s: float = 20.0) -> None:
        stop_process(self.proc, timeout_s)


class StartError(RuntimeError):
    pass


def start_server(
    name: str,
    cmd: list[str],
    *,
    port: int,
    health_path: str,
    log: Path | None,
    env: dict[str, str] | None = None,
    cpus: str | None = None,
    timeout_s: float = 60.0,
    health_headers: dict[str, str] | None = None,
) -> Server:
    """Start `cmd` (in its own process group; output to `log`, or dropped when None) and wait
    for a 200 on its health URL."""
    url = f"http://{LOOPBACK}:{port}"
    with contextlib.ExitStack() as stack:
        out: int | BinaryIO = subprocess.DEVNULL
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(open(log, "wb"))
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*pin_command(cpus), *cmd],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    server = Server(name, proc, url, log, 0.0)
    try:
        wait_http(url + health_path, proc, timeout_s, health_headers)
    except StartError:
        tail = server.tail()
        raise StartError(f"{name} exited with {proc.returncode} before ready:\n{tail}") from None
    except TimeoutError:
        stop_process(proc)
        raise StartError(f"{name} not ready within {timeout_s:g}s:\n{server.tail()}") from None
    server.ready_s = time.perf_counter() - started
    return server


def cli_command(*args: str) -> list[str]:
    """`python -m cli ARGS` with this interpreter."""
    return [sys.executable, "-m", "cli", *args]


def gateway_env(
    data_dir: Path,
    *,
    api_key: str | None,
    provider_keys: dict[str, str],
    **extra: str,
) -> dict[str, str]:
    """The environment of a gateway under test: these keys, a fresh data dir, info logs, and
    nothing inherited from a developer's GATEWAY_* settings; `extra` (GATEWAY_* names) last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATA_DIR=str(data_dir),
        GATEWAY_LOG_LEVEL="info",
        GATEWAY_PROVIDER_KEYS=json.dumps(provider_keys),
    )
    if api_key:
        env["GATEWAY_API_KEYS"] = api_key
    env.update(extra)
    return env


def start_cli(
    command: str,
    *,
    health_path: str,
    name: str,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    port: int = 0,
    log: Path | None = None,
    cpus: str | None = None,
    timeout_s: float = 60.0,
) -> Server:
    """`python -m cli COMMAND --port PORT ARGS` (a free port when 0), ready when `health_path`
    answers 200."""
    port = port or free_port()
    return start_server(
        name,
        cli_command(command, "--port", str(port), *args),
        port=port,
        health_path=health_path,
        log=log,
        env=env,
        cpus=cpus,
        timeout_s=timeout_s,
    )


start_gateway = functools.partial(start_cli, "serve", health_path=GATEWAY_HEALTH, name="gateway")
"""The gateway (`python -m cli serve`), ready when /readyz is 200; `env` is its environment."""

start_simulator = functools.partial(
    start_cli, "simulate", health_path=SIMULATOR_HEALTH, name="simulator", timeout_s=30.0
)
"""The upstream simulator (`python -m cli simulate`), ready when /healthz is 200."""


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL to the process group it leads (its own children, e.g. Redis)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):  # not a group leader
                proc.kill()
            proc.wait(timeout=5)
    # A child that outlived its parent (the group is ours: start_new_session above).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from 3 (state) on


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, ()))
    return tree


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time of these processes so far."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14, 15)
    return ticks / _TICKS


def memory_kb(pid: int, field: str = "VmRSS") -> int:
    """A `/proc/<pid>/status` field in kB (VmRSS now, VmHWM the peak); 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
