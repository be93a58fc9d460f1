"""The pair log in Redis: writing batches, reading, erasure and retention.

Plain functions on a `redis.asyncio` client (bytes or decoded responses both work); records
are `gateway.pairs.record.PairRecord`.

Layout (key names from `gateway.infra.redis_keys`):

* the stream (`settings.pairs_stream`): one entry per pair, fields `request_id` and `data`
  (the record as orjson bytes, `PairRecord.to_fields`);
* `pair_index()`: hash request_id -> stream entry id;
* `review_pairs(review_id)`: set of the request_ids logged for a review (erasure).

Writes go through one Lua script per batch: it XADDs each record, sets its index entry and
adds it to its review's set, all atomically and in one round trip (the entry ids are only
known once XADD ran, so a plain pipeline would need a second round trip for the index). A
request_id already in the index is skipped, which makes replays of the spool idempotent: a
request_id is stored once (its first pair), whatever the retries.

Shards. With `GATEWAY_PAIR_SHARDS` > 1 (or on Redis Cluster) the log is N streams: a pair goes
to shard `redis_keys.pair_shard(request_id)`, whose stream, index and review sets share one
hash slot (`redis_keys.shard_*`), so the script runs on one node. A batch is split by shard
(one script call per shard, concurrently); readers merge the shards in entry-id order. With
one shard on a single Redis the names are the unsharded ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from gateway.infra import redis_keys
from gateway.pairs.record import PairRecord, StreamEntry

WRITE_SCRIPT = """
local added = 0
for i = 1, #ARGV, 3 do
  local rid = ARGV[i]
  if redis.call('HEXISTS', KEYS[2], rid) == 0 then
    local id = redis.call('XADD', KEYS[1], '*', 'request_id', rid, 'data', ARGV[i + 2])
    redis.call('HSET', KEYS[2], rid, id)
    if ARGV[i + 1] ~= '' then redis.call('SADD', ARGV[i + 1], rid) end
    added = added + 1
  end
