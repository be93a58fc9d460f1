"""Reviewer corrections of logged (review, answer) pairs: store, read, erase.

Plain async functions over a `redis.asyncio` client; the HTTP API (`gateway.api.routes.pairs`), the
review page (`gateway.api.routes.review`) and the offline importer (`training.importer`) call them.

A correction is appended (RPUSH) to `redis_keys.corrections(request_id)`, so the history of a
pair is kept and the last correction wins for export. Storing one also records the pair in
`redis_keys.corrected_set()` (scored by time) and takes it off `redis_keys.review_queue()`.
Confirming that the model was right is a correction equal to the model's answer
(`changed: false`).

Each correction records, in `fields`, what the reviewer did with each of the four answer fields:
`"changed"` (the stored value differs from the model's), `"confirmed"` (the reviewer checked the
model's value and kept it) or `"unreviewed"` (the model's value was kept without being checked).
A client names what it checked in `reviewed_fields`; by default category and urgency (always
sent) and whichever of topic and summary it sent. Corrections stored before `fields` existed
read as category and urgency reviewed, topic and summary unreviewed (`field_status`; imported
labels excepted).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal, NotRequired, TypedDict, cast

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from gateway.experiments.config import RoutesConfig
from gateway.infra import redis_keys
from gateway.infra.metrics import GatewayMetrics
from gateway.pairs import pairstore
from gateway.pairs.record import PairRecord, ShadowAnswer
from gateway.request.triage import DEFAULT_TAXONOMY, SUMMARY_MAX_CHARS, TOPIC_MAX_CHARS, Taxonomy
from gateway.request.validate import canonical_label

NOTE_MAX_CHARS = 2000

FIELDS = ("category", "urgency", "topic", "summary")
"""The four answer fields a reviewer judges."""
FieldName = Literal["category", "urgency", "topic", "summary"]
FieldStatus = Literal["changed", "confirmed", "unreviewed"]
TEXT_FIELDS = ("topic", "summary")

TaxonomyFor = Callable[[str], Taxonomy]
"""Experiment name -> its taxonomy (the routes file's, the default for unknown names)."""


def taxonomy_lookup(routes: RoutesConfig | None) -> TaxonomyFor:
    """The `TaxonomyFor` of a routes file: each experiment's `taxonomy`, and the default
    taxonomy for pairs of experiments it does not define (imported labels, removed ones)."""
    known = {e.name: e.taxonomy for e in routes.experiments} if routes is not None else {}

    def lookup(experiment: str) -> Taxonomy:
        return known.get(experiment, DEFAULT_TAXONOMY)

    return lookup


class Correction(TypedDict):
    """A stored correction (orjson in `redis_keys.corrections(request_id)`)."""

    id: str
    request_id: str
    review_id: str | None
    category: str
    urgency: str
    topic: str | None
    summary: str | None
    corrected_by: str
    note: str | None
    original_category: str | None
    original_urgency: str | None
    variant: str
    changed: bool
    source: str
    created_at: str
    fields: NotRequired[dict[str, FieldStatus]]
    """Per answer field: changed, confirmed or unreviewed (absent from older records)."""


class Erasure(TypedDict):
    """What `erase_review` removed."""

    review_id: str
    request_ids: list[str]
    pairs_deleted: int
    corrections_deleted: int


@dataclass(frozen=True, slots=True)
class PairDetail:
    """One pair with its corrections (oldest first) and, for a served pair, its shadow
    answer (`shadow_looked_up` is False for a shadow pair: it has none)."""

    pair: PairRecord
    corrections: list[Correction]
    shadow_answer: ShadowAnswer | None
    shadow_looked_up: bool

    def to_dict(self) -> dict[str, object]:
        out = self.pair.to_dict()
        out["corrections"] = self.corrections
        if self.shadow_looked_up:
            answer = self.shadow_answer
            out["shadow_answer"] = None if answer is None else answer.to_dict()
        return out


class TextNotReviewedError(InvalidRequestError):
    """Category or urgency changed but topic or summary was neither edited nor confirmed."""


def field_status(correction: Mapping[str, object]) -> dict[str, FieldStatus]:
    """What the reviewer did with each answer field. A record stored before `fields` existed
    reads as category and urgency reviewed (changed or confirmed, from the model's original
    labels) and topic and summary unreviewed, except an imported label (`source: "import"`),
    which is the labelled file's answer in all four fields."""
    stored = correction.get("fields")
    if isinstance(stored, Mapping):
        out: dict[str, FieldStatus] = {}
        for name in FIELDS:
            value = stored.get(name)
            out[name] = value if value in ("changed", "confirmed") else "unreviewed"
        return out
    text: FieldStatus = "confirmed" if correction.get("source") == "import" else "unreviewed"
    legacy: dict[str, FieldStatus] = {"topic": text, "summary": text}
    for name in ("category", "urgency"):
        original = correction.get(f"original_{name}")
        same = original is None or correction.get(name) == original
        legacy[name] = "confirmed" if same else "changed"
    return legacy


def unreviewed_fields(correction: Mapping[str, object]) -> list[str]:
    """The answer fields of a correction nobody checked (empty: all four human-confirmed)."""
    return [name for name, status in field_status(correction).items() if status == "unreviewed"]


def _load_correction(raw: bytes | str) -> Correction:
    return cast(Correction, orjson.loads(raw))


Id = Annotated[str, Field(min_length=1, max_length=200)]
Label = Annotated[str, Field(min_length=1, max_length=100)]


class CorrectionIn(BaseModel):
    """A reviewer's answer for one pair, named by `request_id` or by `review_id` (the latest
    served pair of that review). Topic and summary default to the model's."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    request_id: Id | None = None
    review_id: Id | None = None
    category: Label
    urgency: Label
    topic: Annotated[str, Field(min_length=1, max_length=TOPIC_MAX_CHARS)] | None = None
    summary: Annotated[str, Field(min_length=1, max_length=SUMMARY_MAX_CHARS)] | None = None
    corrected_by: Annotated[str, Field(min_length=1, max_length=200)]
    note: str | None = None
    """At most `NOTE_MAX_CHARS`; checked in `add_correction` (a longer note is a 413)."""
    reviewed_fields: Annotated[list[FieldName], Field(max_length=4)] | None = None
    """The answer fields the reviewer checked; by default category, urgency and whichever of
    topic and summary the body gives. A field whose value differs from the model's counts as
    changed either way."""

    @model_validator(mode="after")
    def _one_target(self) -> CorrectionIn:
        if (self.request_id is None) == (self.review_id is None):
            raise ValueError("give exactly one of request_id or review_id")
        return self


def _canonical(value: str, allowed: Sequence[str], field: str) -> str:
    label = canonical_label(value, allowed, {})
    if label is not None:
        return label
    raise InvalidRequestError(f"{field} {value[:60]!r} is not one of: {', '.join(allowed)}")


def _parse(body: CorrectionIn | Mapping[str, object]) -> CorrectionIn:
    if isinstance(body, CorrectionIn):
        return body
    try:
        return CorrectionIn.model_validate(dict(body))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidRequestError(problems) from None


async def latest_served_pair(
    redis: aioredis.Redis, stream: str, review_id: str
) -> PairRecord | None:
    """The most recent served (non-shadow) pair logged for `review_id`."""
    best: PairRecord | None = None
    for rid in await pairstore.review_request_ids(redis, review_id):  # every shard
        pair = await pairstore.get_pair(redis, stream, rid)
        if pair is None or pair.shadow:
            continue
        if best is None or pair.ts > best.ts:
            best = pair
    return best


async def _target_pair(redis: aioredis.Redis, stream: str, body: CorrectionIn) -> PairRecord:
    if body.request_id is not None:
        pair = await pairstore.get_pair(redis, stream, body.request_id)
        if pair is not None and pair.shadow and pair.served_request_id:
            # A shadow answer is judged through the pair that was served for the same review.
            pair = await pairstore.get_pair(redis, stream, pair.served_request_id)
        if pair is None:
            raise NotFoundError(f"no logged pair with request_id {body.request_id!r}")
        return pair
    assert body.review_id is not None
    pair = await latest_served_pair(redis, stream, body.review_id)
    if pair is None:
        raise NotFoundError(f"no served pair logged for review_id {body.review_id!r}")
    return pair


def make_correction(
    pair: PairRecord,
    taxonomy: Taxonomy,
    *,
    category: str,
    urgency: str,
    corrected_by: str,
    topic: str | None = None,
    summary: str | None = None,
    note: str | None = None,
    source: str = "api",
    reviewed_fields: Collection[str] | None = None,
    review_page: bool = False,
) -> Correction:
    """The correction record of `pair` (the plan's ReviewCorrection); labels are checked
    against `taxonomy` (case-insensitive) and written in its spelling.

    `reviewed_fields` names the fields the reviewer checked (default: category, urgency and
    each of topic and summary that is given). `review_page`: the reviewer saw all four fields
    on the review page. A topic or summary kept there counts as confirmed when category and
    urgency stay; when either changes, both must be edited or named in `reviewed_fields`
    (the page asks), else `TextNotReviewedError` and nothing is stored."""
    if note is not None and len(note) > NOTE_MAX_CHARS:
        raise PayloadTooLargeError(f"note is {len(note)} characters; the limit is {NOTE_MAX_CHARS}")
    model = pair.triage
    category = _canonical(category, taxonomy.categories, "category")
    urgency = _canonical(urgency, taxonomy.urgencies, "urgency")
    original_category = model.category
    original_urgency = model.urgency
    if reviewed_fields is None:
        given = {"topic": topic, "summary": summary}
        reviewed_fields = ["category", "urgency", *(n for n, v in given.items() if v)]
    final = {
        "category": category,
        "urgency": urgency,
        "topic": topic or model.topic,
        "summary": summary or model.summary,
    }
    fields: dict[str, FieldStatus] = {}
    for name in FIELDS:
        if final[name] != getattr(model, name):
            fields[name] = "changed"
        else:
            fields[name] = "confirmed" if name in reviewed_fields else "unreviewed"
    relabelled = fields["category"] == "changed" or fields["urgency"] == "changed"
    unchecked = [n for n in TEXT_FIELDS if fields[n] == "unreviewed"]
    if review_page and not relabelled:
        fields.update(dict.fromkeys(unchecked, "confirmed"))
    elif review_page and unchecked:
        raise TextNotReviewedError(
            "category or urgency changed: confirm or edit "
            + " and ".join(unchecked)
            + " too; nothing was saved"
        )
    return {
        "id": uuid.uuid4().hex,
        "request_id": pair.request_id,
        "review_id": pair.review_id,
        "category": category,
        "urgency": urgency,
        "topic": final["topic"],
        "summary": final["summary"],
        "corrected_by": corrected_by,
        "note": note,
        "original_category": original_category,
        "original_urgency": original_urgency,
        "variant": pair.variant,
        "changed": category != original_category or urgency != original_urgency,
        "source": source,
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "fields": fields,
    }


async def store_corrections(
    redis: aioredis.Redis,
    records: Sequence[Correction],
    metrics: GatewayMetrics | None = None,
) -> None:
    """Append corrections, mark their pairs corrected and take them off the review queue."""
    if not records:
        return
    now = time.time()
    async with redis.pipeline(transaction=True) as pipe:
        for record in records:
            rid = record["request_id"]
            pipe.rpush(redis_keys.corrections(rid), orjson.dumps(record))
            pipe.zadd(redis_keys.corrected_set(), {rid: now})
            pipe.zrem(redis_keys.review_queue(), rid)
            if redis_keys.archive_url() is not None:  # written through to the archive
                pipe.xadd(redis_keys.corrections_outbox(), {"c": orjson.dumps(record)})
        await pipe.execute()
    if metrics is not None:
        for record in records:
            changed = "true" if record["changed"] else "false"
            metrics.corrections.labels(str(record.get("variant")), changed).inc()


async def add_correction(
    redis: aioredis.Redis,
    stream: str,
    taxonomy_for: TaxonomyFor,
    body: CorrectionIn | Mapping[str, object],
    *,
    metrics: GatewayMetrics | None = None,
    source: str = "api",
    review_page: bool = False,
) -> Correction:
    """Validate and store one correction; returns the stored record (`review_page`: see
    `make_correction`).

    Raises `InvalidRequestError` (422: bad body, a label outside the pair's experiment
    taxonomy, or `TextNotReviewedError`; the detail names the problem), `PayloadTooLargeError`
    (413: note over `NOTE_MAX_CHARS`) and `NotFoundError` (404: unknown request_id /
    review_id)."""
    parsed = _parse(body)
    if parsed.note is not None and len(parsed.note) > NOTE_MAX_CHARS:
        raise PayloadTooLargeError(
            f"note is {len(parsed.note)} characters; the limit is {NOTE_MAX_CHARS}"
        )
    pair = await _target_pair(redis, stream, parsed)
    answer = parsed.model_dump(exclude={"request_id", "review_id"})  # the body but its target
    record = make_correction(
        pair,
        taxonomy_for(pair.experiment),
        **answer,
        source=source,
        review_page=review_page,
    )
    await store_corrections(redis, [record], metrics)
    return record


async def confirm_answer(
    redis: aioredis.Redis,
    stream: str,
    taxonomy_for: TaxonomyFor,
    request_id: str,
    corrected_by: str,
    *,
    metrics: GatewayMetrics | None = None,
    source: str = "api",
) -> Correction:
    """Record that the model's answer of one pair is right (a correction equal to it)."""
    pair = await pairstore.get_pair(redis, stream, request_id)
    if pair is None:
        raise NotFoundError(f"no logged pair with request_id {request_id!r}")
    body = CorrectionIn(
        request_id=request_id,
        category=pair.triage.category or "",
        urgency=pair.triage.urgency or "",
        corrected_by=corrected_by,
        reviewed_fields=list(FIELDS),
    )
    return await add_correction(redis, stream, taxonomy_for, body, metrics=metrics, source=source)


async def corrections_of(redis: aioredis.Redis, request_id: str) -> list[Correction]:
    """Every correction of one pair, oldest first."""
    raw = await redis.lrange(redis_keys.corrections(request_id), 0, -1)
    return [_load_correction(item) for item in raw]


async def last_corrections(
    redis: aioredis.Redis, request_ids: Sequence[str]
) -> dict[str, Correction]:
    """The last (winning) correction of each pair that has one."""
    if not request_ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for rid in request_ids:
            pipe.lindex(redis_keys.corrections(rid), -1)
        found = await pipe.execute()
    return {rid: _load_correction(raw) for rid, raw in zip(request_ids, found, strict=True) if raw}


async def pair_with_corrections(redis: aioredis.Redis, stream: str, request_id: str) -> PairDetail:
    """One pair with its corrections (oldest first) and, when sampled, its shadow answer."""
    pair = await pairstore.get_pair(redis, stream, request_id)
    if pair is None:
        raise NotFoundError(f"no logged pair with request_id {request_id!r}")
    corrections = await corrections_of(redis, request_id)
    if pair.shadow:
        return PairDetail(pair, corrections, None, shadow_looked_up=False)
    shadow = await pairstore.get_pair(redis, stream, f"{request_id}:shadow")
    answer = None if shadow is None else ShadowAnswer.of(shadow)
    return PairDetail(pair, corrections, answer, shadow_looked_up=True)


async def erase_review(redis: aioredis.Redis, stream: str, review_id: str) -> Erasure:
    """Erase everything stored about one review: its pairs, their index entries, their
    corrections and their places in the corrected set and the review queue
    (`pairstore.delete_review`); returns what was removed."""
    request_ids = await pairstore.review_request_ids(redis, review_id)  # every shard
    corrections_deleted = 0
    if request_ids:
        async with redis.pipeline(transaction=False) as pipe:
            for rid in request_ids:
                pipe.llen(redis_keys.corrections(rid))
            corrections_deleted = sum(int(n) for n in await pipe.execute())
    pairs_deleted = await pairstore.delete_review(redis, stream, review_id)
    archive_url = redis_keys.archive_url()
    if archive_url is not None:  # the archived partitions holding it are rewritten too
        from gateway.pairs import archive

        archived, _ = await archive.erase_review(redis, archive_url, review_id)
        pairs_deleted += archived
    return {
        "review_id": review_id,
        "request_ids": request_ids,
        "pairs_deleted": int(pairs_deleted),
        "corrections_deleted": corrections_deleted,
    }
