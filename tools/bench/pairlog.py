"""What pair logging adds to a classify request: the cost of `PairLog.submit` (redaction plus
the queue append), with the real writer draining to a real Redis meanwhile, and the cost of
`redact` alone on a 300-character review.

    python -m tools.bench.pairlog                  # embedded redis-server in a temp dir
    python -m tools.bench.pairlog --submits 200000 --redis-url redis://127.0.0.1:6379/0

Submits run on the event loop, yielding to it every --burst submits (as requests do), so the
writer's batches interleave with them. Prints p50/p99/p99.9/max of submit in microseconds
in wall-clock and in CPU time (a busy machine inflates the wall-clock tail), the writer's
throughput, and redact's CPU time per call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import timeit
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.infra.settings import Settings
    from gateway.pairs.record import PairRecord

STREAM = "bench:pairs"
PLAIN = (
    "The app keeps crashing whenever I open the checkout screen after the latest update. I "
    "tried reinstalling twice and it still freezes on the payment page. Please fix this, I "
    "used to love it and gave it five stars before. Now it is unusable on my phone, sadly, "
    "and support never answers."
)
DIRTY = (
    "Since version 3.2 the app crashes at checkout. I emailed support at help.me@example.com "
    "and called +1 (415) 555-0132 twice, no answer. The reset link https://app.example.com/r"
    "?t=9f8 does not work either. Gave 5 stars in 2023, now 1 star. My order from 12 March "
    "is lost, please fix it now!"
)


def _record(i: int, text: str) -> PairRecord:
    from gateway.pairs.record import PairRecord

    return PairRecord.from_dict(
        {
            "request_id": f"bench-{i}",
            "served_request_id": None,
            "shadow": False,
            "review_id": f"bench-review-{i}",
            "text": text,
            "app": "com.example.shop",
            "rating": 2,
            "experiment": "triage",
            "variant": "control",
            "model": "openrouter/openai/gpt-4o",
            "triage": {
                "category": "Bug Report",
                "urgency": "High",
                "topic": "Checkout Crash",
                "summary": "The app crashes at checkout since the latest update.",
            },
            "raw_output": None,
            "attempts": 1,
            "fallback_from": None,
            "latency_ms": 812.3,
            "cost_usd": 0.00041,
            "prompt_tokens": 312,
            "completion_tokens": 41,
            "confidence": None,
            "ts": time.time(),
        }
    )


async def _cleanup(client: Any, submits: int) -> None:
    """Remove this benchmark's pairs (only them: the pair index is shared with live data)."""
    from gateway.infra import redis_keys

    await client.delete(STREAM)
    for start in range(0, submits, 1000):
        ids = range(start, min(submits, start + 1000))
        await client.hdel(redis_keys.pair_index(), *(f"bench-{i}" for i in ids))
        await client.delete(*(redis_keys.review_pairs(f"bench-review-{i}") for i in ids))


def _pct(sorted_ns: list[int], q: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1000


async def _bench_submit(url: str, settings: Settings, submits: int, burst: int) -> None:
    import redis.asyncio as aioredis

    from gateway.infra.metrics import GatewayMetrics
    from gateway.pairs.pairlog import PairLog

    client = aioredis.Redis.from_url(url)
    await _cleanup(client, submits)
    log = PairLog.from_url(url, settings, GatewayMetrics())
    await log.start()
    texts = [PLAIN, DIRTY, PLAIN, PLAIN]  # a quarter of the reviews carry personal data
    records = [_record(i, texts[i % len(texts)]) for i in range(submits)]
    times: list[int] = []
    cpu_times: list[int] = []
    clock, cpu = time.perf_counter_ns, time.thread_time_ns
    start = time.perf_counter()
    for i, rec in enumerate(records):
        t0, c0 = clock(), cpu()
        log.submit(rec)
        c1, t1 = cpu(), clock()
        times.append(t1 - t0)
        cpu_times.append(c1 - c0)
        if i % burst == burst - 1:
            await asyncio.sleep(0)
    submitted = time.perf_counter() - start
    for _ in range(60_000):  # poll for at most ten minutes
        if await client.xlen(STREAM) >= submits:
            break
        await asyncio.sleep(0.01)
    stored = time.perf_counter() - start
    await log.close()
    await _cleanup(client, submits)
    await client.aclose()
    for name, values in (("wall", times), ("cpu", cpu_times)):
        values.sort()
        print(
            f"submit, {name} ({submits} calls): p50 {_pct(values, 0.5):.2f} us, "
            f"p99 {_pct(values, 0.99):.2f} us, p99.9 {_pct(values, 0.999):.2f} us, "
            f"max {values[-1] / 1000:.0f} us, mean {statistics.fmean(values) / 1000:.2f} us"
        )
    print(
        f"writer: {submits} pairs in Redis {stored:.2f} s after the first submit "
        f"({submits / stored:,.0f} pairs/s; submitting took {submitted:.2f} s)"
    )


def _bench_redact(repeats: int) -> None:
    from gateway.pairs.redaction import redact

    for name, text in (("plain", PLAIN), ("with email, phone, url", DIRTY)):
        text = text[:300]
        n = 20_000
        call = partial(redact, text)
        best = min(timeit.repeat(call, number=n, repeat=repeats, timer=time.process_time)) / n
        print(f"redact, {len(text)} chars, {name}: {best * 1e6:.2f} us CPU (best of {repeats})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submits", type=int, default=100_000)
    parser.add_argument("--burst", type=int, default=32, help="submits between two yields")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--redis-url", default=None, help="default: a temporary redis-server")
    args = parser.parse_args()
    _bench_redact(args.repeats)
    from gateway.infra.redis_client import redis_url
    from gateway.infra.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,
            data_dir=Path(tmp) / "data",
            pairs_stream=STREAM,
            redis_url=args.redis_url,
        )
        url, embedded = redis_url(settings)  # without --redis-url: embedded, under the temp dir
        try:
            asyncio.run(_bench_submit(url, settings, args.submits, args.burst))
        finally:
            if embedded is not None:
                embedded.stop(compact=False)  # a temporary data directory


if __name__ == "__main__":
    main()
