"""POST /v1/chat/completions: the OpenAI chat API, so services keep their SDK.

`model` names an experiment (`triage`); the last user message is the review. The answer is
the triage JSON as the assistant message, and the variant that answered is in the
`x-triage-variant` header; an admin key may force one with the same request header (see
`gateway.api.routes.classify`). A review id for sticky assignment may be passed as `review_id`
in the body (the SDK's `extra_body`) or in `metadata.review_id`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.api.body import json_body, parse_body
from gateway.api.routes.classify import Caller, classify_one
from gateway.errors import InvalidRequestError
from gateway.request.classify import ClassifyResult
from gateway.request.triage import ReviewIn

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Caller])


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[TextPart] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(
        extra="allow"
    )  # temperature, max_tokens, ... are accepted and ignored

    model: Annotated[str, Field(min_length=1)]
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    stream: bool = False
    review_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    metadata: dict[str, str] | None = None


def _review(body: ChatRequest) -> ReviewIn:
    for message in reversed(body.messages):
        if message.role != "user":
            continue
        content = message.content
        text = content if isinstance(content, str) else " ".join(p.text for p in content or [])
        if not text.strip():
            raise InvalidRequestError("messages: the last user message is empty")
        if len(text) > 8000:
            raise InvalidRequestError("messages: the review is over 8000 characters")
        in_meta = body.review_id is None and "review_id" in (body.metadata or {})
        review_id = body.review_id if not in_meta else (body.metadata or {})["review_id"]
        try:  # the review rules of /v1/classify, errors named by where the field was given
            return ReviewIn(text=text, review_id=review_id)
        except ValidationError as exc:
            where = {"text": ("messages",), "review_id": ("metadata", "review_id")}
            if not in_meta:
                where["review_id"] = ("review_id",)
            errors = []
            for err in exc.errors():
                head = str(err["loc"][0]) if err["loc"] else ""
                errors.append({**err, "loc": ("body", *where.get(head, err["loc"]))})
            raise RequestValidationError(errors) from None
    raise InvalidRequestError("messages: no user message holds a review")


def _usage(r: ClassifyResult) -> dict[str, object]:
    return {
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "total_tokens": r.prompt_tokens + r.completion_tokens,
        "cost": r.cost_usd,
    }


def _content(r: ClassifyResult) -> str:
    return orjson.dumps(r.triage.to_json_dict()).decode()


def _completion(r: ClassifyResult, created: int) -> dict[str, object]:
    return {
        "id": f"chatcmpl-{r.request_id}",
        "object": "chat.completion",
        "created": created,
        "model": r.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": _content(r)},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage(r),
        "triage_gateway": {
            "request_id": r.request_id,
            "experiment": r.experiment,
            "variant": r.variant,
            "attempts": r.attempts,
            "fallback_from": r.fallback_from,
            "latency_ms": r.latency_ms,
        },
    }


async def _sse(r: ClassifyResult, created: int) -> AsyncIterator[bytes]:
    base: dict[str, object] = {
        "id": f"chatcmpl-{r.request_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": r.model,
    }
    content = _content(r)
    first = {
        **base,
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": None}
        ],
    }
    last = {
        **base,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": _usage(r),
    }
    for chunk in (first, last):
        yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    yield b"data: [DONE]\n\n"


@router.post(
    "/chat/completions", response_model=None, openapi_extra={"requestBody": json_body(ChatRequest)}
)
async def chat_completions(request: Request) -> Response:
    """A/B-routed triage behind the OpenAI chat-completions API."""
    body = await parse_body(request, ChatRequest)
    result = await classify_one(request, _review(body), body.model)
    headers = {"x-triage-variant": result.variant, "x-triage-experiment": result.experiment}
    created = int(time.time())
    if body.stream:
        stream = _sse(result, created)
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
    done = _completion(result, created)
    return Response(orjson.dumps(done), media_type="application/json", headers=headers)
