"""Admin API (admin key): live weights and their history, variants added at run time.

Every input is validated before anything is stored; a bad one is a 422 naming the field.
Weights are relative: each variant's share of traffic is its weight divided by the sum of the
weights, each weight a finite number in [0, 1e6], at least one above 0. `PUT .../weights` also
takes `shares` (each in [0, 1], summing to at most 1): the named variants get exactly those
shares, the rest is split among the other variants in proportion to their weights in force. Its
answer states the resulting shares either way.
"""

from __future__ import annotations

import hashlib
import time
from typing import Annotated, TypedDict

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from redis.exceptions import RedisError

from gateway.api.deps import AdminKey, State
from gateway.api.schemas import AS_IS
from gateway.errors import InvalidRequestError, NotFoundError, UnavailableError
from gateway.experiments import model_registry
from gateway.experiments.config import Name, Price, Variant
from gateway.experiments.deploy import deploy_variant
from gateway.experiments.model_registry import VariantOptions
from gateway.experiments.store import HistoryEntry, RouteStore, VariantPut, WeightChange
from gateway.experiments.table import MAX_WEIGHT, RuntimeVariant, shares_of

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminKey])

VariantName = Annotated[str, Field(min_length=1, max_length=64)]
Weight = Annotated[float, Field(strict=True, ge=0, le=MAX_WEIGHT, allow_inf_nan=False)]
Share = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
UsdPer1M = Annotated[float, Field(strict=True, ge=0, le=1e6, allow_inf_nan=False)]


class PriceIn(BaseModel):
    """USD per 1M tokens (numbers, not strings or booleans)."""

    model_config = ConfigDict(extra="forbid")

    input_per_1m: UsdPer1M
    output_per_1m: UsdPer1M


class WeightsChange(BaseModel):
    """Either `weights` (relative, each in [0, 1e6]) or `shares` (each in [0, 1], summing to
    at most 1), and why."""

    model_config = ConfigDict(extra="forbid")

    weights: Annotated[dict[VariantName, Weight], Field(min_length=1, max_length=64)] | None = None
    shares: Annotated[dict[VariantName, Share], Field(min_length=1, max_length=64)] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=500)]

    @model_validator(mode="after")
    def _one_of(self) -> WeightsChange:
        if (self.weights is None) == (self.shares is None):
            raise ValueError("give exactly one of `weights` and `shares`")
        if self.shares is not None and sum(self.shares.values()) > 1 + 1e-9:
            raise ValueError(f"shares: they sum to {sum(self.shares.values()):g}, more than 1")
        return self


class VariantAdd(BaseModel):
    """A variant to add to a running experiment: a model string (as in the routes file) or a
    model of the registry. It starts at `weight` (0: no traffic until the weights change)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    model: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    registry_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    api_base: Annotated[str, Field(max_length=500)] | None = None
    api_key: Annotated[str, Field(max_length=100)] | None = None
    """Name of the provider key to send (a key of GATEWAY_PROVIDER_KEYS), never a key."""
    weight: Weight = 0.0
    price: PriceIn | None = None
    timeout_s: Annotated[float, Field(strict=True, gt=0, le=600, allow_inf_nan=False)] | None = None
    shadow_sample_rate: Share | None = None
    """When set, the new variant becomes the experiment's shadow at this sample rate."""

    @model_validator(mode="after")
    def _one_source(self) -> VariantAdd:
        if (self.model is None) == (self.registry_name is None):
            raise ValueError("give exactly one of `model` and `registry_name`")
        return self


class WeightsAnswer(WeightChange):
    """`PUT .../weights`: the new history entry, with the resulting shares and how."""

    experiment: str
    shares: dict[str, float]
    how: str


class HistoryAnswer(TypedDict):
    experiment: str
    history: list[HistoryEntry]


