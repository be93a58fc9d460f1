"""Capacity of the pair store, measured (`make bench-redis`):

* pairs/s the pair writer's path (`pairstore.write_pairs`, batches of 256, 8 batches in
  flight, as several gateway replicas would send them) sustains into one redis-server and into
  a three-master Redis Cluster (`devtools.redis_cluster`, one replica each, 6 pair shards);
* Redis memory per million pairs: `INFO memory` used_memory before and after writing
  `--sample` pairs (stream + request-id index + review sets), scaled to one million;
* archive bytes per million pairs: the same pairs moved to Parquet (`archive.archive_pairs`);
* time to export one million archived pairs: `--export-pairs` generated pairs written as
  archive partitions, then `training.export.collect` over the archive and an empty hot window
  (every pair read, each looked up for a correction).

    python -m tools.bench.redis --doc docs/scaling.md

Writes the figures as JSON (--out) and, with --doc, into the block between
`<!-- bench-redis:begin -->` and `<!-- bench-redis:end -->` of that file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.pairs.record import PairRecord
from tools.bench.docblock import markers, write_block

STREAM = "bench:pairs"
BATCH = 256
IN_FLIGHT = 8
SEEDS = Path(__file__).resolve().parents[2] / "gateway" / "data" / "seed_reviews.jsonl"
BEGIN, END = markers("bench-redis")


_seeds: list[dict[str, Any]] = []


def record(i: int, ts: float) -> PairRecord:
    """A realistic pair: the text of two seed reviews (chosen by i) and the first one's
    labels, so that the archive compresses as real data would, not as one repeated text."""
    if not _seeds:
        _seeds.extend(orjson.loads(line) for line in SEEDS.read_text().splitlines() if line)
    a, b = _seeds[(i * 7919) % len(_seeds)], _seeds[(i * 104_729 + 1) % len(_seeds)]
    return PairRecord.from_dict(
        {
            "request_id": f"{i:08x}-bench-{i}",
            "review_id": f"review-{i}",
            "text": f"{a['text']} {b['text']}",
            "app": a.get("app") or "com.example.shop",
            "rating": a.get("rating") or 3,
            "experiment": "triage",
            "variant": "control" if i % 10 else "candidate",
            "model": "openrouter/openai/gpt-4o-mini",
            "triage": {k: a.get(k) for k in ("category", "urgency", "topic", "summary")},
            "attempts": 1,
            "latency_ms": 300 + (i * 37) % 900,
            "cost_usd": 0.00012,
            "prompt_tokens": 380 + i % 90,
            "completion_tokens": 40 + i % 40,
            "ts": ts,
        }
    )


async def write_rate(redis: Any, n: int) -> float:
    """Pairs/s of `write_pairs` for n pairs, IN_FLIGHT batches at a time."""
    from gateway.pairs import pairstore

    now = time.time()
    batches = [[record(i, now) for i in range(s, min(n, s + BATCH))] for s in range(0, n, BATCH)]
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def one(batch: list[PairRecord]) -> int:
        async with sem:
            added, _ = await pairstore.write_pairs(redis, STREAM, batch)
            return added

    start = time.perf_counter()
    added = sum(await asyncio.gather(*(one(b) for b in batches)))
    elapsed = time.perf_counter() - start
    assert added == n, f"{added} of {n} stored"
    return n / elapsed


async def single_redis(root: Path, sample: int) -> dict[str, float]:
    import redis.asyncio as aioredis

    from gateway.infra import redis_keys
    from gateway.infra.embedded_redis import EmbeddedRedis
    from gateway.pairs import archive

    redis_keys.configure(cluster=False, pair_shards=1)
    server = EmbeddedRedis(root / "redis").start()
    try:
        client = aioredis.Redis.from_url(server.url)
        before = int((await client.info("memory"))["used_memory"])
        rate = await write_rate(client, sample)
        after = int((await client.info("memory"))["used_memory"])
        await asyncio.sleep(0.01)
        moved = await archive.archive_pairs(client, STREAM, str(root / "archive"), 0.0)
        await client.aclose()
    finally:
        server.stop(compact=False)  # a temporary data directory
    return {
        "single_pairs_per_s": rate,
        "redis_bytes_per_million": (after - before) / sample * 1e6,
        "archive_bytes_per_million": moved.bytes / moved.pairs * 1e6,
    }


async def cluster_rate(root: Path, sample: int) -> float:
    from devtools.redis_cluster import run_cluster
    from gateway.infra import redis_keys
    from gateway.infra.redis_client import client_for
    from gateway.infra.settings import Settings

    redis_keys.configure(cluster=True, pair_shards=6)
    try:
        with run_cluster(root / "cluster", appendonly=True) as cluster:
            settings = Settings(_env_file=None, redis_cluster=True)
            client = client_for(cluster.url, settings, timeout_s=10.0)
            await client.initialize()  # discover the nodes once, before the concurrent writes
            try:
                return await write_rate(client, sample)
            finally:
                await client.aclose()
    finally:
        redis_keys.configure(cluster=False, pair_shards=1)


async def export_time(root: Path, n: int) -> dict[str, float]:
    """Seconds to export n archived pairs (generated straight into archive partitions)."""
    import redis.asyncio as aioredis

    from gateway.infra import redis_keys
    from gateway.infra.embedded_redis import EmbeddedRedis
    from gateway.pairs import archive
    from training.export import collect

    url = str(root / "export-archive")
    fs, base = archive.open_fs(url)
    start_ts = time.time() - 30 * 86400
    step = 30 * 86400 / n
    chunk = 100_000
    for s in range(0, n, chunk):
        rows = []
        for i in range(s, min(n, s + chunk)):
            rec = record(i, start_ts + i * step)
            rows.append((f"{int(rec.ts * 1000)}-{i}", rec, rec.to_json()))
        archive.write_pair_files(fs, base, 0, rows)
    redis_keys.configure(cluster=False, pair_shards=1, archive_url=url)
    server = EmbeddedRedis(root / "redis-export").start()
    try:
        client = aioredis.Redis.from_url(server.url)
        began = time.perf_counter()
        _, counts = await collect(client, STREAM, allow_unreviewed_fields=True)
        elapsed = time.perf_counter() - began
        await client.aclose()
    finally:
        server.stop(compact=False)  # a temporary data directory
        redis_keys.configure(cluster=False, pair_shards=1)
    read = sum(counts.values())
    return {"export_pairs": float(n), "export_s": elapsed, "export_counted": float(read)}


def render(r: dict[str, Any]) -> str:
    mib = 1024 * 1024
    return "\n".join(
        [
            BEGIN,
            f"Measured by `make bench-redis` (`python -m tools.bench.redis`) on {r['machine']},"
            f" {r['date']}; redis-server {r['redis_version']}, AOF on (`appendfsync everysec`).",
            "",
            "| figure | measured |",
            "| --- | --- |",
            f"| pairs/s into one Redis (batches of {BATCH}, {IN_FLIGHT} in flight) |"
            f" {r['single_pairs_per_s']:,.0f} |",
            f"| pairs/s into a 3-master cluster (6 shards; all nodes on this one machine) |"
            f" {r['cluster_pairs_per_s']:,.0f} |",
            f"| Redis memory per million pairs (`INFO memory`, extrapolated from"
            f" {r['sample']:,} pairs) | {r['redis_bytes_per_million'] / mib:,.0f} MiB |",
            f"| archive (Parquet, zstd) bytes per million pairs (extrapolated from"
            f" {r['sample']:,} pairs) | {r['archive_bytes_per_million'] / mib:,.0f} MiB |",
            f"| time to export {r['export_pairs']:,.0f} archived pairs (generated) |"
            f" {r['export_s']:,.1f} s |",
            "",
            "Each pair: two seed reviews' text (`gateway/data/seed_reviews.jsonl`, ~60-250"
            " characters) and a full answer record.",
            END,
        ]
    )


def _redis_version() -> str:
    import subprocess

    binary = shutil.which("redis-server") or "redis-server"
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.split("v=")[-1].split()[0]


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    try:
        out: dict[str, Any] = {"sample": args.sample}
        out.update(await single_redis(root, args.sample))
        out["cluster_pairs_per_s"] = await cluster_rate(root, args.sample)
        out.update(await export_time(root, args.export_pairs))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out["redis_version"] = _redis_version()
    out["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
    out["date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=200_000)
    parser.add_argument("--export-pairs", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("reports/bench-redis.json"))
    parser.add_argument("--doc", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    block = render(result)
    print(block)
    if args.doc is not None:
        write_block(args.doc, block, BEGIN, END)


if __name__ == "__main__":
    main()
