"""The Parquet archive: pairs past the hot window, every correction, and the state needed to
rebuild Redis (model registry, weights and their history, runtime variants).

Layout under the archive root (a directory or any fsspec URL, `GATEWAY_ARCHIVE_URL`):

* `pairs/date=YYYY-MM-DD/experiment=NAME/part-s{shard}-{first entry id}.parquet`: one row per
  pair (columns below; `data` is the record's stored JSON, so a pair reads back exactly). Hive
  partitioning: DuckDB, pyarrow.dataset or Spark read the tree as one table.
* `corrections/batch-{first outbox id}.parquet`: corrections written through within seconds
  of being saved (`flush_corrections`, from the outbox stream `store_corrections` appends to in
  the same transaction); `corrections/compacted-*.parquet`: batches merged (`compact`).
  Joined to pairs by `request_id`.
* `state/snapshot.json`: registry, weights, history and runtime variants (`snapshot_state`).

Every file is written whole and atomically (local: temp file, fsync, rename; object stores:
one PUT), and Redis is trimmed only after the write returned. A crash in between leaves a
pair in both places; readers keep one copy per request_id (`read_pairs`), so nothing is lost
or counted twice. File names are deterministic, so a rerun overwrites rather than duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict, cast

import orjson
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from gateway.infra import redis_keys
from gateway.pairs import pairstore
from gateway.pairs.record import PairRecord

if TYPE_CHECKING:
    import pyarrow as pa
    from fsspec import AbstractFileSystem

    from gateway.pairs.corrections import Correction

log = logging.getLogger("triage_gateway")

CHUNK = 50_000
"""Stream entries read (and written as one set of files) per step of `archive_pairs`."""
OUTBOX_BATCH = 10_000
FLUSH_EVERY_S = 2.0
SNAPSHOT_EVERY_S = 10.0
COMPACT_AFTER = 50
"""Correction batch files that trigger a compaction."""
LOCK_MS = 30_000

PAIR_COLUMNS = (
    "request_id",
    "review_id",
    "experiment",
    "variant",
    "app",
    "purpose",
    "shadow",
    "category",
    "urgency",
    "ts",
    "stream_id",
    "data",
)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def open_fs(url: str) -> tuple[AbstractFileSystem, str]:
    """The filesystem and root path of an archive URL (a plain path is a local directory)."""
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(url)
    return fs, str(root).rstrip("/")


def _is_local(fs: AbstractFileSystem) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def put_atomic(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write `data` at `path` whole or not at all, durably, before returning."""
    if not _is_local(fs):
        fs.pipe_file(path, data)  # an object-store PUT is atomic
        return
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{uuid.uuid4().hex}")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _read_table(fs: AbstractFileSystem, path: str) -> pa.Table:
    import pyarrow.parquet as pq

    with fs.open(path, "rb") as handle:
        return pq.read_table(handle)


def _files(fs: AbstractFileSystem, root: str, sub: str) -> list[str]:
    base = f"{root}/{sub}"
    if not fs.exists(base):
        return []
    return sorted(str(p) for p in fs.find(base) if str(p).endswith(".parquet"))


# -- pairs ------------------------------------------------------------------------------


def _pairs_table(rows: list[tuple[str, PairRecord, bytes]]) -> pa.Table:
    import pyarrow as pa

    cols: dict[str, list[Any]] = {c: [] for c in PAIR_COLUMNS}
    for entry_id, rec, data in rows:
        cols["request_id"].append(rec.request_id)
        cols["review_id"].append(rec.review_id)
        cols["experiment"].append(rec.experiment)
        cols["variant"].append(rec.variant)
        cols["app"].append(rec.app)
        cols["purpose"].append(getattr(rec, "purpose", "serve"))
        cols["shadow"].append(rec.shadow)
        cols["category"].append(rec.triage.category)
        cols["urgency"].append(rec.triage.urgency)
        cols["ts"].append(rec.ts)
        cols["stream_id"].append(entry_id)
        cols["data"].append(data)
    schema = pa.schema(
        [(c, pa.string()) for c in PAIR_COLUMNS[:6]]
        + [("shadow", pa.bool_()), ("category", pa.string()), ("urgency", pa.string())]
        + [("ts", pa.float64()), ("stream_id", pa.string()), ("data", pa.binary())]
    )
    return pa.table(cols, schema=schema)


def _partition(rec: PairRecord) -> tuple[str, str]:
    day = datetime.fromtimestamp(rec.ts or 0, UTC).strftime("%Y-%m-%d")
    experiment = rec.experiment or "_none"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in experiment)
    return day, safe


