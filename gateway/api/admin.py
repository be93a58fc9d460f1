"""Admin API (admin key): live weights and their history."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import AdminKey, State
from gateway.errors import UnavailableError

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminKey])


class WeightsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weights: Annotated[dict[str, Annotated[float, Field(ge=0)]], Field(min_length=1)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]


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
