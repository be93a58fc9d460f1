"""The model registry: fine-tuned and self-hosted models the gateway can route to, in Redis.

One hash, `redis_keys.model_registry()`: name -> `ModelRecord` JSON. Written by
`triage-gateway finetune` (on success), `models add`, `models deploy` and `models retire`;
read by `models list|show` and by `PUT /admin/experiments/{name}/variants` (`registry_name`).
Records are never deleted: `retire` marks them, and a retired model cannot be deployed.
The stored `status` is a label set by those commands; the status that follows traffic is
`live_statuses` (from the route store: weights in force, shadow, history), which
`models list` shows.

`to_variant` turns a record into a routes-file `Variant` (kind hosted / self-hosted: an
OpenAI-compatible endpoint; kind local: an in-process model directory), which
`RouteStore.put_variant` adds to a running experiment on every replica.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.errors import ConflictError, InvalidRequestError, NotFoundError
from gateway.experiments.config import Price, Variant
from gateway.experiments.table import shares_of
from gateway.infra import redis_keys

if TYPE_CHECKING:
    from gateway.experiments.store import HistoryEntry, RouteStore

HISTORY_SCAN = 1000

ModelKind = Literal["hosted", "local", "self-hosted"]
ModelStatus = Literal["candidate", "shadow", "live", "retired"]
STATUSES: tuple[ModelStatus, ...] = ("candidate", "shadow", "live", "retired")
RegistryName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,199}$")]
MetricValue = float | int | str | bool | None

# The litellm-style prefix put before a registered model id in a variant's `model` (with an
# `api_base` the prefix only picks the provider key; the rest is sent upstream as is).
PROVIDER_PREFIX = {"together": "together_ai"}


class ModelRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: RegistryName
    kind: ModelKind
    model: str | None = None
    """The model id the endpoint is asked for (a fine-tuned model id, a vLLM LoRA name);
    the registry name when unset."""
    endpoint: str | None = None
    """OpenAI-compatible base URL (kinds hosted and self-hosted)."""
    path: str | None = None
    """Model directory (kind local), or where a self-hosted adapter was written."""
    provider: str | None = None
    """Whose API serves it (openai, together, vllm, ...): also the name of the provider key
    (GATEWAY_PROVIDER_KEYS) a variant made from it sends."""
    base_model: str | None = None
    training_data_hash: str | None = None
    """sha256 of the training data (train file bytes, then validation file bytes)."""
    metrics: dict[str, MetricValue] = Field(default_factory=dict)
    price: Price | None = None
    status: ModelStatus = "candidate"
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    job_id: str | None = None

    @model_validator(mode="after")
    def _where(self) -> ModelRecord:
        if self.kind in ("hosted", "self-hosted") and not self.endpoint:
            raise ValueError(f"a {self.kind} model needs an endpoint (its base URL)")
        if self.kind == "local" and not self.path:
            raise ValueError("a local model needs a path (its model directory)")
        return self

    @property
    def upstream_model(self) -> str:
        return self.model or self.name


def _decode(name: str, raw: bytes | str) -> ModelRecord:
    try:
        return ModelRecord.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidRequestError(f"registry entry {name!r} is not a valid record: {exc}") from None


async def register(
    redis: aioredis.Redis, record: ModelRecord, *, replace: bool = False
) -> ModelRecord:
    """Store `record`; a name already registered is a `ConflictError` unless `replace`."""
    key, data = redis_keys.model_registry(), record.model_dump_json()
    if replace:
        await redis.hset(key, record.name, data)
    elif not await redis.hsetnx(key, record.name, data):
        raise ConflictError(f"model {record.name!r} is already registered")
    return record


async def get_model(redis: aioredis.Redis, name: str) -> ModelRecord:
    raw = await redis.hget(redis_keys.model_registry(), name)
    if raw is None:
        raise NotFoundError(f"no registered model {name!r} (see `triage-gateway models list`)")
    return _decode(name, raw)


async def list_models(redis: aioredis.Redis) -> list[ModelRecord]:
    """Every record, oldest first."""
    rows: Any = await redis.hgetall(redis_keys.model_registry())
    records = [_decode(k.decode(), v) for k, v in rows.items()]
    return sorted(records, key=lambda r: (r.created_at, r.name))


async def set_status(redis: aioredis.Redis, name: str, status: ModelStatus) -> ModelRecord:
    record = (await get_model(redis, name)).model_copy(update={"status": status})
    await redis.hset(redis_keys.model_registry(), name, record.model_dump_json())
    return record


async def retire(redis: aioredis.Redis, name: str) -> ModelRecord:
    """Mark a model retired (kept for the record; it can no longer be deployed)."""
    return await set_status(redis, name, "retired")


@dataclass(frozen=True)
class VariantOptions:
    """How a deployed variant calls its model, where the deploy says so (the admin API, `models
    deploy`); None keeps the default: the registry record's endpoint, provider key and price,
    the routes file's timeout."""

    api_base: str | None = None
    api_key: str | None = None
    """Name of the provider key to send (a key of GATEWAY_PROVIDER_KEYS), never a key."""
    price: Price | None = None
    timeout_s: float | None = None

    def fields(self) -> dict[str, object]:
        """The options given, as routes-file variant fields."""
        return {k: v for k, v in vars(self).items() if v is not None}