class RuntimeVariantsAnswer(TypedDict):
    experiment: str
    variants_version: int
    variants: list[dict[str, object]]
    """Each `RuntimeVariant` as JSON (unset fields left out)."""


def actor(request: Request) -> str:
    """Who made a change: a short hash of the admin key, never the key."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    return "admin:" + hashlib.sha256(token.encode()).hexdigest()[:8]


def _store(state: State) -> RouteStore:
    if state.route_store is None:
        raise UnavailableError("route store not running")
    return state.route_store


@router.put("/experiments/{name}/weights", response_model=AS_IS)
async def put_weights(
    name: str, body: WeightsChange, request: Request, state: State
) -> WeightsAnswer:
    """Change an experiment's weights (or shares) on every replica (applied within seconds).
    The answer is the history entry plus `shares` (each variant's resulting share of traffic)
    and `how` (how the weights became those shares)."""
    store = _store(state)
    if body.shares is not None:
        entry = await store.set_shares(name, body.shares, actor=actor(request), reason=body.reason)
        how = (
            "the named variants get exactly the shares asked; the rest is split among the "
            "other variants in proportion to their previous weights; weights now sum to 1"
        )
    else:
        assert body.weights is not None  # checked by WeightsChange
        entry = await store.set_weights(
            name, body.weights, actor=actor(request), reason=body.reason
        )
        total = sum(entry["weights"].values())
        how = (
            f"weights are relative: each variant's share is its weight divided by the sum of "
            f"the weights ({total:g})"
        )
    return {"experiment": name, **entry, "shares": shares_of(entry["weights"]), "how": how}


@router.get("/experiments/{name}/history", response_model=AS_IS)
async def history(
    name: str, state: State, limit: Annotated[int, Field(ge=1, le=1000)] = 100
) -> HistoryAnswer:
    """Weight changes, newest first."""
    return {"experiment": name, "history": await _store(state).history(name, limit)}


async def _variant(body: VariantAdd, state: State) -> Variant:
    options = VariantOptions(
        api_base=body.api_base,
        api_key=body.api_key,
        price=None if body.price is None else Price(**body.price.model_dump()),
        timeout_s=body.timeout_s,
    )
    if body.registry_name is not None:
        try:
            record = await model_registry.get_model(state.redis, body.registry_name)
        except RedisError as exc:
            raise UnavailableError(f"registry unavailable: redis ({type(exc).__name__})") from None
        except NotFoundError as exc:  # a field of the body names nothing: invalid input
            raise InvalidRequestError(f"registry_name: {exc.detail}") from None
        return model_registry.to_variant(record, body.name, weight=body.weight, options=options)
    try:
        return Variant.model_validate(
            {"name": body.name, "model": body.model, "weight": body.weight, **options.fields()}
        )
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        raise InvalidRequestError(f"variant {body.name!r}: {problems}") from None


@router.put("/experiments/{name}/variants", response_model=AS_IS)
async def put_variant(name: str, body: VariantAdd, request: Request, state: State) -> VariantPut:
    """Add (or replace) a variant of a running experiment on every replica, without a restart
    (applied within seconds); a variant that cannot be built is refused and not stored. Give it
    traffic with `PUT .../weights`."""
    store = _store(state)
    runtime = RuntimeVariant(
        variant=await _variant(body, state),
        shadow_sample_rate=body.shadow_sample_rate,
        registry_name=body.registry_name,
        actor=actor(request),
        ts=time.time(),
    )
    return await deploy_variant(store, name, runtime)


@router.get("/experiments/{name}/variants", response_model=AS_IS)
async def runtime_variants(name: str, state: State) -> RuntimeVariantsAnswer:
    """The variants added at run time (on top of the routes file) that this replica runs."""
    table = state.table
    runtime = table.runtime_variants(name)
    return {
        "experiment": name,
        "variants_version": table.variant_versions[name],
        "variants": [r.model_dump(mode="json", exclude_none=True) for r in runtime.values()],
    }