def write_pair_files(
    fs: AbstractFileSystem, root: str, shard: int, rows: list[tuple[str, PairRecord, bytes]]
) -> tuple[int, int]:
    """Write one chunk of stream entries as one file per (date, experiment); returns (files,
    bytes)."""
    groups: dict[tuple[str, str], list[tuple[str, PairRecord, bytes]]] = {}
    for row in rows:
        groups.setdefault(_partition(row[1]), []).append(row)
    first = rows[0][0]
    files = size = 0
    for (day, experiment), members in sorted(groups.items()):
        data = _parquet_bytes(_pairs_table(members))
        path = f"{root}/pairs/date={day}/experiment={experiment}/part-s{shard}-{first}.parquet"
        put_atomic(fs, path, data)
        files, size = files + 1, size + len(data)
    return files, size


@dataclass
class ArchiveRun:
    """What one `archive_pairs` run moved."""

    pairs: int = 0
    files: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"pairs": self.pairs, "files": self.files, "bytes": self.bytes}


def _next_id(entry_id: str) -> str:
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


async def archive_pairs(
    redis: aioredis.Redis, stream: str, url: str, older_than_s: float, *, chunk: int = CHUNK
) -> ArchiveRun:
    """Move the pairs logged more than `older_than_s` ago from every shard to the archive:
    each chunk is written (durably) first, then trimmed from Redis."""
    fs, root = open_fs(url)
    cutoff = f"{int((time.time() - older_than_s) * 1000)}-0"
    run = ArchiveRun()
    for shard in range(redis_keys.pair_shards()):
        name = redis_keys.shard_stream(stream, shard)
        while True:
            entries: Any = await redis.xrange(name, "-", "(" + cutoff, count=chunk)
            if not entries:
                break
            rows = []
            for entry_id, fields in entries:
                eid = _text(entry_id)
                rec = PairRecord.from_fields(eid, fields)
                raw = fields.get(b"data", fields.get("data")) or rec.to_json()
                rows.append((eid, rec, raw if isinstance(raw, bytes) else raw.encode()))
            files, size = await asyncio.to_thread(write_pair_files, fs, root, shard, rows)
            await pairstore.trim_shard_before(redis, stream, shard, _next_id(rows[-1][0]))
            run.pairs, run.files, run.bytes = (
                run.pairs + len(rows),
                run.files + files,
                run.bytes + size,
            )
            if len(entries) < chunk:
                break
    return run


def iter_archived(url: str, *, since: float | None = None) -> Iterator[PairRecord]:
    """Every archived pair (logged at or after `since` when given), oldest first per
    partition, partitions by date."""
    fs, root = open_fs(url)
    min_day = None if since is None else datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d")
    by_day: dict[str, list[str]] = {}
    for path in _files(fs, root, "pairs"):
        day = path.split("date=", 1)[1][:10] if "date=" in path else ""
        if min_day is None or day >= min_day:
            by_day.setdefault(day, []).append(path)
    for day in sorted(by_day):
        rows: list[tuple[float, str, bytes, str]] = []
        for path in by_day[day]:
            table = _read_table(fs, path).select(["ts", "stream_id", "data", "request_id"])
            cols = table.to_pydict()
            rows.extend(
                zip(cols["ts"], cols["stream_id"], cols["data"], cols["request_id"], strict=True)
            )
        rows.sort(key=lambda r: (r[0] or 0.0, r[1]))
        for ts, stream_id, data, rid in rows:
            if since is not None and (ts or 0.0) < since:
                continue
            yield PairRecord.from_json(data, stream_id=stream_id, request_id=rid)


# -- corrections ----------------------------------------------------------------------


def _corrections_table(records: list[Correction]) -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {
            "id": [str(r.get("id")) for r in records],
            "request_id": [str(r.get("request_id")) for r in records],
            "review_id": [r.get("review_id") for r in records],
            "created_at": [str(r.get("created_at")) for r in records],
            "record": [orjson.dumps(r) for r in records],
        },
        schema=pa.schema(
            [
                ("id", pa.string()),
                ("request_id", pa.string()),
                ("review_id", pa.string()),
                ("created_at", pa.string()),
                ("record", pa.binary()),
            ]
        ),
    )


async def flush_corrections(redis: aioredis.Redis, url: str) -> int:
    """Write the corrections waiting in the outbox to one batch file, then drop them from the
    outbox; returns how many. One process at a time (a lock key); others return 0."""
    token = uuid.uuid4().hex
    if not await redis.set(redis_keys.archive_lock(), token, nx=True, px=LOCK_MS):
        return 0
    fs, root = open_fs(url)
    total = 0
    try:
        while True:
            entries: Any = await redis.xrange(
                redis_keys.corrections_outbox(), "-", "+", count=OUTBOX_BATCH
            )
            if not entries:
                break
            records = [_correction(f.get(b"c", f.get("c"))) for _, f in entries]
            first = _text(entries[0][0])
            data = _parquet_bytes(_corrections_table(records))
            await asyncio.to_thread(
                put_atomic, fs, f"{root}/corrections/batch-{first}.parquet", data
            )
            await redis.xdel(redis_keys.corrections_outbox(), *(e for e, _ in entries))
            total += len(entries)
            if len(entries) < OUTBOX_BATCH:
                break
    finally:
        held = await redis.get(redis_keys.archive_lock())
        if held is not None and _text(held) == token:
            await redis.delete(redis_keys.archive_lock())
    if total:
        await asyncio.to_thread(compact, url)
    return total


