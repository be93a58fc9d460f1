"""Chaos: 5,000 classifies while Redis is killed with SIGKILL three times, with no person
acting. Once with the gateway's embedded Redis (its supervisor restarts it) and once with a
redis-server the test runs itself (the test restarts it, as an operator's supervisor would).

Each run must end with 0 failed classifies, Redis answering again within 5 s of each kill,
and every 200 stored in the stream exactly once (matched by the answer's request_id). The
figures are printed (`pytest -s tests/test_chaos.py`).
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis

from gateway.infra.embedded_redis import EmbeddedRedis
from tests.servers import Gateway, Simulator, ab_routes, classify_many, free_port, run_gateway

STREAM = "triage:pairs"
REQUESTS = 5000
CONCURRENCY = 32
KILL_AT = (800, 2200, 3600)
"""Completed requests after which Redis is killed."""
BACK_WITHIN_S = 5.0
LOAD_LIMIT_S = 120.0


def ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def zombie(pid: int) -> bool:
    """Whether `pid` is a process that exited and was never reaped."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "\tZ" in status.read_text()
    except FileNotFoundError:
        return False


def stream_counts(client: redis.Redis) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    start = "-"
    while True:
        entries: Any = client.xrange(STREAM, start, "+", count=2000)
        for _, fields in entries:
            counts[fields[b"request_id"].decode()] += 1
        if len(entries) < 2000:
            return counts
        start = "(" + entries[-1][0].decode()


async def until(check: Callable[[], bool], timeout_s: float) -> float:
    """Seconds until `check()` held; AssertionError after `timeout_s`."""
    start = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def chaos_run(
    gw: Gateway,
    client: redis.Redis,
    kill: Callable[[], Awaitable[None]],
    name: str,
) -> None:
    """The load with three kills; asserts and prints the figures."""
    done = [0]
    outages: list[float] = []

    async def chaos() -> None:
        for at in KILL_AT:
            await until(lambda at=at: done[0] >= at, LOAD_LIMIT_S)  # type: ignore[misc]
            killed_at = time.monotonic()
            await kill()
            await until(lambda: ping(client), BACK_WITHIN_S)
            outages.append(time.monotonic() - killed_at)

    started = time.monotonic()
    chaos_task = asyncio.create_task(chaos())
    ids = await classify_many(
        gw, REQUESTS, name, done, concurrency=CONCURRENCY, limit_s=LOAD_LIMIT_S, client_timeout=20.0
    )
    await chaos_task
    seconds = time.monotonic() - started
    served = [i for i in ids if i is not None]
    # The spool and the re-sent window drain once Redis is back.
    await until(lambda: set(served) <= set(stream_counts(client)), 30.0)
    counts = stream_counts(client)
    dupes = sum(counts[i] - 1 for i in served if counts[i] > 1)
    print(
        f"\nchaos[{name}]: {REQUESTS} requests in {seconds:.1f}s, "
        f"{REQUESTS - len(served)} failed, outages "
        f"{', '.join(f'{o * 1000:.0f} ms' for o in outages)}, "
        f"stored {sum(counts.values())}, duplicates {dupes}"
    )
    assert len(served) == REQUESTS, f"{REQUESTS - len(served)} classifies failed"
    assert len(outages) == len(KILL_AT) and max(outages) <= BACK_WITHIN_S
    assert len(set(served)) == REQUESTS
    assert dupes == 0, f"{dupes} pairs stored more than once"
    assert sum(counts.values()) == REQUESTS  # nothing else in the stream either
    assert "spooling pairs locally" in gw.log_text()


async def test_embedded_redis_killed_three_times(tmp: Path, sim: Simulator) -> None:
    """The gateway's own Redis: its supervisor restarts it; readiness follows it."""
    with run_gateway(tmp, routes=ab_routes(sim.base_url)) as gw:
        sock = tmp / "data" / "redis" / "redis.sock"
        client = redis.Redis(unix_socket_path=str(sock), socket_timeout=1.0)
        killed: list[int] = []

        async def kill() -> None:
            pid = int(client.info("server")["process_id"])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

        try:
            await chaos_run(gw, client, kill, "embedded")
            with gw.client() as http:
                assert http.get("/readyz").status_code == 200
                assert http.get("/healthz").status_code == 200
            assert not [pid for pid in killed if zombie(pid)]  # reaped by the supervisor
            assert gw.log_text().count("embedded redis restarted") == len(KILL_AT)
        finally:
            client.close()


async def test_external_redis_killed_three_times(tmp: Path, sim: Simulator) -> None:
    """A redis-server the gateway does not own, restarted by the test after each kill."""
    server = EmbeddedRedis(tmp / "redis", port=free_port()).start()
    client = redis.Redis.from_url(server.url, socket_timeout=1.0)

    async def kill() -> None:
        await asyncio.to_thread(server.stop, kill=True)  # SIGKILL
        await asyncio.sleep(0.3)  # down for a moment, then restarted
        await asyncio.to_thread(server.start)

    try:
        with run_gateway(tmp / "gw", routes=ab_routes(sim.base_url), redis_url=server.url) as gw:
            await chaos_run(gw, client, kill, "external")
    finally:
        client.close()
        server.stop()
