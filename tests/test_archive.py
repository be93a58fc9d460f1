"""The Parquet archive against a real redis-server: pairs past the hot window move to
partitioned files and read back as one with the hot window (sharded streams included),
erasure rewrites the partitions, corrections are written through within seconds, and
`triage-gateway restore` rebuilds Redis from the archive after its data is gone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow.dataset as ds
import pytest
import redis.asyncio as aioredis

from gateway.infra import redis_keys
from gateway.pairs import archive, pairstore
from gateway.pairs.corrections import erase_review, make_correction, store_corrections
from gateway.pairs.record import PairRecord
from gateway.request.triage import DEFAULT_TAXONOMY

STREAM = "triage:pairs"
ROOT = Path(__file__).resolve().parents[1]


def pair(i: int, review: str | None = None) -> PairRecord:
    return PairRecord.from_dict(
        {
            "request_id": f"req-{i}",
            "review_id": review or f"rev-{i}",
            "text": f"The app crashes on screen {i}",
            "app": "demo",
            "experiment": "triage" if i % 2 else "other",
            "variant": "control",
            "model": "local",
            "triage": {"category": "Bug Report", "urgency": "High", "topic": "Crash"},
            "ts": time.time(),
        }
    )


@pytest.fixture
def layout() -> Iterator[None]:
    yield
    redis_keys.configure(cluster=False, pair_shards=1)


def archive_at(tmp: Path, pair_shards: int = 1) -> str:
    """The URL of an archive under `tmp`, configured with `pair_shards` pair streams (the
    `layout` fixture puts the default layout back)."""
    url = str(tmp / "archive")
    redis_keys.configure(cluster=False, pair_shards=pair_shards, archive_url=url)
    return url


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_pairs_move_to_partitions_and_read_back_with_the_hot_window(
    redis_url: str, tmp: Path, layout: None
) -> None:
    url = archive_at(tmp, pair_shards=3)

    async def body() -> None:
        async with aioredis.Redis.from_url(redis_url) as client:
            assert await pairstore.write_pairs(client, STREAM, [pair(i) for i in range(200)])
            await asyncio.sleep(0.01)
            moved = await archive.archive_pairs(client, STREAM, url, 0.0, chunk=64)
            assert moved.pairs == 200 and moved.files >= 6  # 2 experiments x 3 shards at least
            await pairstore.write_pairs(client, STREAM, [pair(i) for i in range(200, 260)])
            hot = [await client.xlen(s) for s in pairstore.shard_streams(STREAM)]
            assert sum(hot) == 60 and all(hot)  # the hot window, spread over the shards
            assert await pairstore.get_pair(client, STREAM, "req-5") is None  # trimmed
            assert (await pairstore.get_pair(client, STREAM, "req-205")) is not None
            ids = [p.request_id async for p in pairstore.iter_pairs(client, STREAM)]
            assert len(ids) == 60  # without the archive: the hot window only
            both = [
                p.request_id
                async for p in pairstore.iter_pairs(client, STREAM, with_archive=True, dedupe=True)
            ]
            assert sorted(both) == sorted(f"req-{i}" for i in range(260))
            assert len(both) == len(set(both))

    run(body())
    parts = sorted(p.relative_to(tmp / "archive") for p in (tmp / "archive").rglob("*.parquet"))
    assert all(str(p).startswith("pairs/date=") for p in parts)
    assert {p.parts[2] for p in parts} == {"experiment=triage", "experiment=other"}
    assert not list((tmp / "archive").rglob(".tmp-*"))  # temp files renamed, none left
    table = ds.dataset(str(tmp / "archive" / "pairs"), partitioning="hive").to_table()
    assert table.num_rows == 200
    back = PairRecord.from_json(table.column("data")[0].as_py())
    assert back.triage.category == "Bug Report"


def test_erasure_rewrites_the_partitions_that_hold_the_review(
    redis_url: str, tmp: Path, layout: None
) -> None:
    url = archive_at(tmp)

    async def body() -> dict[str, Any]:
        async with aioredis.Redis.from_url(redis_url) as client:
            pairs = [pair(i, review="gone" if i < 3 else None) for i in range(20)]
            await pairstore.write_pairs(client, STREAM, pairs)
            fix = make_correction(
                pairs[0], DEFAULT_TAXONOMY, category="Bug Report", urgency="Low", corrected_by="r"
            )
            await store_corrections(client, [fix])
            await asyncio.sleep(0.01)
            await archive.archive_pairs(client, STREAM, url, 0.0)
            assert await archive.flush_corrections(client, url) == 1
            erased = await erase_review(client, STREAM, "gone")
            return dict(erased)

    erased = run(body())
    assert erased["pairs_deleted"] == 3
    assert erased["request_ids"] == []  # no longer in Redis: archived before the erasure
    left = [p.request_id for p in archive.iter_archived(url)]
    assert len(left) == 17 and "req-0" not in left
    assert archive.read_corrections(url) == []


def test_corrections_are_written_through_within_seconds(
    redis_url: str, tmp: Path, layout: None
) -> None:
    url = archive_at(tmp)

    async def body() -> float:
        client = aioredis.Redis.from_url(redis_url)
        task = asyncio.create_task(
            archive.run_forever(client, STREAM, url, hot_hours=0, archive_every_s=0)
        )
        try:
            p = pair(1)
            await pairstore.write_pairs(client, STREAM, [p])
            fix = make_correction(
                p, DEFAULT_TAXONOMY, category="Praise", urgency="Low", corrected_by="r"
            )
            await store_corrections(client, [fix])
            saved = time.monotonic()
            while not archive.read_corrections(url):
                assert time.monotonic() - saved < 10, "correction not archived within 10 s"
                await asyncio.sleep(0.1)
            assert await client.xlen(redis_keys.corrections_outbox()) == 0
            return time.monotonic() - saved
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.aclose()

    assert run(body()) < 10.0  # flushed every 2 s: a busy machine may add a few seconds


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_restore_brings_back_500_corrections_after_redis_lost_everything(
    redis_url: str, tmp: Path, layout: None
) -> None:
    url = archive_at(tmp)
    env = {"GATEWAY_REDIS_URL": redis_url, "GATEWAY_DATA_DIR": str(tmp / "data")}

    async def before() -> None:
        async with aioredis.Redis.from_url(redis_url) as client:
            pairs = [pair(i) for i in range(500)]
            await pairstore.write_pairs(client, STREAM, pairs)
            fixes = [
                make_correction(
                    p, DEFAULT_TAXONOMY, category="Praise", urgency="Low", corrected_by="r"
                )
                for p in pairs
            ]
            for start in range(0, 500, 50):  # saved in several calls, as reviewers do
                await store_corrections(client, fixes[start : start + 50])
            await client.hset(redis_keys.model_registry(), "m1", b'{"name": "m1"}')
            await client.hset(redis_keys.weights("triage"), mapping={"version": 2})
            await client.xadd(redis_keys.weights_history("triage"), {"entry": b'{"v": 1}'})
            await client.xadd(redis_keys.weights_history("triage"), {"entry": b'{"v": 2}'})

    run(before())
    done = cli("archive", "--older-than", "0s", "--to", url, env=env)
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert result["pairs"] == 500 and result["corrections"] == 500

    async def wipe() -> None:
        client = aioredis.Redis.from_url(redis_url)
        await client.flushall()
        assert await client.dbsize() == 0
        await client.aclose()

    run(wipe())
    done = cli("restore", "--from", url, env=env)
    assert done.returncode == 0, done.stderr
    restored = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert restored["corrections"] == 500 and restored["models"] == 1
    assert restored["history_entries"] == 2

    async def after() -> None:
        async with aioredis.Redis.from_url(redis_url) as client:
            assert await client.zcard(redis_keys.corrected_set()) == 500
            last = [await client.lindex(redis_keys.corrections(f"req-{i}"), -1) for i in range(500)]
            assert {orjson.loads(raw or b"{}").get("category") for raw in last} == {"Praise"}
            assert await client.xlen(redis_keys.weights_history("triage")) == 2
            assert await client.hget(redis_keys.model_registry(), "m1") is not None
            rids = {
                p.request_id async for p in pairstore.iter_pairs(client, STREAM, with_archive=True)
            }
            assert len(rids) == 500  # the pairs, from the archive, join their corrections

    run(after())
    again = cli("restore", "--from", url, env=env)
    assert again.returncode == 2 and "empty" in again.stderr  # never merged into live data


def test_archive_refuses_a_bad_duration(redis_url: str, tmp: Path) -> None:
    env = {"GATEWAY_REDIS_URL": redis_url, "GATEWAY_DATA_DIR": str(tmp / "data")}
    done = cli("archive", "--older-than", "soon", "--to", str(tmp / "a"), env=env)
    assert done.returncode == 2
    assert "duration 'soon'" in done.stderr
