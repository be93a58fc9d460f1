"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request):
request ids, the request body rules and one JSON access-log line per request.

The body rules, checked before any route runs, so every route answers alike:
- a body of a JSON route must be sent as `application/json` (415 `unsupported_media_type`
  otherwise: a web page can post `text/plain` without a CORS preflight); only the review
  page's forms (`/review/...`) take form bodies;
- the body is read here, whole, within `body_timeout_s` of the request's start (408
  `request_timeout`: a client that announces 1,000 bytes and sends 13 holds no connection)
  and up to `max_body_bytes` (413 `payload_too_large`, whether announced by Content-Length or
  found while reading a chunked body), then handed to the route.
Each of these answers closes the connection: what is left of the body is never read."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Literal, TypedDict

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.infra.logs import ACCESS_LOGGER, log_access
from gateway.infra.security import is_loopback_host
from gateway.request.classify import new_request_id

access_log = logging.getLogger(ACCESS_LOGGER)
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET = {"/healthz", "/readyz", "/metrics"}


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


_FORM_PATHS = ("/review/",)
"""Path prefixes whose routes take HTML form bodies; every other body must be JSON."""

Problem = tuple[int, str, str]
"""An early answer: (status, error code, detail)."""


class RequestState(TypedDict, total=False):
    """The ASGI `scope["state"]` of one request (Starlette's `request.state`): set here and by
    the classify routes, read back for the access-log line."""

    request_id: str
    """The gateway's own id (the pair's identity)."""
    caller_request_id: str | None
    """A valid X-Request-ID the caller sent, echoed back."""
    experiment: str
    variant: str
    """The experiment and variant that served a classify call."""
    outcome: Literal["client_closed"]
    """Set when the client went away first; otherwise the status decides ok or error."""


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    if length is not None:
        return length.strip() not in (b"", b"0")
    return _header(scope, b"transfer-encoding") is not None


