"""The review queue and the pair listings behind `GET /v1/pairs` and the review page.

Review-queue order: what a reviewer sees first is what makes each human minute count.

1. **Shadow disagreements**: served pairs whose shadow answer has another category. Two
   models disagree, so at least one is wrong; the correction settles a real question and
   feeds the A/B comparison. Newest first.
2. **Low model confidence**: served pairs whose `confidence` is below `LOW_CONFIDENCE`
   (0.6), lowest first. Only models that report a confidence (the local model) land here;
   these are the answers most likely to be wrong.
3. **Rare predicted classes**: pairs whose predicted category has a share below
   `RARE_SHARE` (10%) of the recent served pairs, rarest class first. Rare classes are
   where training data is thin, so each label there moves a fine-tuned model most.
4. **The rest**, newest first.

Each pair gets a priority score, lower = sooner: the tier (0-3) plus a fraction inside
[0, 1) that orders the tier (recency, confidence or class share). The scores live in the
sorted set `redis_keys.review_queue()`. `refresh_queue` rebuilds that set from the most recent
`QUEUE_WINDOW` stream entries (XREVRANGE), leaving out shadow pairs, duplicates and pairs that
already have a correction; the list endpoint calls it lazily, at most once every
`REFRESH_INTERVAL_S` across all workers (a `SET NX PX` marker). Storing a correction takes the
pair off the queue at once (`gateway.pairs.corrections.store_corrections`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis

from gateway.errors import InvalidRequestError
from gateway.infra import redis_keys
from gateway.pairs import pairstore
from gateway.pairs.corrections import Correction, last_corrections
from gateway.pairs.record import PairRecord, ShadowAnswer, StreamEntry

QUEUE_WINDOW = 5000
REFRESH_INTERVAL_S = 2.0
LOW_CONFIDENCE = 0.6
RARE_SHARE = 0.10
MAX_LIMIT = 200
SCAN_CAP = 20_000
"""Most stream entries one listing request reads; a sparse filter returns a cursor instead."""
_T_REF = 4_102_444_800.0  # 2100-01-01: (T_REF - ts) / T_REF is in (0, 1), smaller = newer

_STREAM_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")

Status = Literal["uncorrected", "corrected", "disagreement"]
TIERS = ("shadow_disagreement", "low_confidence", "rare_class", "recent")


Filters = tuple[str | None, str | None, str | None]
"""(variant, category, app): what a listing keeps (None: anything)."""


@dataclass(slots=True)
class PairItem:
    """One pair of a listing. Queue pages carry `queue` (score, reason); stream pages carry
    the last `correction`, and `shadow_answer` for `status=disagreement`."""

    pair: PairRecord
    corrected: bool
    queue: tuple[float, str] | None = None
    correction: Correction | None = None
    shadow_answer: ShadowAnswer | None = None

    def to_dict(self) -> dict[str, object]:
        out = self.pair.to_dict()
        if self.shadow_answer is not None:
            out["shadow_answer"] = self.shadow_answer.to_dict()
        out["corrected"] = self.corrected
        if self.queue is not None:
            out["queue_score"], out["queue_reason"] = self.queue
        else:
            out["correction"] = self.correction
        return out


@dataclass(frozen=True, slots=True)
class PairPage:
    """One page of a listing; pass `next_cursor` back for the next one (None: the end)."""

    items: list[PairItem]
    next_cursor: str | None

    def to_dict(self) -> dict[str, object]:
        return {"items": [i.to_dict() for i in self.items], "next_cursor": self.next_cursor}


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _xrevrange(
    redis: aioredis.Redis, stream: str, high: str, count: int
) -> list[StreamEntry]:
    return await pairstore.revrange(redis, stream, high, count)  # every shard, merged


def _recency(ts: float) -> float:
    return min(0.999999, max(0.0, (_T_REF - ts) / _T_REF))


def priority(pair: PairRecord, *, shadow_category: str | None, share: float) -> tuple[float, str]:
    """(score, reason) of one served pair; lower scores are reviewed sooner."""
    ts = pair.ts
    category = pair.triage.category
    if shadow_category is not None and shadow_category != category:
        return 0.0 + _recency(ts), TIERS[0]
    confidence = pair.confidence
    if isinstance(confidence, int | float) and confidence < LOW_CONFIDENCE:
        return 1.0 + max(0.0, float(confidence)) + _recency(ts) * 1e-3, TIERS[1]
    if share < RARE_SHARE:
        return 2.0 + share + _recency(ts) * 1e-3, TIERS[2]
    return 3.0 + _recency(ts), TIERS[3]


def reason_of(score: float) -> str:
    return TIERS[min(len(TIERS) - 1, max(0, int(score)))]


async def _corrected(redis: aioredis.Redis, request_ids: Sequence[str]) -> set[str]:
    if not request_ids:
        return set()
    scores = await redis.zmscore(redis_keys.corrected_set(), list(request_ids))
    return {rid for rid, s in zip(request_ids, scores, strict=True) if s is not None}


async def refresh_queue(
    redis: aioredis.Redis,
    stream: str,
    limit: int = QUEUE_WINDOW,
    *,
    force: bool = False,
    interval_s: float = REFRESH_INTERVAL_S,
) -> int | None:
    """Rebuild the review queue from the last `limit` pairs; returns its size, or None when
    another caller refreshed it less than `interval_s` ago (unless `force`)."""
    if not force:
        marker = redis_keys.review_queue_refreshed()
        if not await redis.set(marker, b"1", nx=True, px=max(1, int(interval_s * 1000))):
            return None
    entries = await _xrevrange(redis, stream, "+", limit)
    served: dict[str, PairRecord] = {}
    shadow_category: dict[str, str | None] = {}
    for entry_id, fields in entries:
        pair = PairRecord.from_fields(entry_id, fields)
        if not pair.request_id:
            continue
        if pair.shadow:
            served_id = pair.served_request_id
            if served_id and served_id not in shadow_category:
                shadow_category[served_id] = pair.triage.category
            continue
        served.setdefault(pair.request_id, pair)  # newest copy of a duplicate
    counts = Counter(p.triage.category for p in served.values())
    total = sum(counts.values()) or 1
    done = await _corrected(redis, list(served))
    scores: dict[str, float] = {}
    for rid, pair in served.items():
        if rid in done:
            continue
        category = pair.triage.category
        scores[rid], _ = priority(
            pair, shadow_category=shadow_category.get(rid), share=counts[category] / total
        )
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(redis_keys.review_queue())
        if scores:
            pipe.zadd(redis_keys.review_queue(), scores)
        await pipe.execute()
    return len(scores)


def _encode_queue_cursor(score: float, request_id: str) -> str:
    raw = orjson.dumps([score, request_id])
    return "q" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_queue_cursor(cursor: str) -> tuple[float, str]:
    try:
        body = cursor[1:] + "=" * (-len(cursor[1:]) % 4)
        score, rid = orjson.loads(base64.urlsafe_b64decode(body))
        return float(score), str(rid)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidRequestError("cursor: not a cursor this endpoint returned") from None


def _check_stream_cursor(cursor: str) -> tuple[int, int]:
    match = _STREAM_ID.fullmatch(cursor)
    ms, seq = (int(match[1]), int(match[2] or 0)) if match else (-1, -1)
    if not (0 <= ms < 2**64 and 0 <= seq < 2**64):
        raise InvalidRequestError("cursor: not a cursor this endpoint returned")
    return ms, seq


def _matches(pair: PairRecord, variant: str | None, category: str | None, app: str | None) -> bool:
    if pair.shadow:
        return False
    if variant is not None and pair.variant != variant:
        return False
    if category is not None and pair.triage.category != category:
        return False
    return app is None or pair.app == app


async def _shadow_answers(
    redis: aioredis.Redis, stream: str, request_ids: Sequence[str]
) -> dict[str, ShadowAnswer]:
    found = await pairstore.get_pairs(redis, stream, [f"{rid}:shadow" for rid in request_ids])
    return {
        rid: ShadowAnswer.of(s) for rid, s in zip(request_ids, found, strict=True) if s is not None
    }


async def _queue_page(
    redis: aioredis.Redis,
    stream: str,
    filters: Filters,
    cursor: str | None,
    limit: int,
) -> PairPage:
    await refresh_queue(redis, stream)
    after = _decode_queue_cursor(cursor) if cursor else None
    low: float | str = after[0] if after else "-inf"
    items: list[PairItem] = []
    offset, batch, more = 0, max(limit * 2, 50), False
    last: tuple[float, str] | None = None
    while len(items) < limit:
        chunk: Any = await redis.zrangebyscore(
            redis_keys.review_queue(), low, "+inf", start=offset, num=batch, withscores=True
        )
        offset += len(chunk)
        members = [(_s(m), float(s)) for m, s in chunk]
        if after is not None:
            members = [(m, s) for m, s in members if s > after[0] or m > after[1]]
        pairs = await pairstore.get_pairs(redis, stream, [m for m, _ in members])
        done = await _corrected(redis, [m for m, _ in members])
        for (rid, score), pair in zip(members, pairs, strict=True):
            if len(items) >= limit:
                more = True
                break
            last = (score, rid)
            if pair is None or rid in done or not _matches(pair, *filters):
                continue
            items.append(PairItem(pair, corrected=False, queue=(score, reason_of(score))))
        if len(chunk) < batch:
            break
        if len(items) >= limit:
            more = True
    next_cursor = _encode_queue_cursor(*last) if more and last is not None else None
    return PairPage(items, next_cursor)


async def _canonical(
    redis: aioredis.Redis, decoded: Sequence[PairRecord], filters: Filters
) -> list[PairRecord]:
    """Served pairs passing the filters, each once: should a record be in the stream twice,
    it is shown at the entry the pair index points to."""
    pairs = [p for p in decoded if p.request_id and _matches(p, *filters)]
    if not pairs:
        return []
    index = await pairstore.index_entries(redis, [p.request_id for p in pairs])
    return [p for p, i in zip(pairs, index, strict=True) if i is None or i == p.stream_id]


async def _stream_page(
    redis: aioredis.Redis,
    stream: str,
    status: Status | None,
    filters: Filters,
    cursor: str | None,
    limit: int,
) -> PairPage:
    if cursor is not None and _check_stream_cursor(cursor) == (0, 0):
        return PairPage([], None)  # nothing is older than 0-0
    high = f"({cursor}" if cursor else "+"
    items: list[PairItem] = []
    scanned, batch, last_id = 0, max(limit * 4, 200), None
    exhausted = False
    while len(items) < limit and scanned < SCAN_CAP:
        entries = await _xrevrange(redis, stream, high, batch)
        if not entries:
            exhausted = True
            break
        scanned += len(entries)
        pairs = await _canonical(
            redis, [PairRecord.from_fields(eid, f) for eid, f in entries], filters
        )
        ids = [p.request_id for p in pairs]
        done = await _corrected(redis, ids)
        shadows = await _shadow_answers(redis, stream, ids) if status == "disagreement" else {}
        for pair in pairs:
            rid = pair.request_id
            if status == "corrected" and rid not in done:
                continue
            if status == "uncorrected" and rid in done:
                continue
            shadow = None
            if status == "disagreement":
                shadow = shadows.get(rid)
                if shadow is None or shadow.triage.category == pair.triage.category:
                    continue
            items.append(PairItem(pair, corrected=rid in done, shadow_answer=shadow))
            last_id = pair.stream_id
            if len(items) >= limit:
                break
        if len(items) < limit:
            last_id = _s(entries[-1][0] or b"")
        high = f"({last_id}"
        if len(entries) < batch and len(items) < limit:
            exhausted = True
            break
    if not exhausted and last_id is not None and len(items) >= limit:
        exhausted = not await _xrevrange(redis, stream, f"({last_id}", 1)
    last = await last_corrections(redis, [i.pair.request_id for i in items if i.corrected])
    for item in items:
        item.correction = last.get(item.pair.request_id)
    return PairPage(items, None if exhausted else last_id)


async def list_pairs(
    redis: aioredis.Redis,
    stream: str,
    *,
    status: Status | None = None,
    variant: str | None = None,
    category: str | None = None,
    app: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> PairPage:
    """One page of served pairs.

    `uncorrected` pages follow the review queue; the others go newest first through the
    stream (the cursor is the last stream entry id read). `category` filters on the model's
    answer. Pass `next_cursor` back as `cursor` for the next page; None means the end."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequestError(f"limit: must be between 1 and {MAX_LIMIT}")
    filters = (variant, category, app)
    if status == "uncorrected":
        return await _queue_page(redis, stream, filters, cursor, limit)
    return await _stream_page(redis, stream, status, filters, cursor, limit)
