"""Admin API (admin key): live weights and their history, variants added at run time."""

from __future__ import annotations

import hashlib
import time
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from redis.exceptions import RedisError

from gateway.api.deps import AdminKey, State
from gateway.errors import InvalidRequestError, UnavailableError
from gateway.experiments import model_registry
from gateway.experiments.config import Name, Price, Variant
from gateway.experiments.deploy import deploy_variant
from gateway.experiments.table import RuntimeVariant

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminKey])


class WeightsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weights: Annotated[dict[str, Annotated[float, Field(ge=0)]], Field(min_length=1)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]


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
    weight: Annotated[float, Field(ge=0)] = 0.0
    price: Price | None = None
    timeout_s: Annotated[float, Field(gt=0, le=600)] | None = None
    shadow_sample_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    """When set, the new variant becomes the experiment's shadow at this sample rate."""

    @model_validator(mode="after")
    def _one_source(self) -> VariantAdd:
        if (self.model is None) == (self.registry_name is None):
            raise ValueError("give exactly one of `model` and `registry_name`")
        return self


def actor(request: Request) -> str:
    """Who made a change: a short hash of the admin key, never the key."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    return "admin:" + hashlib.sha256(token.encode()).hexdigest()[:8]


def _store(state: State) -> Any:
    if state.route_store is None:
        raise UnavailableError("route store not running")
    return state.route_store


@router.put("/experiments/{name}/weights")
async def put_weights(
    name: str, body: WeightsChange, request: Request, state: State
) -> dict[str, Any]:
    """Change an experiment's weights on every replica (applied within seconds)."""
    entry: dict[str, Any] = await _store(state).set_weights(
        name, body.weights, actor=actor(request), reason=body.reason
    )
    return {"experiment": name, **entry}


@router.get("/experiments/{name}/history")
async def history(
    name: str, state: State, limit: Annotated[int, Field(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """Weight changes, newest first."""
    return {"experiment": name, "history": await _store(state).history(name, limit)}


async def _variant(body: VariantAdd, state: State) -> Variant:
    options: dict[str, Any] = {
        "api_base": body.api_base,
        "api_key": body.api_key,
        "price": body.price,
        "timeout_s": body.timeout_s,
    }
    if body.registry_name is not None:
        try:
            record = await model_registry.get_model(state.redis, body.registry_name)
        except RedisError as exc:
            raise UnavailableError(f"registry unavailable: redis ({type(exc).__name__})") from None
        return model_registry.to_variant(record, body.name, weight=body.weight, **options)
    fields = {k: v for k, v in options.items() if v is not None}
    try:
        return Variant.model_validate(
            {"name": body.name, "model": body.model, "weight": body.weight, **fields}
        )
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        raise InvalidRequestError(f"variant {body.name!r}: {problems}") from None


@router.put("/experiments/{name}/variants")
async def put_variant(
    name: str, body: VariantAdd, request: Request, state: State
) -> dict[str, Any]:
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


@router.get("/experiments/{name}/variants")
async def runtime_variants(name: str, state: State) -> dict[str, Any]:
    """The variants added at run time (on top of the routes file) that this replica runs."""
    table = state.table
    runtime = table.runtime_variants(name)
    return {
        "experiment": name,
        "variants_version": table.variant_versions[name],
        "variants": [r.model_dump(mode="json", exclude_none=True) for r in runtime.values()],
    }
