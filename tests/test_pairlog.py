"""The zero-loss pair log, with real Redis servers and real gateway processes.

Redis restarts: Redis acknowledges a write before its AOF (`appendfsync everysec`) is fsynced,
so a kill -9 (or a host crash) can lose acknowledged writes. The pair log keeps acknowledged
records until the same Redis process has been seen alive 3 s later and re-sends them when
Redis comes back with a new run_id (writes are idempotent per request_id). So the gateway
test kills Redis with SIGKILL once and stops it gracefully once, and
`test_acknowledged_pairs_survive_a_redis_that_lost_everything` proves the re-send with a Redis
that has no persistence at all (the worst case of a lost write window).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
import redis

from gateway.infra import redis_keys
from gateway.infra.embedded_redis import CLEAN_STOP_FILE, EmbeddedRedis, redis_server_binary
from gateway.infra.metrics import GatewayMetrics
from gateway.infra.settings import Settings
from gateway.pairs.pairlog import PairLog, pair_client
from gateway.pairs.pairstore import (
    delete_review,
    get_pair,
    iter_pairs,
    trim_older_than,
    write_pairs,
)
from gateway.pairs.redaction import redact
from gateway.pairs.spool import Spool
from tests.servers import (
    Simulator,
    ab_routes,
    classify_many,
    free_port,
    pair_record,
    run_gateway,
)

STREAM = "triage:pairs"
LOAD_LIMIT_S = 300.0  # bound of one classify load under Redis faults


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    return Settings(_env_file=None, data_dir=tmp / "data", **overrides)


def stream_ids(url: str) -> list[str]:
    with redis.Redis.from_url(url) as client:
        entries: Any = client.xrange(STREAM)
    return [fields[b"request_id"].decode() for _, fields in entries]


async def until(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.05)


def logged(metrics: GatewayMetrics) -> float:
    value = metrics.registry.get_sample_value("triage_gateway_pairs_logged_total")
    return value or 0.0


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("write to jo.doe+app@mail.example.co.uk now", "write to [email] now"),
        ("call (415) 555-0132, 415.555.0132 or 4155550132", "call [phone], [phone] or [phone]"),
        ("call +44 20 7946 0958 or +1 415-555-0132.", "call [phone] or [phone]."),
        ("version 3.2, 5 stars, 2023, 2024-10-15, 1234567, 911", None),
        (
            "reset https://x.io/r?token=abc and https://x.io/help.",
            "reset [url] and https://x.io/help.",
        ),
        ("see https://x.io/s/9f86d081884c7d659a2f/x)", "see [url])"),
    ],
)
def test_redaction(text: str, want: str | None) -> None:
    assert redact(text) == (text if want is None else want)


async def test_thousand_pairs_in_order_redacted_and_readable(tmp: Path, redis_url: str) -> None:
    metrics = GatewayMetrics()
    log = PairLog.from_url(redis_url, make_settings(tmp), metrics)
    await log.start()
    for i in range(1000):
        log.submit(pair_record(i, text=f"Mail me at u{i}@example.com or call +1 415-555-{i:04d}."))
    log.submit(pair_record(0))  # the same request_id again: stored once
    await log.close()
    assert stream_ids(redis_url) == [f"req-{i}" for i in range(1000)]
    assert logged(metrics) == 1000
    async with pair_client(redis_url) as client:
        pair = await get_pair(client, STREAM, "req-7")
        assert pair is not None
        assert pair.text == "Mail me at [email] or call [phone]."
        assert pair.triage.category == "Bug Report" and pair.stream_id
        assert await get_pair(client, STREAM, "nope") is None
        ids = [p.request_id async for p in iter_pairs(client, STREAM, count=64, dedupe=True)]
        assert ids == [f"req-{i}" for i in range(1000)]
        assert await delete_review(client, STREAM, "rev-7") == 1
        assert await get_pair(client, STREAM, "req-7") is None
        assert not await client.exists(redis_keys.review_pairs("rev-7"))
        assert await client.xlen(STREAM) == 999


async def test_retention_trims_old_pairs_and_their_index(redis_url: str) -> None:
    async with pair_client(redis_url) as client:
        assert await write_pairs(client, STREAM, [pair_record(i) for i in range(5)]) == (5, ANY)
        assert await trim_older_than(client, STREAM, max_age_s=3600) == 0
        assert await trim_older_than(client, STREAM, max_age_s=-60) == 5  # cutoff in the future
        assert await client.xlen(STREAM) == 0
        assert await client.hlen(redis_keys.pair_index()) == 0
        assert not await client.exists(redis_keys.review_pairs("rev-1"))


async def test_full_queue_goes_to_the_spool_and_is_replayed_in_order(
    tmp: Path, redis_url: str
) -> None:
    log = PairLog.from_url(
        redis_url, make_settings(tmp, pair_queue_size=10, pair_batch_size=7), GatewayMetrics()
    )
    await log.start()
    for i in range(500):  # no await in between: the writer can't run, the queue overflows
        log.submit(pair_record(i))
    await until(lambda: len(stream_ids(redis_url)) >= 500)
    assert log.spool.path.exists()  # it went through the spool...
    assert log.spool.count() == 0 and log.spool.path.stat().st_size == 0  # ...now replayed
    assert stream_ids(redis_url) == [f"req-{i}" for i in range(500)]
    await log.close()


async def test_redis_down_spools_then_replays_in_order(tmp: Path) -> None:
    server = EmbeddedRedis(tmp / "redis", port=free_port()).start()
    log = PairLog.from_url(server.url, make_settings(tmp), GatewayMetrics())
    try:
        await log.start()
        for i in range(100):
            log.submit(pair_record(i))
        await until(lambda: len(stream_ids(server.url)) == 100)
        await asyncio.to_thread(server.stop, kill=True)
        for i in range(100, 200):
            log.submit(pair_record(i))
            await asyncio.sleep(0.005)
        await until(lambda: log.spool.count() >= 100)
        await asyncio.to_thread(server.start)
        await until(lambda: log.spool.count() == 0 and len(stream_ids(server.url)) == 200)
        assert stream_ids(server.url) == [f"req-{i}" for i in range(200)]
    finally:
        await log.close()
        server.stop()


@contextlib.contextmanager
def volatile_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server with no persistence at all: a restart loses every write."""
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    proc = subprocess.Popen([*args, "--appendonly", "no"], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    try:
        for _ in range(200):
            with contextlib.suppress(redis.ConnectionError):
                client.ping()
                break
            time.sleep(0.02)
        yield proc
    finally:
        proc.kill()
        proc.wait()


async def test_acknowledged_pairs_survive_a_redis_that_lost_everything(tmp: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    metrics = GatewayMetrics()
    log = PairLog.from_url(url, make_settings(tmp), metrics)
    with volatile_redis(port):
        await log.start()
        for i in range(200):
            log.submit(pair_record(i))
        await until(lambda: len(stream_ids(url)) == 200)
    with volatile_redis(port):  # restarted empty, well within the 3 s durability window
        await until(lambda: len(stream_ids(url)) == 200, timeout_s=10)
        assert sorted(stream_ids(url)) == sorted(f"req-{i}" for i in range(200))
        await log.close()
    assert logged(metrics) == 400


def test_spool_skips_a_torn_line_and_adopts_dead_processes(tmp: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    directory = tmp / "spool"
    directory.mkdir()
    theirs = Spool(directory, pid=int(dead.stdout))
    theirs.append([pair_record(0), pair_record(1)])
    with open(theirs.path, "ab") as f:
        f.write(b'{"request_id": "torn')  # a crash in the middle of a write
    mine = Spool(directory)
    assert mine.open() == 2
    assert [r.request_id for r in mine.replay()] == ["req-0", "req-1"]
    assert not theirs.path.exists()
    mine.append([pair_record(2)])
    batch = mine.read_batch(10)
    assert [r.request_id for r in batch.records] == ["req-0", "req-1", "req-2"]
    mine.commit(batch)
    assert mine.count() == 0 and mine.path.stat().st_size == 0


async def reached(done: list[int], count: int, timeout_s: float = 20.0) -> None:
    await until(lambda: done[0] >= count, timeout_s)


async def test_redis_killed_and_restarted_mid_load_loses_nothing(tmp: Path, sim: Simulator) -> None:
    server = EmbeddedRedis(tmp / "redis", port=free_port()).start()
    done = [0]

    async def chaos() -> None:
        await reached(done, 1000)
        await asyncio.to_thread(server.stop, kill=True)  # SIGKILL
        await reached(done, 1800)
        await asyncio.to_thread(server.start)
        await reached(done, 2800)
        await asyncio.to_thread(server.stop)  # SIGTERM: Redis flushes its AOF
        await reached(done, 3600)
        await asyncio.to_thread(server.start)

    try:
        with run_gateway(tmp, routes=ab_routes(sim.base_url), redis_url=server.url) as gw:
            chaos_task = asyncio.create_task(chaos())
            ids = await classify_many(gw, 5000, "k-", done, concurrency=32, limit_s=LOAD_LIMIT_S)
            await chaos_task
            assert all(ids), f"{ids.count(None)} requests failed"
            want = set(ids)

            def complete() -> bool:
                return want <= set(stream_ids(server.url))

            await until(complete, timeout_s=20)
            assert "spooling pairs locally" in gw.log_text()
        stored = stream_ids(server.url)
        assert len(set(stored)) == 5000, "pairs lost"
        assert len(stored) == 5000, f"{len(stored) - 5000} duplicates"  # exactly once
    finally:
        server.stop()


async def test_gateway_sigterm_mid_load_then_restart_loses_nothing(
    tmp: Path, sim: Simulator, redis_url: str
) -> None:
    data_dir = tmp / "data"
    routes = ab_routes(sim.base_url)
    done = [0]
    with run_gateway(tmp / "a", routes=routes, redis_url=redis_url, data_dir=data_dir) as gw:
        load = asyncio.create_task(
            classify_many(gw, 3000, "s-", done, concurrency=32, limit_s=LOAD_LIMIT_S)
        )
        await reached(done, 800)
        gw.proc.send_signal(signal.SIGTERM)
        ids = await load
        # uvicorn re-raises the signal once its graceful shutdown is done
        assert await asyncio.to_thread(gw.proc.wait, 30) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in gw.log_text()
    served = {i for i in ids if i is not None}
    assert len(served) >= 800
    with run_gateway(tmp / "b", routes=routes, redis_url=redis_url, data_dir=data_dir):
        await until(lambda: served <= set(stream_ids(redis_url)), timeout_s=20)
        spool_dir = data_dir / "spool"
        await until(lambda: all(p.stat().st_size == 0 for p in spool_dir.glob("*.jsonl")))
    assert len(stream_ids(redis_url)) == len(set(stream_ids(redis_url)))


def _cut_inside_last_script(aof: Path) -> None:
    """A write torn by a kill: the AOF ends inside the last script's MULTI block, right after
    a complete XADD (its index HSET cut in the middle)."""
    data = aof.read_bytes()
    multi = data.rfind(b"MULTI")
    hset = data.find(b"HSET", multi)
    with open(aof, "r+b") as f:
        f.truncate(data.rfind(b"*4\r\n", 0, hset) + 5)


async def test_torn_aof_tail_inside_a_script_stores_nothing_twice(tmp: Path) -> None:
    """The duplicate seen across a kill -9: Redis cut the torn AOF after the XADD, inside the
    MULTI; the next transaction was glued onto it, so the next load applied that XADD without
    its index entry, next to the re-sent copy. The AOF is now repaired before each start."""
    server = EmbeddedRedis(tmp / "redis", port=free_port()).start()
    try:
        async with pair_client(server.url) as client:
            await write_pairs(client, STREAM, [pair_record(0), pair_record(1)])
            await write_pairs(client, STREAM, [pair_record(2), pair_record(3)])
        await asyncio.sleep(1.2)  # appendfsync everysec
        server.stop(kill=True)
        _cut_inside_last_script(tmp / "redis" / "appendonly.aof")
        server.start()
        assert stream_ids(server.url) == ["req-0", "req-1"]
        async with pair_client(server.url) as client:  # the pair log re-sends the lost batch
            assert (await write_pairs(client, STREAM, [pair_record(2), pair_record(3)]))[0] == 2
        server.stop()  # graceful: the AOF is complete
        server.start()
        assert stream_ids(server.url) == ["req-0", "req-1", "req-2", "req-3"]
    finally:
        server.stop()


def test_aof_check_is_skipped_only_after_a_clean_stop(tmp: Path) -> None:
    """A start after our clean SIGTERM stop skips `redis-check-aof` (it reads the whole
    file); a start after a kill -9, or after the file changed since the clean stop, runs it
    and cuts a torn tail."""
    data_dir = tmp / "redis"
    aof = data_dir / "appendonly.aof"
    checker = data_dir / "redis-check-aof"
    server = EmbeddedRedis(data_dir, port=free_port())

    def start_counting_checks() -> bool:
        checker.unlink(missing_ok=True)  # repair_aof links it again each time it runs
        server.start()
        return checker.is_symlink()

    try:
        server.start()
        client = redis.Redis.from_url(server.url)
        client.set("k", "1")
        server.stop()
        assert (data_dir / CLEAN_STOP_FILE).is_file()
        assert start_counting_checks() is False  # clean stop, unchanged file: no check
        assert not (data_dir / CLEAN_STOP_FILE).exists()  # consumed by the start
        assert redis.Redis.from_url(server.url).get("k") == b"1"
        server.stop(kill=True)
        assert not (data_dir / CLEAN_STOP_FILE).exists()
        assert start_counting_checks() is True  # after a kill -9: checked
        server.stop()
        with aof.open("ab") as f:  # changed after the clean stop: a torn command
            f.write(b"*3\r\n$3\r\nSET\r\n$1\r\nt")
        assert start_counting_checks() is True
        assert redis.Redis.from_url(server.url).get("k") == b"1"
        assert not aof.read_bytes().endswith(b"$1\r\nt")  # the torn tail was cut
    finally:
        server.stop()


def _aof_starts_with_a_snapshot(data_dir: Path) -> bool:
    single = data_dir / "appendonly.aof"
    if single.is_file():  # Redis <= 6: one file, an RDB preamble after a rewrite
        return single.read_bytes().startswith(b"REDIS")
    manifest = (data_dir / "appendonlydir" / "appendonly.aof.manifest").read_text()
    return any(" type b" in line and ".rdb " in line for line in manifest.splitlines())


def test_a_clean_stop_compacts_the_aof_into_a_snapshot(tmp: Path) -> None:
    """A start replays every command appended since the last rewrite (35,000 pairs took
    0.55 s), so a clean stop rewrites the AOF as a snapshot once enough was appended; a small
    change is left as commands, and the snapshot loads back whole, without a check."""
    data_dir = tmp / "redis"
    checker = data_dir / "redis-check-aof"
    server = EmbeddedRedis(data_dir, port=free_port(), compact_min_bytes=256 << 10)
    try:
        server.start()
        redis.Redis.from_url(server.url).set("small", "1")
        server.stop()
        assert not _aof_starts_with_a_snapshot(data_dir)  # under the threshold
        server.start()
        client = redis.Redis.from_url(server.url)
        pipe = client.pipeline(transaction=False)
        for i in range(2000):
            pipe.hset(f"pair:{i}", mapping={"record": "x" * 200, "i": i})
        pipe.execute()
        server.stop()
        assert _aof_starts_with_a_snapshot(data_dir)
        checker.unlink(missing_ok=True)
        server.start()
        assert not checker.exists()  # still a clean stop: no check
        client = redis.Redis.from_url(server.url)
        assert client.get("small") == b"1"
        assert client.dbsize() == 2001
        assert client.hget("pair:1999", "i") == b"1999"
    finally:
        server.stop()


def test_compaction_of_a_server_that_does_not_answer_gives_up_in_time(tmp: Path) -> None:
    """A stop must not hang on a frozen server: the client's own retries once made one
    `compact_aof` take 26 s; the deadline now bounds it."""
    server = EmbeddedRedis(tmp / "redis", port=free_port(), compact_min_bytes=0)
    server.start()
    pid = server.pid
    assert pid is not None
    try:
        os.kill(pid, signal.SIGSTOP)
        began = time.monotonic()
        assert server.compact_aof(timeout_s=1.0) is False
        assert time.monotonic() - began < 3.0
    finally:
        os.kill(pid, signal.SIGCONT)
        server.stop()


def test_embedded_redis_is_restarted_then_given_up_on(tmp: Path) -> None:
    """Supervision: a kill -9 is followed by a restart (the dead child reaped); when the
    server cannot start again (its port taken), it gives up after N tries and says so."""
    port = free_port()
    server = EmbeddedRedis(tmp / "redis", port=port, max_restart_failures=2, backoff_s=0.3)
    gave_up: list[bool] = []
    server.start().supervise(on_give_up=lambda: gave_up.append(True))
    client = redis.Redis(port=port, socket_timeout=1.0)
    try:
        first = server.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while server.restarts < 1 or not _ping(client):
            assert time.monotonic() < deadline, "not restarted within 5 s"
            time.sleep(0.02)
        assert server.restarts == 1 and not server.failed
        assert not Path(f"/proc/{first}").exists()  # reaped, no zombie
        second = server.pid
        assert second is not None
        with socket.socket() as blocker:
            os.kill(second, signal.SIGKILL)
            while Path(f"/proc/{second}").exists():
                time.sleep(0.01)
            blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            blocker.bind(("127.0.0.1", port))
            blocker.listen()
            deadline = time.monotonic() + 10
            while not server.failed:
                assert time.monotonic() < deadline, "never gave up"
                time.sleep(0.05)
        assert gave_up == [True] and server.pid is None
    finally:
        client.close()
        server.stop()


def _ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


async def test_pair_identity_ignores_the_callers_request_id(tmp: Path, sim: Simulator) -> None:
    """Two classifies with one X-Request-ID and different texts are two pairs; the caller's id
    is kept as a field and echoed back, and never names a pair (no `:shadow` collision)."""
    port = free_port()
    with (
        volatile_redis(port),
        run_gateway(
            tmp, routes=ab_routes(sim.base_url), redis_url=f"redis://127.0.0.1:{port}/0"
        ) as gw,
    ):
        answers = []
        async with gw.async_client() as client:
            for rid, text in [("fixed-id-123", "It crashes"), ("fixed-id-123", "Add dark mode"),
                              ("foo:shadow", "Slow")]:  # fmt: skip
                r = await client.post(
                    "/v1/classify", json={"text": text}, headers={"X-Request-ID": rid}
                )
                assert r.status_code == 200 and r.headers["x-request-id"] == rid
                answers.append((rid, r.json()["request_id"]))
            pair_ids = [pid for _, pid in answers]
            assert len(set(pair_ids)) == 3
            assert all(pid not in ("fixed-id-123", "foo:shadow") and ":" not in pid
                       for pid in pair_ids)  # fmt: skip
            url = f"redis://127.0.0.1:{port}/0"
            await until(lambda: len(stream_ids(url)) == 3)
            for rid, pid in answers:
                r = await client.get(f"/v1/pairs/{pid}")
                assert r.status_code == 200, r.text
                pair = r.json().get("pair", r.json())
                assert pair["caller_request_id"] == rid
