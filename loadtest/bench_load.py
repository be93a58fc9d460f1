"""The closed-loop load generator of the benchmark and the per-point server measurements.

`closed_loop` runs `concurrency` workers over one aiohttp session; each sends a request, waits
for the whole answer, records the latency and sends the next, until `max_requests` were sent or
`duration_s` passed (whichever first), so every point is bounded in count and in time.
`measure_point` wraps it with a warm-up and reads the server's CPU time (utime + stime from
/proc/<pid>/stat) and its resident memory (VmRSS, sampled) around the measured window.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from loadtest import wrk
from loadtest.procs import command_name, cpu_seconds, memory_kb, process_tree

REQUEST_TIMEOUT_S = 30.0
SAMPLE_EVERY_S = 0.25
HELPERS = frozenset({"redis-server"})  # measured apart from the server's own processes


@dataclass
class LoadResult:
    sent: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    error_sample: str | None = None

    @property
    def ok(self) -> int:
        return len(self.latencies_s)

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float | None:
        """Nearest-rank percentile of the successful requests, in ms."""
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        rank = min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000


async def closed_loop(
    url: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    *,
    concurrency: int,
    max_requests: int,
    duration_s: float,
) -> LoadResult:
    """Bounded closed-loop load on one URL (loopback only)."""
    assert url.startswith("http://127.0.0.1:"), url
    result = LoadResult()
    counter = itertools.count()
    headers = {"Content-Type": "application/json", **headers}
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        deadline = start + duration_s

        async def worker() -> None:
            while (i := next(counter)) < max_requests and time.perf_counter() < deadline:
                body = bodies[i % len(bodies)]
                sent = time.perf_counter()
                result.sent += 1
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        payload = await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    result.errors += 1
                    result.error_sample = result.error_sample or repr(exc)
                    continue
                if status == 200:
                    result.latencies_s.append(time.perf_counter() - sent)
                else:
                    result.errors += 1
                    result.error_sample = result.error_sample or f"HTTP {status}: {payload[:200]!r}"

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        try:
            await asyncio.wait_for(asyncio.gather(*workers), duration_s + REQUEST_TIMEOUT_S + 5)
        except TimeoutError:
            result.errors += 1
            result.error_sample = result.error_sample or "the point did not end in time"
        finally:
            for w in workers:
                w.cancel()
        result.elapsed_s = time.perf_counter() - start
    return result


class ServerMeter:
    """CPU and memory of a server's process tree (the server itself apart from helpers such
    as the gateway's embedded Redis)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.own: list[int] = []
        self.helpers: list[int] = []
        self.peak_rss_kb = 0

    def refresh(self) -> None:
        tree = process_tree(self.pid)
        self.helpers = [p for p in tree if command_name(p) in HELPERS]
        self.own = [p for p in tree if p not in self.helpers]

    def rss_kb(self) -> int:
        return sum(memory_kb(p) for p in self.own)

    def cpu(self) -> tuple[float, float]:
        return cpu_seconds(self.own), cpu_seconds(self.helpers)

    async def sample(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.peak_rss_kb = max(self.peak_rss_kb, self.rss_kb())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)


async def measure_point(
    url: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    *,
    concurrency: int,
    max_requests: int,
    duration_s: float,
    warmup_s: float,
    server_pid: int,
    generator: str = "auto",
) -> dict[str, Any]:
    """One point: warm-up (not counted), then the measured run with CPU and RSS of the server.
    The measured run uses wrk where it is installed (`generator` "auto" or "wrk"; then the
    point is bounded by `duration_s` alone), else the aiohttp loop (bounded by both)."""
    await closed_loop(
        url,
        bodies,
        headers,
        concurrency=concurrency,
        max_requests=max(2 * concurrency, 20),
        duration_s=warmup_s,
    )
    use_wrk = generator == "wrk" or (generator == "auto" and wrk.available())
    meter = ServerMeter(server_pid)
    meter.refresh()
    cpu0, helper0 = meter.cpu()
    stop = asyncio.Event()
    sampler = asyncio.create_task(meter.sample(stop))
    try:
        if use_wrk:
            load: LoadResult | wrk.WrkResult = await wrk.wrk_load(
                url, bodies, headers, concurrency=concurrency, duration_s=duration_s
            )
        else:
            load = await closed_loop(
                url,
                bodies,
                headers,
                concurrency=concurrency,
                max_requests=max_requests,
                duration_s=duration_s,
            )
    finally:
        stop.set()
        await sampler
    cpu1, helper1 = meter.cpu()
    done = max(load.ok, 1)
    p50: float | None
    p90: float | None
    p99: float | None
    if isinstance(load, wrk.WrkResult):
        elapsed, sample = load.duration_s, None
        p50, p90, p99 = load.p50_ms, load.p90_ms, load.p99_ms
    else:
        elapsed, sample = load.elapsed_s, load.error_sample
        p50, p90, p99 = (load.percentile_ms(q) for q in (0.50, 0.90, 0.99))
    return {
        "generator": "wrk" if use_wrk else "aiohttp",
        "concurrency": concurrency,
        "requests": load.ok,
        "errors": load.errors,
        "error_sample": sample,
        "duration_s": round(elapsed, 3),
        "rps": round(load.rps, 1),
        "p50_ms": _round(p50),
        "p90_ms": _round(p90),
        "p99_ms": _round(p99),
        "cpu_ms_per_req": round((cpu1 - cpu0) * 1000 / done, 3),
        "helper_cpu_ms_per_req": round((helper1 - helper0) * 1000 / done, 3),
        "peak_rss_mb": round(meter.peak_rss_kb / 1024, 1),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
