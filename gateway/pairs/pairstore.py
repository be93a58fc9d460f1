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
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Iterable, Sequence
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


async def write_pairs(
    redis: aioredis.Redis, stream: str, records: Iterable[PairRecord]
) -> tuple[int, str]:
    """Store a batch in one round trip; returns (records added, the server's run_id).

    The run_id changes when Redis restarts: the caller uses it to notice a restart that may
    have lost its last acknowledged writes.
    """
    args: list[str | bytes] = []
    for rec in records:
        entry = rec.to_fields()
        args += (
            entry["request_id"],
            redis_keys.review_pairs(rec.review_id) if rec.review_id else "",
            entry["data"],
        )
    keys = (stream, redis_keys.pair_index())
    try:
        result: Any = await redis.evalsha(WRITE_SCRIPT_SHA, 2, *keys, *args)
    except NoScriptError:  # first call on this server (or after a restart)
        result = await redis.eval(WRITE_SCRIPT, 2, *keys, *args)
    added, run_id = result
    return int(added), _text(run_id)


async def server_run_id(redis: aioredis.Redis) -> str:
    """The run_id of the Redis process answering (new after every restart)."""
    info = await redis.info("server")
    return str(info["run_id"])


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
    entry_id = await redis.hget(redis_keys.pair_index(), request_id)
    if entry_id is None:
        return None
    entries = await _xrange(redis, stream, entry_id, entry_id)
    if not entries:
        return None  # trimmed by retention or erased
    return PairRecord.from_fields(*entries[0])


async def get_pairs(
    redis: aioredis.Redis, stream: str, request_ids: Sequence[str]
) -> list[PairRecord | None]:
    """`get_pair` for many ids in two round trips (one connection, whatever the count)."""
    if not request_ids:
        return []
    entry_ids: list[bytes | str | None] = await redis.hmget(
        redis_keys.pair_index(), list(request_ids)
    )
    pipe = redis.pipeline(transaction=False)
    for entry_id in entry_ids:
        if entry_id is not None:
            pipe.xrange(stream, entry_id, entry_id)
    found = iter(await pipe.execute())
    out: list[PairRecord | None] = []
    for entry_id in entry_ids:
        entries = next(found) if entry_id is not None else None
        out.append(PairRecord.from_fields(*entries[0]) if entries else None)
    return out


async def iter_pairs(
    redis: aioredis.Redis,
    stream: str,
    start_id: str = "-",
    end_id: str = "+",
    *,
    count: int = 500,
    dedupe: bool = False,
) -> AsyncIterator[PairRecord]:
    """Every pair from `start_id` (inclusive) in stream order, fetched `count` at a time.

    With `dedupe`, each request_id is yielded once: its first occurrence.
    """
    seen: set[str] = set()
    start = start_id
    while True:
        entries = await _xrange(redis, stream, start, end_id, count)
        for entry_id, fields in entries:
            record = PairRecord.from_fields(entry_id, fields)
            if dedupe:
                if record.request_id in seen:
                    continue
                seen.add(record.request_id)
            yield record
        if len(entries) < count:
            return
        start = "(" + _text(entries[-1][0] or b"")


async def delete_review(redis: aioredis.Redis, stream: str, review_id: str) -> int:
    """Erase a review: its stream entries, index entries and corrections; returns entries
    deleted from the stream. (Pairs still queued or spooled in a gateway are written later:
    repeat the erasure after the gateways drained if that matters.)"""
    members_key = redis_keys.review_pairs(review_id)
    members = await redis.smembers(members_key)
    request_ids = sorted(_text(m) for m in members)
    if not request_ids:
        return 0
    index = redis_keys.pair_index()
    entry_ids = [e for e in await redis.hmget(index, request_ids) if e is not None]
    pipe = redis.pipeline(transaction=True)
    if entry_ids:
        pipe.xdel(stream, *entry_ids)
    pipe.hdel(index, *request_ids)
    pipe.delete(members_key, *(redis_keys.corrections(rid) for rid in request_ids))
    pipe.zrem(redis_keys.corrected_set(), *request_ids)
    pipe.zrem(redis_keys.review_queue(), *request_ids)
    results = await pipe.execute()
    return int(results[0]) if entry_ids else 0


async def trim_older_than(
    redis: aioredis.Redis, stream: str, max_age_s: float, *, chunk: int = 1000
) -> int:
    """Retention: remove the index and review-set entries of pairs stored more than
    `max_age_s` ago (by entry id time), then XTRIM MINID the stream; returns entries removed.

    Exact trimming (not `~`): an entry older than the cutoff never outlives its index entry.
    """
    cutoff = f"{int((time.time() - max_age_s) * 1000)}-0"
    start = "-"
    while True:
        entries = await _xrange(redis, stream, start, "(" + cutoff, chunk)
        if not entries:
            break
        pipe = redis.pipeline(transaction=False)
        rids = []
        for entry_id, fields in entries:
            record = PairRecord.from_fields(entry_id, fields)
            rids.append(record.request_id)
            if record.review_id:
                pipe.srem(redis_keys.review_pairs(record.review_id), record.request_id)
        pipe.hdel(redis_keys.pair_index(), *rids)
        await pipe.execute()
        if len(entries) < chunk:
            break
        start = "(" + _text(entries[-1][0] or b"")
    removed: int = await redis.xtrim(stream, minid=cutoff, approximate=False)
    return removed