def _correction(raw: bytes | str) -> Correction:
    """A correction as `gateway.pairs.corrections` stored it (the outbox and the archive hold
    its JSON as is)."""
    return cast("Correction", orjson.loads(raw))


def read_corrections(url: str) -> list[Correction]:
    """Every archived correction once (by id), oldest first."""
    fs, root = open_fs(url)
    seen: dict[str, Correction] = {}
    for path in _files(fs, root, "corrections"):
        for raw in _read_table(fs, path).column("record").to_pylist():
            record = _correction(raw)
            seen.setdefault(str(record.get("id")), record)
    return sorted(seen.values(), key=lambda r: (str(r.get("created_at")), str(r.get("id"))))


def compact(url: str, *, after: int = COMPACT_AFTER) -> int:
    """Merge the correction batch files into one when there are at least `after`; the merged
    file is written before the batches are removed. Returns files merged."""
    fs, root = open_fs(url)
    batches = [p for p in _files(fs, root, "corrections") if "/batch-" in p]
    if len(batches) < after:
        return 0
    import pyarrow as pa

    tables = [_read_table(fs, p) for p in batches]
    merged = pa.concat_tables(tables)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = f"{root}/corrections/compacted-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
    put_atomic(fs, path, _parquet_bytes(merged))
    for p in batches:
        fs.rm(p)
    return len(batches)


# -- erasure ------------------------------------------------------------------------------


def _erase_files(fs: AbstractFileSystem, paths: list[str], review_id: str) -> int:
    import pyarrow.compute as pc

    removed = 0
    for path in paths:
        table = _read_table(fs, path)
        hit = pc.fill_null(pc.equal(table.column("review_id"), review_id), False)
        n = int(pc.sum(hit).as_py() or 0)
        if not n:
            continue
        kept = table.filter(pc.invert(hit))
        if kept.num_rows:
            put_atomic(fs, path, _parquet_bytes(kept))
        else:
            fs.rm(path)
        removed += n
    return removed


async def erase_review(redis: aioredis.Redis, url: str, review_id: str) -> tuple[int, int]:
    """Remove a review from the archive: the partitions holding it are rewritten without its
    rows (the outbox is flushed first, so no correction of it arrives later). Returns (pairs,
    corrections) removed."""
    with contextlib.suppress(Exception):
        await flush_corrections(redis, url)
    fs, root = open_fs(url)

    def run() -> tuple[int, int]:
        pairs = _erase_files(fs, _files(fs, root, "pairs"), review_id)
        fixes = _erase_files(fs, _files(fs, root, "corrections"), review_id)
        return pairs, fixes

    return await asyncio.to_thread(run)


# -- state snapshot and restore -----------------------------------------------------------


def _decode_hash(raw: Any) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in (raw or {}).items()}


def _encode_hash(values: Mapping[str, str]) -> dict[FieldT, EncodableT]:
    """A snapshot hash as redis-py's `hset` and `xadd` take it (their field type is wider)."""
    return dict(values.items())


async def _experiments(redis: aioredis.Redis) -> list[str]:
    prefix = f"{redis_keys.PREFIX}:{redis_keys.SCHEMA}:weights:"
    names = set()
    async for key in redis.scan_iter(match=prefix + "*", count=1000):
        name = _text(key)[len(prefix) :]
        if name.startswith("{") and name.endswith("}"):
            name = name[1:-1]
        names.add(name)
    return sorted(names)


class ExperimentState(TypedDict):
    """One experiment's hashes and history stream in `state/snapshot.json`, as Redis holds
    them (field -> stored string)."""

    weights: dict[str, str]
    history: list[tuple[str, dict[str, str]]]
    """(stream entry id, fields), oldest first; a JSON array of two."""
    variants: dict[str, str]


class StateSnapshot(TypedDict):
    """`state/snapshot.json`: what `restore` puts back beside the corrections."""

    registry: dict[str, str]
    experiments: dict[str, ExperimentState]


