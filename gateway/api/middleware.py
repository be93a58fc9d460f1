"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request):
request ids, the body-size limit and one JSON access-log line per request."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import PayloadTooLargeError

access_log = logging.getLogger("triage_gateway.access")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET = {"/healthz", "/readyz", "/metrics"}


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _too_large_body(limit: int) -> bytes:
    return orjson.dumps(
        {"error": "payload_too_large", "detail": f"request body is over {limit} bytes"}
    )


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, access_log_enabled: bool) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.log_enabled = access_log_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = (
            given.decode()
            if given and _VALID_ID.match(given.decode("latin-1"))
            else uuid.uuid4().hex
        )
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._reject(send, request_id)
            self._log(scope, 413, start, state)
            return
        status = 500
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise PayloadTooLargeError(f"request body is over {self.max_body} bytes")
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except asyncio.CancelledError:
            status, state["outcome"] = 499, "client_closed"  # the client went away first
            raise
        finally:
            self._log(scope, status, start, state)

    async def _reject(self, send: Send, request_id: str) -> None:
        body = _too_large_body(self.max_body)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _log(self, scope: Scope, status: int, start: float, state: dict[str, Any]) -> None:
        if not self.log_enabled or (scope["path"] in _QUIET and status < 400):
            return
        if not access_log.isEnabledFor(logging.INFO):
            return
        access_log.info(
            "request",
            extra={
                "fields": {
                    "request_id": state.get("request_id"),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "latency_ms": round((time.perf_counter() - start) * 1000, 3),
                    "experiment": state.get("experiment"),
                    "variant": state.get("variant"),
                    "outcome": state.get("outcome", "ok" if status < 400 else "error"),
                }
            },
        )
