"""The one JSON error handler: every error leaves as `{"error": <code>, "detail": <text>}`.

`STATUS` is the one mapping from a `GatewayError` code to its HTTP status; an upstream rate
limit passes its `retry_after` on as `Retry-After`. A Redis failure that reaches a route (any
`redis.exceptions.RedisError`, or an `OSError` raised inside the Redis client) is Redis being
down for a call that needs it: 503 `unavailable`, on every route, never a 500.
"""

from __future__ import annotations

import logging
from types import TracebackType

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError, ResponseError
from starlette.exceptions import HTTPException

from gateway.errors import GatewayError, UpstreamError

log = logging.getLogger("triage_gateway")

STATUS: dict[str, int] = {
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "payload_too_large": 413,
    "invalid_request": 422,
    "rate_limited": 429,
    "upstream_error": 502,
    "invalid_output": 502,
    "unavailable": 503,
    "upstream_timeout": 504,
}
"""HTTP status of each `GatewayError.code` (500 for any other)."""

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


def _field(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"] or ["body"]
    return ".".join(parts)


def status_of(exc: GatewayError) -> int:
    return STATUS.get(exc.code, 500)


def headers_of(exc: GatewayError) -> dict[str, str]:
    if isinstance(exc, UpstreamError) and exc.code == "rate_limited":
        return {"Retry-After": str(max(1, round(exc.retry_after or 1.0)))}
    return {}


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    body = error_body(exc.code, exc.detail)
    return JSONResponse(body, status_of(exc), headers=headers_of(exc))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors()[:10]:
        msg = str(err.get("msg", "invalid"))
        if err.get("type") == "json_invalid":
            problems.append(f"body is not valid JSON ({err.get('ctx', {}).get('error', msg)})")
        else:
            problems.append(f"{_field(tuple(err.get('loc', ())))}: {msg}")
    return JSONResponse(error_body("invalid_request", "; ".join(problems)), 422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)


def _raised_in_redis(tb: TracebackType | None) -> bool:
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("redis."):
            return True
        tb = tb.tb_next
    return False


def _unavailable(request: Request, exc: BaseException) -> JSONResponse:
    log.warning(
        "redis unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    detail = f"redis unavailable ({type(exc).__name__}); retry later"
    return JSONResponse(error_body("unavailable", detail), 503, headers={"Retry-After": "1"})


async def _redis_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ResponseError):  # Redis answered, with an error: worth a traceback
        log.exception("redis error on %s %s", request.method, request.url.path)
    return _unavailable(request, exc)


async def _os_error(request: Request, exc: Exception) -> JSONResponse:
    if _raised_in_redis(exc.__traceback__):
        return _unavailable(request, exc)
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal_error", "internal error"), 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RedisError, _redis_error)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(Exception, _unexpected)