end
-- The server's run_id changes on every restart: the writer uses it to notice a restart that
-- may have lost acknowledged writes. Read here, it costs no extra round trip or INFO parsing.
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
return {added, run_id}
"""
WRITE_SCRIPT_SHA = hashlib.sha1(WRITE_SCRIPT.encode()).hexdigest()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _run_script(redis: aioredis.Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
    try:
        return await redis.evalsha(WRITE_SCRIPT_SHA, len(keys), *keys, *args)
    except NoScriptError:  # first call on this server (or after a restart)
        return await redis.eval(WRITE_SCRIPT, len(keys), *keys, *args)


async def write_pairs(
    redis: aioredis.Redis, stream: str, records: Iterable[PairRecord]
) -> tuple[int, str]:
    """Store a batch, one round trip per shard (concurrently); returns (records added, the
    run_id of the server(s) holding the shards written: one id per shard, joined).

    The run_id changes when a Redis process restarts (or a replica takes over a shard): the
    caller uses it to notice a restart that may have lost its last acknowledged writes.
    """
    by_shard: dict[int, list[str | bytes]] = {}
    n = redis_keys.pair_shards()
    for rec in records:
        entry = rec.to_fields()
        shard = redis_keys.pair_shard(rec.request_id) if n > 1 else 0
        by_shard.setdefault(shard, []).extend(
            (
                entry["request_id"],
                redis_keys.shard_review_pairs(shard, rec.review_id) if rec.review_id else "",
                entry["data"],
            )
        )
    shards = sorted(by_shard)

    def call(i: int) -> Awaitable[Any]:
        keys = (redis_keys.shard_stream(stream, i), redis_keys.shard_pair_index(i))
        return _run_script(redis, keys, by_shard[i])

    results: list[Any] = []
    if len(shards) > 1 and getattr(redis, "_initialize", False):
        # A cluster client about to (re)discover the nodes (first use, after a failover):
        # one call first, so that discovery does not run concurrently (redis-py's async
        # cluster client breaks connections when it does).
        results.append(await call(shards[0]))
    results += await asyncio.gather(*(call(i) for i in shards[len(results) :]))
    added = sum(int(r[0]) for r in results)
    run_ids = [
        f"{i}:{_text(r[1])}" if n > 1 else _text(r[1]) for i, r in zip(shards, results, strict=True)
    ]
    return added, ",".join(run_ids)


RUN_ID_SCRIPT = "return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')"


async def server_run_id(redis: aioredis.Redis, stream: str | None = None) -> str:
    """The run_id of the Redis process answering (new after every restart); with `stream`,
    of each process holding one of its shards (joined as `write_pairs` does)."""
    if stream is None or (redis_keys.pair_shards() == 1 and not redis_keys.cluster_layout()):
        info = await redis.info("server")
        return str(info["run_id"])
    n = redis_keys.pair_shards()
    found: list[Any] = await asyncio.gather(
        *(redis.eval(RUN_ID_SCRIPT, 1, redis_keys.shard_stream(stream or "", i)) for i in range(n))
    )
    if n == 1:
        return _text(found[0])
    return ",".join(f"{i}:{_text(r)}" for i, r in enumerate(found))


def shard_streams(stream: str) -> list[str]:
    """The stream of every shard of the pair log `stream`."""
    return [redis_keys.shard_stream(stream, i) for i in range(redis_keys.pair_shards())]


def _shard(request_id: str) -> int:
    return redis_keys.pair_shard(request_id) if redis_keys.pair_shards() > 1 else 0


async def index_entries(redis: aioredis.Redis, request_ids: Sequence[str]) -> list[str | None]:
    """The stream entry id of each request id (None: not in the index), one HMGET per
    shard."""
    groups: dict[int, list[int]] = {}
    for pos, rid in enumerate(request_ids):
        groups.setdefault(_shard(rid), []).append(pos)
    out: list[str | None] = [None] * len(request_ids)
    if not groups:
        return out
    pipe = redis.pipeline(transaction=False)
    for shard, positions in groups.items():
        pipe.hmget(redis_keys.shard_pair_index(shard), [request_ids[p] for p in positions])
    for positions, found in zip(groups.values(), await pipe.execute(), strict=True):
        for pos, entry_id in zip(positions, found, strict=True):
            out[pos] = None if entry_id is None else _text(entry_id)
    return out


async def review_request_ids(redis: aioredis.Redis, review_id: str) -> list[str]:
    """Every request id logged for `review_id`, over all shards, sorted."""
    n = redis_keys.pair_shards()
    if n == 1:
        members = await redis.smembers(redis_keys.shard_review_pairs(0, review_id))
        return sorted(_text(m) for m in members)
    pipe = redis.pipeline(transaction=False)
    for i in range(n):
        pipe.smembers(redis_keys.shard_review_pairs(i, review_id))
    return sorted({_text(m) for found in await pipe.execute() for m in found})


def _id_key(entry_id: bytes | str | None) -> tuple[int, int]:
    ms, _, seq = _text(entry_id or "0").partition("-")
    return int(ms), int(seq or 0)


async def revrange(
    redis: aioredis.Redis, stream: str, high: bytes | str, count: int
) -> list[StreamEntry]:
    """Up to `count` entries below `high` (an entry id, `(id` exclusive, or `+`), newest
    first over every shard (merged by entry id)."""
    streams = shard_streams(stream)
    if len(streams) == 1:
        one: list[StreamEntry] | None = await redis.xrevrange(streams[0], high, "-", count=count)
        return list(one or [])
    pipe = redis.pipeline(transaction=False)
    for name in streams:
        pipe.xrevrange(name, high, "-", count=count)
    merged = [e for found in await pipe.execute() for e in (found or [])]
    merged.sort(key=lambda e: _id_key(e[0]), reverse=True)
    return merged[:count]


async def _xrange(
    redis: aioredis.Redis,
    stream: str,
    start: bytes | str,
    end: bytes | str,
    count: int | None = None,
) -> list[StreamEntry]:
    result: list[StreamEntry] | None = await redis.xrange(stream, start, end, count=count)
    return list(result or [])


async def get_pair(redis: aioredis.Redis, stream: str, request_id: str) -> PairRecord | None:
    """The pair logged for `request_id` (with its `stream_id`), or None."""
    shard = _shard(request_id)
    entry_id = await redis.hget(redis_keys.shard_pair_index(shard), request_id)
    if entry_id is None:
        return None
    entries = await _xrange(redis, redis_keys.shard_stream(stream, shard), entry_id, entry_id)
    if not entries:
        return None  # trimmed by retention or erased
    return PairRecord.from_fields(*entries[0])


async def get_pairs(
    redis: aioredis.Redis, stream: str, request_ids: Sequence[str]
) -> list[PairRecord | None]:
    """`get_pair` for many ids in two round trips (one connection, whatever the count)."""
    if not request_ids:
        return []
    entry_ids = await index_entries(redis, request_ids)
    pipe = redis.pipeline(transaction=False)
    for rid, entry_id in zip(request_ids, entry_ids, strict=True):
        if entry_id is not None:
            pipe.xrange(redis_keys.shard_stream(stream, _shard(rid)), entry_id, entry_id)
    found = iter(await pipe.execute())
    out: list[PairRecord | None] = []
    for entry_id in entry_ids:
        entries = next(found) if entry_id is not None else None
        out.append(PairRecord.from_fields(*entries[0]) if entries else None)
    return out


async def _iter_one(
    redis: aioredis.Redis, stream: str, start_id: str, end_id: str, count: int
) -> AsyncIterator[StreamEntry]:
    start = start_id
    while True:
        entries = await _xrange(redis, stream, start, end_id, count)
        for entry in entries:
            yield entry
        if len(entries) < count:
            return
        start = "(" + _text(entries[-1][0] or b"")


async def iter_entries(
    redis: aioredis.Redis, stream: str, start_id: str = "-", end_id: str = "+", *, count: int = 500
) -> AsyncIterator[StreamEntry]:
    """Every stream entry of every shard from `start_id` (inclusive), merged in entry-id
    order, fetched `count` at a time per shard."""
    streams = shard_streams(stream)
    if len(streams) == 1:
        async for entry in _iter_one(redis, streams[0], start_id, end_id, count):
            yield entry
        return
    iters = [_iter_one(redis, name, start_id, end_id, count) for name in streams]
    heap: list[tuple[tuple[int, int], int, StreamEntry]] = []
    for i, it in enumerate(iters):
        first = await anext(it, None)
        if first is not None:
            heap.append((_id_key(first[0]), i, first))
    heapq.heapify(heap)
    while heap:
        _, i, entry = heapq.heappop(heap)
        yield entry
        following = await anext(iters[i], None)
        if following is not None:
            heapq.heappush(heap, (_id_key(following[0]), i, following))


async def iter_pairs(
    redis: aioredis.Redis,
    stream: str,
    start_id: str = "-",
    end_id: str = "+",
    *,
    count: int = 500,
    dedupe: bool = False,
    with_archive: bool = False,
) -> AsyncIterator[PairRecord]:
    """Every pair from `start_id` (inclusive) in stream order (shards merged by entry id),
    fetched `count` at a time. With `with_archive` and an archive configured, the archived
    pairs (older) come first, read as one with the hot window.

    With `dedupe`, each request_id is yielded once: its first occurrence.
    """
    seen: set[str] = set()
    url = redis_keys.archive_url() if with_archive else None
    if url is not None:
        from gateway.pairs import archive

        since = None if start_id == "-" else int(start_id.partition("-")[0]) / 1000
        for record in archive.iter_archived(url, since=since):
            # an archived pair may still be in Redis (a crash between write and trim)
            if record.request_id in seen:
                continue
            seen.add(record.request_id)
            yield record
    async for entry_id, fields in iter_entries(redis, stream, start_id, end_id, count=count):
        record = PairRecord.from_fields(entry_id, fields)
        if dedupe or url is not None:
            if record.request_id in seen:
                continue
            seen.add(record.request_id)
        yield record


async def delete_review(redis: aioredis.Redis, stream: str, review_id: str) -> int:
    """Erase a review: its stream entries, index entries and corrections; returns entries
    deleted from the stream. One transaction per shard and one for the corrections (each
    group shares a hash slot). (Pairs still queued or spooled in a gateway are written later:
    repeat the erasure after the gateways drained if that matters.)"""
    request_ids = await review_request_ids(redis, review_id)
    if not request_ids:
        return 0
    entry_ids = await index_entries(redis, request_ids)
    by_shard: dict[int, list[tuple[str, str | None]]] = {}
    for rid, eid in zip(request_ids, entry_ids, strict=True):
        by_shard.setdefault(_shard(rid), []).append((rid, eid))
    deleted = 0
    for shard in range(redis_keys.pair_shards()):
        rows = by_shard.get(shard, [])
        pipe = redis.pipeline(transaction=True)
        ids = [eid for _, eid in rows if eid is not None]
        if ids:
            pipe.xdel(redis_keys.shard_stream(stream, shard), *ids)
        if rows:
            pipe.hdel(redis_keys.shard_pair_index(shard), *(rid for rid, _ in rows))
        pipe.delete(redis_keys.shard_review_pairs(shard, review_id))
        results = await pipe.execute()
        deleted += int(results[0]) if ids else 0
    pipe = redis.pipeline(transaction=True)
    pipe.delete(*(redis_keys.corrections(rid) for rid in request_ids))
    pipe.zrem(redis_keys.corrected_set(), *request_ids)
    pipe.zrem(redis_keys.review_queue(), *request_ids)
    await pipe.execute()
    return deleted


async def trim_older_than(
    redis: aioredis.Redis, stream: str, max_age_s: float, *, chunk: int = 1000
) -> int:
    """Retention: remove the index and review-set entries of pairs stored more than
    `max_age_s` ago (by entry id time), then XTRIM MINID each shard; returns entries removed.

    Exact trimming (not `~`): an entry older than the cutoff never outlives its index entry.
    """
    cutoff = f"{int((time.time() - max_age_s) * 1000)}-0"
    removed = 0
    for shard in range(redis_keys.pair_shards()):
        removed += await trim_shard_before(redis, stream, shard, cutoff, chunk=chunk)
    return removed


async def trim_shard_before(
    redis: aioredis.Redis, stream: str, shard: int, cutoff: str, *, chunk: int = 1000
) -> int:
    """`trim_older_than` for one shard and an entry-id cutoff (exclusive)."""
    name = redis_keys.shard_stream(stream, shard)
    start = "-"
    while True:
        entries = await _xrange(redis, name, start, "(" + cutoff, chunk)
        if not entries:
            break
        pipe = redis.pipeline(transaction=False)
        rids = []
        for entry_id, fields in entries:
            record = PairRecord.from_fields(entry_id, fields)
            rids.append(record.request_id)
            if record.review_id:
                pipe.srem(redis_keys.shard_review_pairs(shard, record.review_id), record.request_id)
        pipe.hdel(redis_keys.shard_pair_index(shard), *rids)
        await pipe.execute()
        if len(entries) < chunk:
            break
        start = "(" + _text(entries[-1][0] or b"")
    removed: int = await redis.xtrim(name, minid=cutoff, approximate=False)
    return removed
