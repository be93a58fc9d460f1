"""The pair record: one (review, answer) pair the gateway served, as the pair log writes it and
as every reader gets it back.

Stored form (unchanged): a Redis stream entry with two fields (`to_fields`), `request_id` and
`data`, the record as orjson bytes with every field below except `stream_id` (the entry id,
set when the record is read back). Records stored before a field existed, or by other writers
with fewer fields, read back with that field's default; unknown stored keys are ignored.

The pair log builds one record per request, so construction is a plain slotted dataclass: no
validation. JSON objects for API answers are built from it at the API edge (`to_dict`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from gateway.request.triage import Triage

Scalar = str | int | float | bool | None
Metadata = dict[str, Scalar]
StreamFields = Mapping[bytes | str, bytes | str]
"""The fields of a stream entry (bytes, or str with decoded responses)."""
StreamEntry = tuple[bytes | str | None, dict[bytes | str, bytes | str] | None]
"""A stream entry as redis-py returns it: (entry id, fields)."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class PairTriage:
    """The answer of a pair. Fields are None only in records that lacked them."""

    category: str | None = None
    urgency: str | None = None
    topic: str | None = None
    summary: str | None = None

    @classmethod
    def of(cls, triage: Triage) -> PairTriage:
        return cls(triage.category, triage.urgency, triage.topic, triage.summary)

    @classmethod
    def from_json(cls, value: object) -> PairTriage:
        """From the stored JSON object (anything else reads as an empty answer)."""
        if not isinstance(value, dict):
            return cls()
        return cls(
            _opt_str(value.get("category")),
            _opt_str(value.get("urgency")),
            _opt_str(value.get("topic")),
            _opt_str(value.get("summary")),
        )

    def to_dict(self) -> dict[str, str | None]:
        return {
            "category": self.category,
            "urgency": self.urgency,
            "topic": self.topic,
            "summary": self.summary,
        }


@dataclass(frozen=True, slots=True)
class ShadowAnswer:
    """The shadow variant's answer for a served pair."""

    variant: str
    triage: PairTriage

    @classmethod
    def of(cls, shadow: PairRecord) -> ShadowAnswer:
        return cls(shadow.variant, shadow.triage)

    def to_dict(self) -> dict[str, object]:
        return {"variant": self.variant, "triage": self.triage.to_dict()}


@dataclass(frozen=True, slots=True)
class PairRecord:
    """Every field the pair log writes, in the stored order."""

    request_id: str
    served_request_id: str | None = None
    """For a shadow pair (`request_id` ends in `:shadow`): the request_id of the served one."""
    shadow: bool = False
    review_id: str | None = None
    text: str = ""
    app: str | None = None
    rating: int | None = None
    metadata: Metadata | None = None
    experiment: str = ""
    variant: str = ""
    model: str = ""
    triage: PairTriage = PairTriage()
    raw_output: str | None = None
    """The model's raw output, kept when it needed repair or a re-ask."""
    attempts: int = 0
    fallback_from: str | None = None
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    confidence: float | None = None
    answered_by: str | None = None
    """For a cascade variant: the variant whose answer this is."""
    ts: float = 0.0
    stream_id: str | None = None
    """The stream entry id; set on read, never stored."""

    # -- the stored form ------------------------------------------------------------------

    def _stored(self) -> dict[str, object]:
        return {
            "request_id": self.request_id,
            "served_request_id": self.served_request_id,
            "shadow": self.shadow,
            "review_id": self.review_id,
            "text": self.text,
            "app": self.app,
            "rating": self.rating,
            "metadata": self.metadata,
            "experiment": self.experiment,
            "variant": self.variant,
            "model": self.model,
            "triage": self.triage.to_dict(),
            "raw_output": self.raw_output,
            "attempts": self.attempts,
            "fallback_from": self.fallback_from,
            "latency_ms": self.latency_ms,
            "cost_usd": self.cost_usd,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "confidence": self.confidence,
            "answered_by": self.answered_by,
            "ts": self.ts,
        }

    def to_json(self) -> bytes:
        """The stored `data` field: orjson bytes. Never raises: what orjson can't encode
        becomes a string (a record that can't be written would block the log)."""
        stored = self._stored()
        try:
            return orjson.dumps(stored, default=str, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # e.g. an int beyond 64 bits in the metadata
            return json.dumps(stored, default=str).encode()

    def to_fields(self) -> dict[str, bytes]:
        """The stream entry's fields."""
        return {"request_id": self.request_id.encode(), "data": self.to_json()}

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, stream_id: str | None = None) -> PairRecord:
        """From the stored JSON object. Types are trusted (the writers are ours); missing or
        null fields take their defaults, unknown keys are dropped."""
        kwargs = {
            k: v for k, v in data.items() if k in _STORED and (v is not None or k in _NULLABLE)
        }
        kwargs["triage"] = PairTriage.from_json(data.get("triage"))
        kwargs["request_id"] = str(data.get("request_id") or "")
        kwargs["stream_id"] = stream_id
        return cls(**kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_json(
        cls, data: bytes | str, *, stream_id: str | None = None, request_id: str | None = None
    ) -> PairRecord:
        """From the stored `data` bytes; raises ValueError when they hold no JSON object."""
        value = orjson.loads(data)
        if not isinstance(value, dict):
            raise ValueError("a pair record is a JSON object")
        if request_id is not None and not value.get("request_id"):
            value["request_id"] = request_id
        return cls.from_dict(value, stream_id=stream_id)

    @classmethod
    def from_fields(cls, entry_id: bytes | str | None, entry: StreamFields | None) -> PairRecord:
        """From a stream entry (bytes or decoded responses)."""
        found: StreamFields = entry or {}
        data = found.get(b"data", found.get("data"))
        rid = found.get(b"request_id", found.get("request_id"))
        request_id = _text(rid) if rid is not None else None
        stream_id = _text(entry_id) if entry_id is not None else None
        if data is None:
            return cls(request_id or "", stream_id=stream_id)
        return cls.from_json(data, stream_id=stream_id, request_id=request_id)

    # -- the API edge ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        """The JSON object of the pair in API answers: the stored fields plus `stream_id`."""
        out = self._stored()
        if self.stream_id is not None:
            out["stream_id"] = self.stream_id
        return out


_STORED = frozenset(f.name for f in fields(PairRecord)) - {"stream_id"}
_NULLABLE = frozenset(
    f.name for f in fields(PairRecord) if f.default is None and f.name != "stream_id"
)
