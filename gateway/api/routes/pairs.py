"""The pair log API: corrections, listings with cursor pagination, one pair, erasure. The
JSON bodies are built here from the typed records of `gateway.pairs`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.api.deps import AdminKey, ApiKey, State
from gateway.infra import redis_keys
from gateway.infra.state import GatewayState
from gateway.pairs.corrections import (
    Correction,
    CorrectionIn,
    Erasure,
    add_correction,
    erase_review,
    pair_with_corrections,
    taxonomy_lookup,
)
from gateway.pairs.review_queue import MAX_LIMIT, Status, list_pairs

router = APIRouter(prefix="/v1", tags=["pairs"])


def _stream(state: GatewayState) -> str:
    return redis_keys.pairs_stream(state.settings.pairs_stream)


@router.post("/corrections", status_code=201, dependencies=[ApiKey], response_model=None)
async def post_correction(body: CorrectionIn, state: State) -> Correction:
    """Store a reviewer's answer for one pair (by request_id, or the latest of a review_id)."""
    lookup = taxonomy_lookup(state.routes)
    return await add_correction(state.redis, _stream(state), lookup, body, metrics=state.metrics)


@router.get("/pairs", dependencies=[ApiKey])
async def get_pairs(
    state: State,
    status: Status | None = None,
    variant: str | None = None,
    category: str | None = None,
    app: str | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> dict[str, object]:
    """Served pairs, newest first; `status=uncorrected` follows the review queue."""
    page = await list_pairs(
        state.redis,
        _stream(state),
        status=status,
        variant=variant,
        category=category,
        app=app,
        cursor=cursor,
        limit=limit,
    )
    return page.to_dict()


@router.get("/pairs/{request_id}", dependencies=[ApiKey])
async def get_pair(request_id: str, state: State) -> dict[str, object]:
    """One pair with its corrections (oldest first) and its shadow answer, if any."""
    detail = await pair_with_corrections(state.redis, _stream(state), request_id)
    return detail.to_dict()


@router.delete("/reviews/{review_id}", dependencies=[AdminKey], response_model=None)
async def delete_review(review_id: str, state: State) -> Erasure:
    """Erase every pair and correction stored for one review (erasure requests)."""
    return await erase_review(state.redis, _stream(state), review_id)