def _content_type_problem(scope: Scope) -> Problem | None:
    if scope["path"].startswith(_FORM_PATHS):
        return None
    raw = _header(scope, b"content-type")
    media = raw.split(b";", 1)[0].strip().lower() if raw is not None else b""
    if media == b"application/json":
        return None
    shown = repr(raw.decode("latin-1")[:100]) if raw is not None else "missing"
    detail = f"Content-Type {shown} is not accepted: send the body as application/json"
    return 415, "unsupported_media_type", detail


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the route the body read already, then the connection's own
    messages (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        access_log_enabled: bool,
        body_timeout_s: float = 10.0,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.log_enabled = access_log_enabled
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        # `request_id` (the pair's identity, in answer bodies) is always the gateway's own;
        # a valid caller X-Request-ID is kept as `caller_request_id` and echoed back.
        given = _header(scope, b"x-request-id")
        caller_id = given.decode() if given and _VALID_ID.match(given.decode("latin-1")) else None
        state: RequestState = scope.setdefault("state", {})
        state["request_id"] = new_request_id()
        state["caller_request_id"] = caller_id
        request_id = caller_id or state["request_id"]  # the X-Request-ID echoed back
        problem: Problem | None = None
        if _has_body(scope):
            length = _header(scope, b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body:
                problem = self._too_large()
            else:
                problem = _content_type_problem(scope)
            if problem is None:
                body, problem = await self._read_body(receive)
                if body is None and problem is None:  # the client went away while sending
                    state["outcome"] = "client_closed"
                    self._log(scope, 499, start, state)
                    return
                receive = _replay(body or b"", receive)
        if problem is not None:
            await self._refuse(send, request_id, problem)
            self._log(scope, problem[0], start, state)
            return
        status = 500

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
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            status, state["outcome"] = 499, "client_closed"  # the client went away first
            raise
        finally:
            self._log(scope, status, start, state)

    def _too_large(self) -> Problem:
        return 413, "payload_too_large", f"request body is over {self.max_body} bytes"

    async def _read_body(self, receive: Receive) -> tuple[bytes | None, Problem | None]:
        """The whole body, or the problem that stopped it; (None, None) on a disconnect."""
        chunks: list[bytes] = []
        seen = 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return None, None
                    chunk = message.get("body", b"")
                    seen += len(chunk)
                    if seen > self.max_body:
                        return None, self._too_large()
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks), None
        except TimeoutError:
            detail = f"request body not received within {self.body_timeout_s:g} s"
            return None, (408, "request_timeout", detail)

    async def _refuse(self, send: Send, request_id: str, problem: Problem) -> None:
        status, code, detail = problem
        body = orjson.dumps({"error": code, "detail": detail})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _log(self, scope: Scope, status: int, start: float, state: RequestState) -> None:
        if not self.log_enabled or (scope["path"] in _QUIET and status < 400):
            return
        if not access_log.isEnabledFor(logging.INFO):
            return
        log_access(
            {
                "request_id": state.get("request_id"),
                "caller_request_id": state.get("caller_request_id"),
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "latency_ms": round((time.perf_counter() - start) * 1000, 3),
                "experiment": state.get("experiment"),
                "variant": state.get("variant"),
                "outcome": state.get("outcome", "ok" if status < 400 else "error"),
            }
        )


def _split_host(value: str, default_port: int) -> tuple[str, int] | None:
    """`name[:port]` or `[v6][:port]` -> (lower-case name, port); None when malformed."""
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else ("" if not rest else "x")
    else:
        name, _, port = value.partition(":")
    if not name or (port and not port.isdigit()):
        return None
    return name.lower().rstrip("."), int(port) if port else default_port


class KeylessGuard:
    """Keyless mode (no GATEWAY_API_KEYS) serves loopback only and only the gateway's own
    origin. Refused with 403 `forbidden`, before any route runs:

    - a request that came in on a non-loopback server address (the uvicorn factory cannot see
      the `--host` it was given; `gateway.infra.security.check_bind` covers the settings);
    - a Host header that is not a loopback name or address or one of GATEWAY_ALLOWED_HOSTS
      (DNS rebinding: a web page whose name now points at 127.0.0.1);
    - an Origin header other than the gateway's own, or `Sec-Fetch-Site` other than
      `same-origin`/`none` (any cross-origin browser request: a page on another site, or on
      another port of this machine).

    Health checks pass untouched. With API keys configured the guard is not installed: the
    key is the protection."""

    OPEN = frozenset({"/healthz", "/readyz"})

    def __init__(self, app: ASGIApp, *, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed = frozenset(h.strip().lower().rstrip(".") for h in allowed_hosts if h.strip())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.OPEN:
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        body = orjson.dumps({"error": "forbidden", "detail": f"keyless mode: {problem}"})
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _problem(self, scope: Scope) -> str | None:
        server = scope.get("server")
        if server and server[1] is not None and not is_loopback_host(str(server[0])):
            return f"requests on {server[0]} are refused; set GATEWAY_API_KEYS to serve it"
        scheme = scope.get("scheme", "http")
        default_port = 443 if scheme == "https" else 80
        raw = _header(scope, b"host")
        host = _split_host(raw.decode("latin-1").strip(), default_port) if raw else None
        if host is None or not (is_loopback_host(host[0]) or host[0] in self.allowed):
            shown = raw.decode("latin-1")[:100] if raw else "(none)"
            return (
                f"Host {shown!r} refused: only loopback names and GATEWAY_ALLOWED_HOSTS are served"
            )
        origin = _header(scope, b"origin")
        if origin is not None and not self._same_origin(origin.decode("latin-1"), scheme, host):
            shown = origin.decode("latin-1")[:100]
            return f"cross-origin request refused (Origin {shown!r} is not this gateway)"
        site = _header(scope, b"sec-fetch-site")
        if site is not None and site not in (b"same-origin", b"none"):
            return f"cross-site request refused (Sec-Fetch-Site: {site.decode('latin-1')[:20]})"
        return None

    @staticmethod
    def _same_origin(origin: str, scheme: str, host: tuple[str, int]) -> bool:
        given_scheme, sep, rest = origin.strip().partition("://")
        if not sep or given_scheme.lower() != scheme or "/" in rest:
            return False
        return _split_host(rest, 443 if scheme == "https" else 80) == host
