"""Servers under load as child processes: start (optionally pinned to CPUs), time to the first
200 on a health URL, CPU and memory from /proc, and a stop that always ends within its timeout.

Everything listens on 127.0.0.1; every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
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


def pin_command(cpus: str | None) -> list[str]:
    """The `taskset -c CPUS` prefix, or nothing where pinning is off or unavailable."""
    if not cpus or not two_cores() or shutil.which("taskset") is None:
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


@dataclass
class Server:
    """A started server; `ready_s` is the time from process start to its first 200."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    ready_s: float

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""


class StartError(RuntimeError):
    pass


def start_server(
    name: str,
    cmd: list[str],
    *,
    port: int,
    health_path: str,
    log: Path,
    env: dict[str, str] | None = None,
    cpus: str | None = None,
    timeout_s: float = 60.0,
    health_headers: dict[str, str] | None = None,
) -> Server:
    """Start `cmd` (in its own process group) and wait for a 200 on its health URL."""
    log.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://{LOOPBACK}:{port}"
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*pin_command(cpus), *cmd],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    deadline = started + timeout_s
    while time.perf_counter() < deadline:
        if http_status(url + health_path, 1.0, health_headers) == 200:
            return Server(name, proc, url, log, time.perf_counter() - started)
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise StartError(f"{name} exited with {proc.returncode} before ready:\n{tail}")
        time.sleep(0.01)
    stop_process(proc)
    raise StartError(f"{name} not ready within {timeout_s:g}s:\n{log.read_text()[-3000:]}")


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL to the process group it leads (its own children, e.g. Redis)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
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
