"""Structured JSON logs: one object per line, with the `fields` passed as `extra`."""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import time
from typing import TextIO

import orjson


def json_line(
    ts: float, level: str, logger: str, msg: str, fields: object, exc: str | None = None
) -> str:
    """One JSON log line: ts, level, logger, msg, then `fields` (when a dict) merged in. The
    fields are whatever the caller logged: `default=str` writes any non-JSON value."""
    out: dict[str, object] = {"ts": round(ts, 3), "level": level, "logger": logger, "msg": msg}
    if isinstance(fields, dict):
        out.update(fields)
    if exc:
        out["exc"] = exc
    return orjson.dumps(out, default=str).decode()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        exc = self.formatException(record.exc_info) if record.exc_info else None
        return json_line(
            record.created,
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            getattr(record, "fields", None),
            exc,
        )


ACCESS_LOGGER = "triage_gateway.access"


class BatchedStreamHandler(logging.StreamHandler[TextIO]):
    """A stream handler that, on an event loop, writes the INFO and DEBUG lines of the
    `batched` loggers (the access log: one line per request) in batches: one write per
    `interval_s` (or per `max_lines`) instead of a write and a flush per line, which cost a few
    percent of a request's CPU under load. Every other line, WARNING and above, and every line
    logged where no event loop runs (the CLI) is written at once, after whatever is waiting.
    The app's shutdown calls `flush_logs` (uvicorn ends a SIGTERM by re-raising it, so exit
    handlers do not run)."""

    def __init__(
        self,
        stream: TextIO,
        *,
        batched: tuple[str, ...] = (ACCESS_LOGGER,),
        interval_s: float = 0.2,
        max_lines: int = 256,
    ) -> None:
        super().__init__(stream)
        self.batched = frozenset(batched)
        self.interval_s = interval_s
        self.max_lines = max_lines
        self._lines: list[str] = []
        atexit.register(self.flush)

    def emit(self, record: logging.LogRecord) -> None:  # called under self.lock
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._queue(
            line, at_once=record.name not in self.batched or record.levelno >= logging.WARNING
        )

    def add_line(self, line: str) -> None:
        """Queue a line formatted already, as `emit` queues a batched INFO line (`log_access`
        writes the access log this way, without a `LogRecord` per request)."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._queue(line, at_once=False)

    def _queue(self, line: str, *, at_once: bool) -> None:
        """Add `line`; write now when `at_once`, the batch is full or no loop runs here, else
        once the interval has passed (called under self.lock)."""
        self._lines.append(line)
        if at_once or len(self._lines) >= self.max_lines:
            self._write()
        elif len(self._lines) == 1:
            try:
                asyncio.get_running_loop().call_later(self.interval_s, self.flush)
            except RuntimeError:  # no event loop in this thread: write now
                self._write()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._write()

    def _write(self) -> None:
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            for chunk in _chunks(lines, PIPE_BUF):
                self.stream.write(chunk)
                self.stream.flush()
        except (OSError, ValueError):  # a closed stream at exit: nothing to write to
            pass


PIPE_BUF = 4096
"""Writes up to this size to a pipe are atomic: `serve --workers N` processes share stderr,
so a batch goes out in writes of whole lines no larger than this (a longer line alone), and
lines of two workers never interleave mid-line."""


def _chunks(lines: list[str], limit: int) -> list[str]:
    out: list[str] = []
    size = 0
    current: list[str] = []
    for line in lines:
        n = len(line.encode()) + 1
        if current and size + n > limit:
            out.append("\n".join(current) + "\n")
            current, size = [], 0
        current.append(line)
        size += n
    if current:
        out.append("\n".join(current) + "\n")
    return out


_access = logging.getLogger(ACCESS_LOGGER)
_root = logging.getLogger()


def log_access(fields: dict[str, object]) -> None:
    """Log one access line (message "request", `fields` merged in). When the gateway's own
    handler is the only place it would go, the JSON line is written straight into it: a
    `LogRecord` per request cost about 3% of a classify call's CPU. Otherwise (other handlers
    or filters, as a test's log capture adds) it goes through `logging` as any line."""
    handler = _sole_access_handler()
    if handler is not None:
        try:
            handler.add_line(json_line(time.time(), "info", ACCESS_LOGGER, "request", fields))
            return
        except (TypeError, orjson.JSONEncodeError):
            pass  # logging's own path reports it (`handleError`)
    _access.info("request", extra={"fields": fields})


def _sole_access_handler() -> BatchedStreamHandler | None:
    """The root's batched JSON handler when an INFO access line would reach it and nothing
    else: no handler or filter on the way, no propagation cut, the JSON formatter."""
    if _access.disabled or _access.filters or not _access.isEnabledFor(logging.INFO):
        return None
    logger: logging.Logger | None = _access
    while logger is not None and logger is not _root:
        if logger.handlers or not logger.propagate:
            return None
        logger = logger.parent
    handlers = _root.handlers
    if len(handlers) != 1 or type(handler := handlers[0]) is not BatchedStreamHandler:
        return None
    if (
        handler.level > logging.INFO
        or handler.filters
        or type(handler.formatter) is not JsonFormatter
        or ACCESS_LOGGER not in handler.batched
    ):
        return None
    return handler


def flush_logs() -> None:
    """Write what the root logger's handlers hold (at shutdown)."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def configure_logging(level: str = "info") -> None:
    """Send the gateway's and uvicorn's logs to stderr as JSON lines (batched on the event
    loop: `BatchedStreamHandler`)."""
    handler = BatchedStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs requests
    logging.Formatter.converter = time.gmtime
