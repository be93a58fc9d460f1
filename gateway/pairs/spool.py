"""The local spool of the pair log: an append-only JSON-lines file per process, where pairs
wait while Redis is unreachable (or the in-process queue is full), replayed in order later.

`data_dir/spool/pairs-<pid>.jsonl`, one orjson record per line. Each `append` is one write
plus fsync, so a crash loses nothing already appended and leaves at most a torn last line,
which readers skip (and `open` cuts off before appending again). After a full replay the
file is replaced by an empty one (rename, atomic). Files of processes that are gone (several
workers share a data_dir; a worker crashed) are adopted by the next process that opens its
spool: claimed by an atomic rename, copied into its own file, fsynced, then removed.

The methods do blocking file I/O: call them through `asyncio.to_thread`, from one task at a
time (the pair log's writer owns its spool).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.pairs.record import PairRecord

log = logging.getLogger("triage_gateway")

_NAME = re.compile(r"^pairs-(\d+)(?:-[0-9a-f]+)?\.jsonl$")
_CHUNK = 1 << 20


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this host)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _complete_size(path: Path) -> int:
    """Bytes up to and including the last newline (what excludes a torn last line)."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - _CHUNK)
            f.seek(start)
            cut = f.read(end - start).rfind(b"\n")
            if cut != -1:
                return start + cut + 1
            end = start
    return 0


@dataclass(slots=True)
class SpoolBatch:
    records: list[PairRecord]
    end: int
    """Byte offset just after the last line read."""
    lines: int
    """Lines consumed (records plus unreadable lines skipped)."""


@dataclass
class Spool:
    directory: Path
    pid: int = field(default_factory=os.getpid)
    _cursor: int = field(default=0, init=False)
    _count: int = field(default=0, init=False)

    @property
    def path(self) -> Path:
        return self.directory / f"pairs-{self.pid}.jsonl"

    def count(self) -> int:
        """Records waiting in the spool (not yet replayed)."""
        return self._count

    def open(self) -> int:
        """Create the directory, cut a torn last line, adopt the files of dead processes;
        returns the number of records waiting."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            with open(self.path, "r+b") as f:
                f.truncate(_complete_size(self.path))
        for other in self._dead_files():
            self._adopt(other)
        self._cursor = 0
        self._count = 0
        if self.path.exists():
            with open(self.path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    self._count += chunk.count(b"\n")
        return self._count

    def _dead_files(self) -> list[Path]:
        found = []
        for path in self.directory.glob("pairs-*.jsonl"):
            match = _NAME.match(path.name)
            if match and int(match[1]) != self.pid and not pid_alive(int(match[1])):
                with contextlib.suppress(FileNotFoundError):
                    found.append((path.stat().st_mtime, path))
        return [path for _, path in sorted(found)]

    def _adopt(self, path: Path) -> None:
        claim = self.directory / f"pairs-{self.pid}-{time.time_ns():x}.jsonl"
        try:
            os.rename(path, claim)  # atomic: one process wins the claim
        except FileNotFoundError:
            return
        size = _complete_size(claim)
        with open(claim, "rb") as src:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                left = size
                while left > 0:
                    chunk = src.read(min(_CHUNK, left))
                    self._write_all(fd, chunk)
                    left -= len(chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(self.directory)
        claim.unlink()
        log.info(
            "adopted the pair spool of a stopped process", extra={"fields": {"file": path.name}}
        )

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def append(self, records: Sequence[PairRecord]) -> None:
        """Append records (oldest first) with one write and one fsync. On failure (disk
        full) the file is cut back to where it was, so no torn line is left in the middle."""
        if not records:
            return
        data = b"".join(r.to_json() + b"\n" for r in records)
        created = not self.path.exists()
        if created:
            self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            try:
                self._write_all(fd, data)
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.directory)
        self._count += len(records)

    def read_batch(self, max_records: int, start: int | None = None) -> SpoolBatch:
        """The next records after the replay cursor (or `start`), in order; complete lines
        only."""
        records: list[PairRecord] = []
        end = self._cursor if start is None else start
        lines = 0
        if self._count == 0:
            return SpoolBatch(records, end, lines)
        with open(self.path, "rb") as f:
            f.seek(end)
            while len(records) < max_records:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break  # end of file, or a torn last line
                end += len(line)
                lines += 1
                try:
                    records.append(PairRecord.from_json(line))
                except ValueError:  # orjson.JSONDecodeError, or not a JSON object
                    log.warning("skipped an unreadable line in the pair spool")
        if lines == 0 and start is None:
            self._count = 0  # nothing complete is left: never spin on a stale count
        return SpoolBatch(records, end, lines)

    def commit(self, batch: SpoolBatch) -> None:
        """Mark a batch replayed; once everything is, replace the file by an empty one."""
        self._cursor = batch.end
        self._count = max(0, self._count - batch.lines)
        if self._count == 0 and self._cursor >= self.path.stat().st_size:
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_bytes(b"")
            os.replace(tmp, self.path)
            _fsync_dir(self.directory)
            self._cursor = 0

    def replay(self) -> Iterator[PairRecord]:
        """Every waiting record, oldest first (without consuming them)."""
        cursor = self._cursor
        while True:
            batch = self.read_batch(1000, start=cursor)
            if not batch.lines:
                return
            yield from batch.records
            cursor = batch.end
