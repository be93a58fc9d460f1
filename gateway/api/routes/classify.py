"""POST /v1/classify and /v1/classify/batch.

`X-Triage-Variant: NAME` (an eval's call: `triage-gateway eval --gateway URL --variants ...`)
forces that variant of the experiment, weight 0 or runtime-added included; it needs an admin
key as the bearer (instead of an API key), and its pairs are logged as eval pairs."""

from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter, Depends, Request, Response
from pydantic import JsonValue, ValidationError

from gateway.api.body import json_body, parse_body
from gateway.api.deps import State, require_admin_key, require_api_key
from gateway.api.disconnect import cancel_on_disconnect
from gateway.api.schemas import (
    BatchBody,
    BatchItem,
    BatchRequest,
    BatchResponse,
    ClassifyRequest,
    ClassifyResponse,
)
from gateway.errors import GatewayError, InvalidRequestError
from gateway.infra.state import GatewayState
from gateway.request.classify import ClassifyResult
from gateway.request.triage import ReviewIn

VARIANT_HEADER = "x-triage-variant"


async def require_caller(request: Request) -> None:
    """An API key; with `X-Triage-Variant`, an admin key (forcing a variant is an eval's)."""
    if VARIANT_HEADER in request.headers:
        await require_admin_key(request)
    else:
        await require_api_key(request)


def forced_variant(request: Request) -> str | None:
    """The variant `X-Triage-Variant` forces (checked by `require_caller`), or None."""
    value = request.headers.get(VARIANT_HEADER)
    if value is None:
        return None
    if not value.strip():
        raise InvalidRequestError("X-Triage-Variant: empty; name a variant of the experiment")
    return value.strip()


async def classify_one(
    request: Request, review: ReviewIn, experiment: str | None
) -> ClassifyResult:
    """Classify one review for this request (cancelled if the caller goes away), noting the
    experiment and variant that served it on the request."""
    state: GatewayState = request.app.state.gateway
    scope_state = request.scope["state"]
    result = await cancel_on_disconnect(
        request,
        state.classifier.classify(
            review,
            experiment,
            scope_state["request_id"],
            caller_request_id=scope_state.get("caller_request_id"),
            force_variant=forced_variant(request),
        ),
    )
    scope_state["experiment"], scope_state["variant"] = result.experiment, result.variant
    return result


Caller = Depends(require_caller)
router = APIRouter(prefix="/v1", tags=["classify"], dependencies=[Caller])


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    openapi_extra={"requestBody": json_body(ClassifyRequest)},
)
async def classify(request: Request) -> Response:
    """Triage one review with the variant its experiment assigns."""
    body = await parse_body(request, ClassifyRequest)
    review = ReviewIn.model_construct(
        text=body.text,
        review_id=body.review_id,
        app=body.app,
        rating=body.rating,
        metadata=body.metadata,
    )
    result = await classify_one(request, review, body.experiment)
    # Serialised here, once: the result is already validated, so FastAPI's response-model
    # pass would only repeat the work (the schema above still documents the body).
    return Response(orjson.dumps(result.public_dict()), media_type="application/json")


def _item_error(index: int, exc: ValidationError) -> BatchItem:
    problems = []
    for err in exc.errors()[:10]:
        where = ".".join(str(p) for p in err["loc"])
        problems.append(f"items.{index}{'.' + where if where else ''}: {err['msg']}")
    return BatchItem(index=index, ok=False, error="invalid_request", detail="; ".join(problems))


@router.post(
    "/classify/batch",
    response_model=BatchResponse,
    openapi_extra={"requestBody": json_body(BatchRequest)},
)
async def classify_batch(request: Request, state: State) -> BatchResponse:
    """Triage up to 100 reviews concurrently; each item succeeds or fails on its own (an
    invalid item too: its error is in its place, the others are classified)."""
    body = await parse_body(request, BatchBody)
    base = request.scope["state"]["request_id"]
    caller = request.scope["state"].get("caller_request_id")
    force = forced_variant(request)
    state.table.experiment(body.experiment)  # unknown experiment: one 404, not 100

    async def one(index: int, item: JsonValue) -> BatchItem:
        try:
            review = ReviewIn.model_validate(item)
        except ValidationError as exc:
            return _item_error(index, exc)
        try:
            r = await state.classifier.classify(
                review,
                body.experiment,
                f"{base}-{index}",
                caller_request_id=caller,
                force_variant=force,
            )
        except GatewayError as exc:
            return BatchItem(index=index, ok=False, error=exc.code, detail=exc.detail)
        return BatchItem(index=index, ok=True, result=ClassifyResponse.of(r))

    items = await cancel_on_disconnect(
        request, asyncio.gather(*(one(i, item) for i, item in enumerate(body.items)))
    )
    ok = sum(1 for item in items if item.ok)
    return BatchResponse(items=list(items), succeeded=ok, failed=len(items) - ok)