def to_variant(
    record: ModelRecord,
    variant_name: str,
    *,
    weight: float = 0.0,
    options: VariantOptions = VariantOptions(),
) -> Variant:
    """The variant that routes to a registered model (`InvalidRequestError` if it cannot)."""
    if record.status == "retired":
        raise InvalidRequestError(f"model {record.name!r} is retired")
    fields: dict[str, object] = {"name": variant_name, "weight": weight}
    if options.timeout_s is not None:
        fields["timeout_s"] = options.timeout_s
    if record.kind == "local":
        fields.update(model="local", model_path=record.path)
    else:
        provider = record.provider or "openai"
        fields.update(
            model=f"{PROVIDER_PREFIX.get(provider, provider)}/{record.upstream_model}",
            api_base=options.api_base or record.endpoint,
            api_key=options.api_key or record.provider,
            price=options.price or record.price,
        )
    try:
        return Variant.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidRequestError(f"variant from model {record.name!r}: {problems}") from None


SERVING_SHARE = 1 - 1e-9


def _percent(share: float) -> str:
    return f"{share * 100:.3g}%"


async def live_statuses(store: RouteStore, records: Iterable[ModelRecord]) -> dict[str, str]:
    """Each record's live status, derived from the route store (the weights in force, the
    runtime variants made from registry models, the shadow, the weight history), not from the
    stored label: `serving` (all traffic), `candidate <share>`, `shadow`, `rolled back` (had
    traffic, has none now), `retired`, or `candidate (not deployed)`. A model deployed in
    several places gets one status per place, `experiment/variant` named."""
    placed: dict[str, list[tuple[str, str]]] = {}
    for exp in store.table.experiments():
        for variant, runtime in store.table.runtime_variants(exp.name).items():
            if runtime.registry_name is not None:
                placed.setdefault(runtime.registry_name, []).append((exp.name, variant))
    histories: dict[str, list[HistoryEntry]] = {}
    out: dict[str, str] = {}
    for record in records:
        parts, carrying = [], False
        for experiment, variant in placed.get(record.name, []):
            if experiment not in histories:
                histories[experiment] = await store.history(experiment, HISTORY_SCAN)
            status, share = _placement_status(store, experiment, variant, histories[experiment])
            carrying = carrying or share > 0
            where = f" ({experiment}/{variant})" if len(placed[record.name]) > 1 else ""
            parts.append(status + where)
        live = "; ".join(parts)
        if record.status == "retired":
            out[record.name] = f"retired, still {live}" if carrying else "retired"
        else:
            out[record.name] = live or "candidate (not deployed)"
    return out


def _placement_status(
    store: RouteStore, experiment: str, variant: str, history: Sequence[HistoryEntry]
) -> tuple[str, float]:
    share = shares_of(store.table.weights(experiment)).get(variant, 0.0)
    if share >= SERVING_SHARE:
        return "serving", share
    if share > 0:
        return f"candidate {_percent(share)}", share
    shadow = store.table.experiment(experiment).shadow
    if shadow is not None and shadow.variant == variant:
        return "shadow", share
    if any(((e.get("weights") or {}).get(variant) or 0) > 0 for e in history):
        return "rolled back", share
    return "candidate 0%", share
