"""The zero-loss pair log: every (review, answer) pair the gateway served reaches the Redis
stream, whatever happens to Redis, and survives a graceful gateway stop.

Path of a record: `submit()` (request path: append to an in-memory deque, O(1), never blocks
or raises) -> the writer task, which redacts each batch in a worker thread (`redact_records`:
personal data is masked before anything leaves memory, and the request path never pays for it)
and sends batches of up to `pair_batch_size` records in one round trip
(`pairstore.write_pairs`) -> the stream. When Redis fails or is slow
(socket timeout 2 s), the batch in flight and everything queued go to the local spool
(`gateway.pairs.spool`, fsynced) and the writer backs off (50 ms doubling to 2 s). Once Redis
answers again the spool is replayed oldest first, before anything queued after it, then
emptied. When the queue holds more than `pair_queue_size` records (the writer falls
behind) it is moved to the spool too: the spool always holds records older than the queue,
which keeps the order. (`submit` can't write files without blocking, so a full queue is
spooled by the writer between two round trips: memory stays bounded by the queue size plus
what arrives during one round trip, at most the 2 s socket timeout.)

Redis restarts. Redis acknowledges a write before it is durable: with `appendfsync
everysec` the AOF is fsynced about once a second (and its write(2) may be postponed up to
2 s while a previous fsync is slow). A graceful stop (SIGTERM) flushes the AOF; a kill -9
loses what was still in Redis' own buffers, and a host crash what was not yet fsynced (in
tests a plain kill -9 lost nothing: the AOF write(2) normally precedes the reply). So
the writer keeps every acknowledged record in memory (`_recent`) until the same Redis process
(same `run_id`, returned with every batch) has been seen alive `DURABLE_AFTER_S` = 3 s after
the acknowledgement. When a batch or a probe (each second while idle) comes back with a new
`run_id`, Redis restarted: the records still in `_recent` are queued again, and the write
script skips the request_ids Redis kept (writes are idempotent per request_id), so nothing
acknowledged before a restart is lost and nothing is stored twice.

Gateway stops. `close()` (from `GatewayState.close`, i.e. on SIGTERM via the uvicorn lifespan)
writes the queue to Redis or, failing that, to the spool, and spools the records still in
`_recent` too: the next process replays them and the script skips what Redis kept. A SIGKILL
of the gateway loses the in-memory queue (a few ms of pairs under normal operation).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff

from gateway.infra import redis_keys
from gateway.infra.metrics import GatewayMetrics
from gateway.infra.redis_client import client_for
from gateway.infra.settings import Settings
from gateway.pairs.pairstore import server_run_id, trim_older_than, write_pairs
from gateway.pairs.record import PairRecord
from gateway.pairs.redaction import redact
from gateway.pairs.spool import Spool

log = logging.getLogger("triage_gateway")

DURABLE_AFTER_S = 3.0
PROBE_EVERY_S = 1.0
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 2.0
LINGER_S = 0.005
"""How long the writer waits for a batch to fill before sending a partial one."""
TRIM_EVERY_S = 60.0
RECENT_MAX = 200_000


def pair_client(url: str) -> aioredis.Redis:
    """A Redis client for the pair writer: 2 s timeouts and no retries (the writer retries,
    spooling meanwhile)."""
    return aioredis.Redis.from_url(
        url, socket_timeout=2.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
    )


def redact_record(record: PairRecord) -> PairRecord:
    """The record with personal data masked in its free-text fields."""
    summary = record.triage.summary
    return dataclasses.replace(
        record,
        text=redact(record.text) if record.text else record.text,
        raw_output=redact(record.raw_output) if record.raw_output else record.raw_output,
        triage=dataclasses.replace(record.triage, summary=redact(summary))
        if summary
        else record.triage,
    )


def redact_records(records: list[PairRecord]) -> list[PairRecord]:
    """`redact_record` of each record; a record whose redaction fails keeps no free text.
    Idempotent, so records queued again after a Redis restart may pass twice."""
    out = []
    for record in records:
        try:
            out.append(redact_record(record))
        except Exception:
            log.exception("pair redaction failed: text fields dropped")
            failed = "[redaction failed]"
            out.append(dataclasses.replace(record, text=failed, raw_output=failed))
    return out


class PairLog:
    """The `PairSink` of the gateway: see the module docstring."""

    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        metrics: GatewayMetrics,
        *,
        owns_client: bool = False,
    ) -> None:
        self._redis = redis
        self._owns_client = owns_client
        self._stream = redis_keys.pairs_stream(settings.pairs_stream)
        self._max_queue = settings.pair_queue_size
        self._batch = settings.pair_batch_size
        self._retention_s = settings.pair_retention_days * 86_400
        self._redact = settings.redact
        self._archive = (settings.archive_url, settings.pair_hot_hours, settings.archive_every_s)
        self._metrics = metrics
        self.spool = Spool(settings.data_dir / "spool")
        self._pending: deque[PairRecord] = deque()
        self._inflight: list[PairRecord] = []
        self._recent: deque[tuple[float, PairRecord]] = deque()
        self._run_id: str | None = None
        self._seen_at = 0.0
        self._failing = False
        self._deadline = float("inf")
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def from_url(cls, url: str, settings: Settings, metrics: GatewayMetrics) -> PairLog:
        """A pair log with its own client (closed by `close`); on Redis Cluster the cluster
        client, with two quick retries so that a failover's MOVED/refresh is absorbed."""
        if settings.redis_cluster:
            retry = Retry(ExponentialBackoff(cap=0.2, base=0.02), 2)
            client = client_for(url, settings, timeout_s=2.0, connect_timeout_s=1.0, retry=retry)
            return cls(client, settings, metrics, owns_client=True)
        return cls(pair_client(url), settings, metrics, owns_client=True)

    def submit(self, record: PairRecord) -> None:
        """Queue a pair for the stream: O(1), never blocks, never raises. Redaction happens in
        the writer, off the request path."""
        self._pending.append(record)
        if not self._wake.is_set():
            self._wake.set()

    def queued(self) -> int:
        """Records in memory not yet known to be stored (queue plus the batch in flight)."""
        return len(self._pending) + len(self._inflight)

    async def start(self) -> None:
        """Open the spool (adopting those of dead processes) and start the writer."""
        waiting = await asyncio.to_thread(self.spool.open)
        self._metrics.pair_spool_records.set(waiting)
        if waiting:
            log.info("pair spool to replay", extra={"fields": {"records": waiting}})
        self._tasks.append(asyncio.create_task(self._run(), name="pair-log-writer"))
        if self._retention_s > 0:
            self._tasks.append(asyncio.create_task(self._trim_loop(), name="pair-log-trim"))
        url, hot_hours, every_s = self._archive
        if url:  # corrections written through, state snapshots, pairs past the hot window
            from gateway.pairs import archive

            job = archive.run_forever(
                self._redis, self._stream, url, hot_hours=hot_hours, archive_every_s=every_s
            )
            self._tasks.append(asyncio.create_task(job, name="pair-archive"))

    async def close(self, timeout_s: float = 10.0) -> None:
        """Write everything queued (spool first) to Redis within about `timeout_s`, or else
        to the spool; stop the tasks."""
        self._deadline = time.monotonic() + timeout_s
        self._failing = False  # Redis gets one more try, even if it was down until now
        self._stop.set()
        self._wake.set()
        if self._tasks:
            # The writer is not cancelled (that could interrupt a spool write): it stops at
            # the deadline, each of its steps being bounded by the 2 s Redis timeouts.
            await asyncio.gather(self._tasks[0], return_exceptions=True)
            for task in self._tasks[1:]:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._spool_leftovers()
        if self._owns_client:
            await self._redis.aclose()

    def _gauges(self) -> None:
        self._metrics.pair_queue_depth.set(self.queued())
        self._metrics.pair_spool_records.set(self.spool.count())

    async def _run(self) -> None:
        backoff = 0.0
        while not self._stopping_now():
            self._gauges()
            if len(self._pending) > self._max_queue:
                await self._spill()
            try:
                worked = await self._step()
            except Exception as exc:
                self._note_failure(exc)
                await self._spill()
                backoff = min(BACKOFF_MAX_S, max(BACKOFF_MIN_S, backoff * 2))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), backoff)
                continue
            if self._failing:
                self._failing = False
                log.info("pair log: redis answers again, spool replayed first")
            backoff = 0.0
            if not worked and not self._stop.is_set():
                await self._idle()

    def _stopping_now(self) -> bool:
        """On close: stop once everything is written, or Redis fails, or time is up."""
        if not self._stop.is_set():
            return False
        idle = not self._pending and not self.spool.count()
        return idle or self._failing or time.monotonic() > self._deadline

    async def _step(self) -> bool:
        """One unit of work: a spool batch, else a queued batch, else a probe if due."""
        if self.spool.count():
            batch = await asyncio.to_thread(self.spool.read_batch, self._batch)
            if batch.records:
                await self._send(batch.records)
            await asyncio.to_thread(self.spool.commit, batch)
            return True
        if self._pending:
            if len(self._pending) < self._batch and not self._stop.is_set():
                # Let a few more pairs arrive: one round trip for several requests costs less
                # CPU (gateway and Redis) than one per request at low concurrency.
                await asyncio.sleep(LINGER_S)
            n = min(self._batch, len(self._pending))
            self._inflight = [self._pending.popleft() for _ in range(n)]
            self._inflight = await self._redacted(self._inflight)
            await self._send(self._inflight)
            self._inflight = []
            return True
        if self._recent and time.monotonic() - self._seen_at >= PROBE_EVERY_S:
            self._observe(await server_run_id(self._redis, self._stream))
        return False

    async def _send(self, records: list[PairRecord]) -> None:
        added, run_id = await write_pairs(self._redis, self._stream, records)
        self._observe(run_id)
        now = self._seen_at
        self._recent.extend((now, r) for r in records)
        while len(self._recent) > RECENT_MAX:
            self._recent.popleft()
        self._metrics.pairs_logged.inc(added)

    async def _redacted(self, records: list[PairRecord]) -> list[PairRecord]:
        """`records` with personal data masked (when enabled), computed in a worker thread:
        redaction is linear in the text but a batch of long reviews still costs milliseconds,
        which must not stall the event loop."""
        if not self._redact:
            return records
        return await asyncio.to_thread(redact_records, records)

    def _observe(self, run_id: str) -> None:
        """Note which Redis process answered; re-queue `_recent` if Redis restarted."""
        now = time.monotonic()
        if self._run_id is not None and run_id != self._run_id and self._recent:
            lost = [r for _, r in self._recent]
            self._recent.clear()
            log.warning(
                "redis restarted: re-sending the pairs it may not have persisted",
                extra={"fields": {"records": len(lost)}},
            )
            self._pending.extendleft(reversed(lost))
        self._run_id, self._seen_at = run_id, now
        durable_before = now - DURABLE_AFTER_S
        while self._recent and self._recent[0][0] < durable_before:
            self._recent.popleft()

    def _note_failure(self, exc: Exception) -> None:
        if not self._failing:
            self._failing = True
            log.warning(
                "pair log: redis unavailable, spooling pairs locally",
                extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}},
            )

    async def _spill(self) -> None:
        """Move the batch in flight and the queue (oldest first) to the spool."""
        inflight, n = self._inflight, len(self._pending)
        records = [*inflight, *(self._pending[i] for i in range(n))]
        if not records:
            return
        records = await self._redacted(records)
        try:
            await asyncio.to_thread(self.spool.append, records)
        except OSError:
            log.exception("pair log: spool write failed, keeping pairs in memory")
            return
        self._inflight = []
        for _ in range(n):
            self._pending.popleft()
        self._gauges()

    async def _idle(self) -> None:
        self._wake.clear()
        if self._pending or self._stop.is_set():
            return
        timeout = PROBE_EVERY_S if self._recent else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _spool_leftovers(self) -> None:
        """On close: spool what is still queued, and the pairs not yet known to be durable
        in Redis (the next process replays them; the write script skips what Redis kept)."""
        self._pending.extend(r for _, r in self._recent)
        self._recent.clear()
        await self._spill()
        if self.queued():
            log.error("pair log: pairs lost at close", extra={"fields": {"lost": self.queued()}})
        self._gauges()

    async def _trim_loop(self) -> None:
        while True:
            try:
                removed = await trim_older_than(self._redis, self._stream, self._retention_s)
                if removed:
                    log.info("pair retention", extra={"fields": {"removed": removed}})
            except Exception as exc:
                log.warning("pair retention failed", extra={"fields": {"error": repr(exc)}})
            await asyncio.sleep(TRIM_EVERY_S)