async def snapshot(redis: aioredis.Redis) -> StateSnapshot:
    """The registry, and per experiment its weights, weights history and runtime variants."""
    out: StateSnapshot = {
        "registry": _decode_hash(await redis.hgetall(redis_keys.model_registry())),
        "experiments": {},
    }
    for name in await _experiments(redis):
        history: Any = await redis.xrange(redis_keys.weights_history(name), "-", "+")
        out["experiments"][name] = {
            "weights": _decode_hash(await redis.hgetall(redis_keys.weights(name))),
            "history": [(_text(i), _decode_hash(f)) for i, f in history],
            "variants": _decode_hash(await redis.hgetall(redis_keys.runtime_variants(name))),
        }
    return out


async def snapshot_state(redis: aioredis.Redis, url: str, *, last: str | None = None) -> str:
    """Write `state/snapshot.json` when it changed since the one whose digest is `last`;
    returns the digest of what the archive holds."""
    data = orjson.dumps(await snapshot(redis), option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(data).hexdigest()
    if digest != last:
        fs, root = open_fs(url)
        await asyncio.to_thread(put_atomic, fs, f"{root}/state/snapshot.json", data)
    return digest


@dataclass
class Restored:
    corrections: int
    pairs_corrected: int
    models: int
    experiments: int
    history_entries: int

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


async def restore(redis: aioredis.Redis, url: str) -> Restored:
    """Rebuild the corrections (lists and corrected set), the registry, weights, history and
    runtime variants from the archive into Redis. Refuses a Redis that already holds
    corrections or a registry (restore into an empty one)."""
    if await redis.zcard(redis_keys.corrected_set()) or await redis.hlen(
        redis_keys.model_registry()
    ):
        raise ValueError("redis already holds corrections or models: restore into an empty one")
    records = await asyncio.to_thread(read_corrections, url)
    by_pair: dict[str, list[Correction]] = {}
    for record in records:
        by_pair.setdefault(str(record["request_id"]), []).append(record)
    pipe = redis.pipeline(transaction=False)
    for n, (rid, fixes) in enumerate(by_pair.items(), 1):
        pipe.rpush(redis_keys.corrections(rid), *(orjson.dumps(r) for r in fixes))
        last = datetime.fromisoformat(str(fixes[-1]["created_at"])).timestamp()
        pipe.zadd(redis_keys.corrected_set(), {rid: last})
        if n % 1000 == 0:
            await pipe.execute()
            pipe = redis.pipeline(transaction=False)
    await pipe.execute()
    fs, root = open_fs(url)
    state: StateSnapshot = {"registry": {}, "experiments": {}}
    path = f"{root}/state/snapshot.json"
    if await asyncio.to_thread(fs.exists, path):
        state = cast(StateSnapshot, orjson.loads(await asyncio.to_thread(fs.cat_file, path)))
    if state["registry"]:
        await redis.hset(redis_keys.model_registry(), mapping=_encode_hash(state["registry"]))
    history = 0
    for name, exp in state["experiments"].items():
        if exp["weights"]:
            await redis.hset(redis_keys.weights(name), mapping=_encode_hash(exp["weights"]))
        if exp["variants"]:
            await redis.hset(
                redis_keys.runtime_variants(name), mapping=_encode_hash(exp["variants"])
            )
        for entry_id, fields in exp["history"]:
            await redis.xadd(redis_keys.weights_history(name), _encode_hash(fields), id=entry_id)
            history += 1
    return Restored(
        corrections=len(records),
        pairs_corrected=len(by_pair),
        models=len(state["registry"]),
        experiments=len(state["experiments"]),
        history_entries=history,
    )


# -- the gateway's schedule ---------------------------------------------------------------


async def run_forever(
    redis: aioredis.Redis, stream: str, url: str, *, hot_hours: float, archive_every_s: float
) -> None:
    """The gateway's archive task: corrections written through every `FLUSH_EVERY_S`, the
    state snapshot every `SNAPSHOT_EVERY_S`, pairs past `hot_hours` every `archive_every_s`
    (0: never here). Errors are logged and retried at the next round."""
    digest: str | None = None
    next_snapshot = next_archive = time.monotonic()
    while True:
        now = time.monotonic()
        try:
            await flush_corrections(redis, url)
            if now >= next_snapshot:
                digest = await snapshot_state(redis, url, last=digest)
                next_snapshot = now + SNAPSHOT_EVERY_S
            if archive_every_s > 0 and hot_hours > 0 and now >= next_archive:
                moved = await archive_pairs(redis, stream, url, hot_hours * 3600)
                next_archive = now + archive_every_s
                if moved.pairs:
                    log.info("pairs archived", extra={"fields": moved.to_dict()})
        except Exception as exc:
            log.warning("archive round failed", extra={"fields": {"error": repr(exc)[:300]}})
        await asyncio.sleep(FLUSH_EVERY_S)
