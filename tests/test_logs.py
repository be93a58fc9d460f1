"""The JSON log handler: batched on an event loop, immediate elsewhere and for warnings."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from gateway.infra.logs import BatchedStreamHandler, JsonFormatter


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


def _logger(stream: CountingStream, interval_s: float = 0.05) -> logging.Logger:
    name = f"test.batched.{id(stream)}"
    handler = BatchedStreamHandler(stream, batched=(name,), interval_s=interval_s, max_lines=100)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(name)
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


def test_info_lines_on_a_loop_are_written_together_after_the_interval() -> None:
    stream = CountingStream()
    log = _logger(stream)

    async def burst() -> tuple[str, str]:
        for i in range(20):
            log.info("request", extra={"fields": {"n": i}})
        held = stream.getvalue()
        await asyncio.sleep(0.2)
        return held, stream.getvalue()

    held, written = asyncio.run(burst())
    assert held == ""
    lines = [json.loads(line) for line in written.splitlines()]
    assert [line["n"] for line in lines] == list(range(20))
    assert stream.writes == 1  # 20 short lines: one write


def test_a_warning_or_a_full_batch_is_written_at_once_in_order() -> None:
    stream = CountingStream()
    log = _logger(stream, interval_s=60)

    async def mixed() -> str:
        log.info("first")
        log.warning("second")
        return stream.getvalue()

    written = asyncio.run(mixed())
    assert [json.loads(line)["msg"] for line in written.splitlines()] == ["first", "second"]
    for i in range(100):
        log.info("n%d", i)  # no loop here: every line at once
    assert len(stream.getvalue().splitlines()) == 102


def test_other_loggers_are_written_at_once_even_on_a_loop() -> None:
    stream = CountingStream()
    log = _logger(stream, interval_s=60)
    other = logging.getLogger(f"test.unbatched.{id(stream)}")
    other.handlers[:] = log.handlers
    other.propagate = False
    other.setLevel(logging.INFO)

    async def lifecycle() -> str:
        log.info("held")
        other.info("Application shutdown complete.")
        return stream.getvalue()

    written = asyncio.run(lifecycle())
    assert [json.loads(line)["msg"] for line in written.splitlines()] == [
        "held",
        "Application shutdown complete.",
    ]


def test_a_batch_goes_out_in_whole_line_writes_of_at_most_a_pipe_buffer() -> None:
    stream = CountingStream()
    log = _logger(stream)
    writes: list[str] = []
    original = stream.write

    def record(s: str) -> int:
        writes.append(s)
        return original(s)

    stream.write = record  # type: ignore[method-assign]

    async def burst() -> None:
        for i in range(90):
            log.info("request", extra={"fields": {"n": i, "pad": "x" * 200}})
        await asyncio.sleep(0.2)

    asyncio.run(burst())
    assert len(writes) > 1
    assert all(len(w.encode()) <= 4096 and w.endswith("\n") for w in writes)
    lines = "".join(writes).splitlines()
    assert [json.loads(line)["n"] for line in lines] == list(range(90))


def test_access_lines_skip_the_log_record_only_when_nothing_else_would_see_them() -> None:
    """`log_access` writes the JSON line straight into the gateway's handler, in the shape the
    formatter gives every other line; once another handler listens (a log capture), the line
    goes through `logging` so that handler sees it too."""
    from gateway.infra.logs import ACCESS_LOGGER, log_access

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = CountingStream()
    handler = BatchedStreamHandler(stream, interval_s=0.05)
    handler.setFormatter(JsonFormatter())
    seen: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    async def burst() -> tuple[str, str]:
        for i in range(3):
            log_access({"status": 200, "n": i})
        logging.getLogger(ACCESS_LOGGER).info("request", extra={"fields": {"status": 200, "n": 3}})
        held = stream.getvalue()
        await asyncio.sleep(0.2)
        return held, stream.getvalue()

    try:
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        held, written = asyncio.run(burst())
        assert held == ""  # batched like any access line
        lines = [json.loads(line) for line in written.splitlines()]
        assert [line["n"] for line in lines] == [0, 1, 2, 3]
        assert {tuple(sorted(line)) for line in lines[:3]} == {tuple(sorted(lines[3]))}
        assert lines[0]["logger"] == ACCESS_LOGGER and lines[0]["msg"] == "request"
        assert not seen
        root.handlers.append(Capture())
        log_access({"status": 200, "n": 4})
        assert [r.fields["n"] for r in seen] == [4]  # type: ignore[attr-defined]
        root.handlers[:] = [handler]
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        log_access({"status": 200, "n": 5})  # a plain-text setup gets its plain line
        handler.flush()
        assert stream.getvalue().endswith("INFO request\n")
        handler.setFormatter(JsonFormatter())
        parent = logging.getLogger(ACCESS_LOGGER.rpartition(".")[0])
        parent.propagate = False  # the line goes nowhere now, as logging would have it
        try:
            before = stream.getvalue()
            log_access({"status": 200, "n": 6})
            handler.flush()
            assert stream.getvalue() == before
        finally:
            parent.propagate = True
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
