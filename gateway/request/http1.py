"""The upstream calls' HTTP/1.1 client: keep-alive connections per origin on asyncio, each
response parsed by httptools (llhttp, the parser uvicorn serves the gateway with).

It does what the hot path needs and no more: send one request with a body, read the whole
response, keep the connection for the next call. It costs about a third of aiohttp's CPU per
call (0.047 vs 0.13-0.15 ms on one core at 64 concurrent calls), and a cancelled call (a
caller that went away, a timeout) aborts its connection, so the upstream sees the disconnect
and stops generating. There are no redirects, cookies, proxies or content negotiation: the
gateway talks to OpenAI-compatible APIs that use none of them. A gzip or deflate body is still
decoded, and a response is refused past `MAX_RESPONSE_BYTES`.

A request that fails on a reused connection within half a second of the send, before any
byte of its answer arrived (the server closed the idle connection as the request went out),
is sent once more on a new connection; any other failure is the caller's to handle, as a
later one may follow work the upstream did and bills. Interim responses (1xx) are skipped; a
response without a length ends when the server closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import zlib
from dataclasses import dataclass
from typing import cast
from urllib.parse import SplitResult, urlsplit

import httptools

__all__ = [
    "MAX_RESPONSE_BYTES",
    "HttpError",
    "HttpResponse",
    "Origin",
    "encode_headers",
    "split_base_url",
]

MAX_RESPONSE_BYTES = 16 << 20
MAX_HEAD_BYTES = 64 << 10
MAX_HEADERS = 128
IDLE_TIMEOUT_S = 15.0
"""A connection idle for longer (or longer than the server's `Keep-Alive: timeout` less a
second) is closed rather than reused."""
STALE_WINDOW_S = 0.5
"""A reused connection that fails this soon after the send, without a byte of answer, was
closed by the server while idle: the request is sent once more (see `Origin._stale`)."""

_ssl_context: ssl.SSLContext | None = None


def _default_ssl_context() -> ssl.SSLContext:
    """The system's trust store, verified hostnames; built once, on the first TLS connection
    (loading the certificates takes tens of milliseconds)."""
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = ssl.create_default_context()
    return _ssl_context


class HttpError(Exception):
    """The call failed below HTTP: connection refused or reset, closed before the whole
    response, a malformed or oversized response."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    """Lower-case names; a repeated header keeps its last value."""
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection: a request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[HttpResponse] | None = None
        self.headers: dict[str, str] = {}
        self.framing = 0
        """Bytes of the current exchange that are not body: heads (interim ones too), chunk
        sizes, trailers."""
        self.head_done = False
        self.chunked = False
        """The last response was chunked: its parser may hold a trailer field still."""
        self.until_close = False
        """The response has no length: its body ends when the server closes."""
        self.chunks: list[bytes] = []
        self.size = 0
        self.received = False
        """Whether any byte of the current response arrived."""
        self.sent_at = 0.0
        self.closed = False
        self.idle_since = 0.0
        self.keep_alive_s: float | None = None
        """The server's `Keep-Alive: timeout=N`, when it gave one."""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for: the connection can't be trusted
            self.abort()
            return
        self.received = True
        # what is not body, counted up to this read: a head, interim heads, chunk sizes and
        # trailers never grow past the limit (the parser joins a long field piece by piece)
        if self.framing > MAX_HEAD_BYTES:
            self._fail(HttpError(f"response head larger than {MAX_HEAD_BYTES} bytes"))
            return
        self.framing += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(HttpError("the server switched protocols"))
        except httptools.HttpParserError as exc:  # a callback's HttpError comes wrapped
            cause = exc.__context__
            self._fail(
                cause
                if isinstance(cause, HttpError)
                else HttpError(f"malformed response ({type(exc).__name__})")
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if exc is None and self.head_done and self.until_close:  # the close ends the body
            waiter.set_result(self._response())
        else:
            waiter.set_exception(HttpError("connection closed before the whole response"))

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.waiter is None:  # a second response to one request
            raise HttpError("unrequested response")
        self.headers, self.chunks, self.size = {}, [], 0
        self.head_done = self.until_close = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head_done:  # a trailer field of a chunked body: not part of the answer
            return
        if len(self.headers) >= MAX_HEADERS:
            raise HttpError("too many response headers")
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.head_done = True
        status = self.parser.get_status_code()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self.until_close = (
            status >= 200
            and status not in (204, 304)
            and "content-length" not in self.headers
            and not self.chunked
        )
        keep_alive = self.headers.get("keep-alive", "")
        for part in keep_alive.split(","):
            name, _, value = part.strip().partition("=")
            if name.lower() == "timeout" and value.strip().isdigit():
                self.keep_alive_s = float(value)

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        self.framing -= len(body)
        if self.size > MAX_RESPONSE_BYTES:
            raise HttpError(f"response larger than {MAX_RESPONSE_BYTES} bytes")
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.parser.get_status_code() < 200:
            return  # an interim response (100 Continue, 103 Early Hints): the answer follows
        waiter, self.waiter = self.waiter, None
        response = self._response()
        if not self.parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _response(self) -> HttpResponse:
        return HttpResponse(self.parser.get_status_code(), self.headers, b"".join(self.chunks))

    # the client's side

    def send(self, request: bytes) -> asyncio.Future[HttpResponse]:
        if self.transport is None or self.waiter is not None:
            raise HttpError("connection not ready")
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.received = False
        self.framing = 0
        if self.chunked:  # a fresh parser: the last trailer field must not open the next head
            self.parser = httptools.HttpResponseParser(self)
            self.chunked = False
        self.sent_at = loop.time()
        self.transport.write(request)
        return self.waiter

    def reusable(self, now: float, idle_timeout_s: float) -> bool:
        """Open, idle for less than `idle_timeout_s` and less than the server's own
        keep-alive timeout (less a second)."""
        if self.closed or self.transport is None or self.transport.is_closing():
            return False
        limit = idle_timeout_s
        if self.keep_alive_s is not None:
            limit = min(limit, self.keep_alive_s - 1.0)
        return now - self.idle_since < limit

    def _fail(self, exc: HttpError) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.waiter = None
        self.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def leave(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Drop a connection of another event loop: aborted on that loop when it is still
        open, else shut down (the peer sees it close; the descriptor goes with the
        transport)."""
        self.closed = True
        if self.transport is None:
            return
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.transport.abort)
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def split_base_url(url: str) -> SplitResult:
    """`url` split, when a client can call it: http(s) with a host, no white space or control
    characters, no credentials (never sent: a key goes in a header) and no query or fragment
    (the request path is appended); else ValueError, whose message does not repeat the URL."""
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("must not hold white space or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold credentials: name the provider key in `api_key`")
    if parts.query or parts.fragment:
        raise ValueError("must not hold a query or a fragment")
    _ = parts.port  # a port that is not a number raises ValueError
    return parts


def encode_headers(headers: dict[str, str]) -> bytes:
    """The header lines of a request (`Origin.post` adds Host and Content-Length); a name or
    value that could split the request (CR, LF, NUL; a colon in a name) is refused."""
    lines = []
    for name, value in headers.items():
        if not name or any(c in name or c in value for c in "\r\n\0") or ":" in name:
            raise ValueError(f"invalid HTTP header {name!r}")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


class Origin:
    """Keep-alive connections to one `scheme://host:port` (`http` or `https`), at most
    `limit` of them at once; calls beyond that wait for a free one."""

    def __init__(
        self,
        base_url: str,
        *,
        limit: int = 512,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = split_base_url(base_url)
        assert parts.hostname is not None
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.path = parts.path.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = self.port == (443 if self.tls else 80)
        self._host_line = f"Host: {host if default_port else f'{host}:{self.port}'}\r\n".encode()
        self._ssl = ssl_context
        self._starts: dict[str, bytes] = {}
        self.limit = limit
        self.idle_timeout_s = idle_timeout_s
        self._closed = False
        # the pool belongs to one event loop (connections and the semaphore are bound to it)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._slots = asyncio.Semaphore(limit)

    async def post(
        self, path: str, body: bytes, headers: bytes, *, timeout_s: float
    ) -> HttpResponse:
        """POST `body` to this origin's base path + `path` with `headers` (`encode_headers`);
        the whole call (waiting for a connection included) within `timeout_s`, else
        `TimeoutError`. Raises `HttpError` when no whole response came back."""
        start = self._starts.get(path)
        if start is None:
            if any(c.isspace() or ord(c) < 32 for c in path):
                raise ValueError(f"path holds white space or control characters: {path!r}")
            start = f"POST {self.path}{path} HTTP/1.1\r\n".encode() + self._host_line
            self._starts[path] = start
        request = b"".join((start, headers, b"Content-Length: %d\r\n\r\n" % len(body), body))
        self._bind()
        async with asyncio.timeout(timeout_s), self._slots:
            conn = self._reuse()
            if conn is not None:
                try:
                    return await self._exchange(conn, request)
                except HttpError:
                    if not self._stale(conn):
                        raise
            return await self._exchange(await self._connect(), request)

    def _bind(self) -> None:
        if self._closed:
            raise HttpError("the client is closed")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a new event loop: the old pool is unusable
            old, self._loop = self._loop, loop
            for conn in [*self._idle, *self._busy]:
                conn.leave(old)
            self._idle, self._busy = [], set()
            self._slots = asyncio.Semaphore(self.limit)

    @staticmethod
    def _stale(conn: _Connection) -> bool:
        """A reused connection that failed as if the server had closed it while it was idle:
        not a byte of answer, within `STALE_WINDOW_S` of the send. The request is then sent
        once more on a new connection; a failure later on might follow work the server did
        (and bills), so it is the caller's."""
        if conn.received:
            return False
        return asyncio.get_running_loop().time() - conn.sent_at < STALE_WINDOW_S

    async def _exchange(self, conn: _Connection, request: bytes) -> HttpResponse:
        self._busy.add(conn)
        try:
            response = await conn.send(request)
        except BaseException:  # failed, timed out or cancelled: the upstream must see it
            conn.abort()
            raise
        finally:
            self._busy.discard(conn)
        if self._closed:
            conn.close()
        elif not conn.closed:
            conn.idle_since = asyncio.get_running_loop().time()
            self._idle.append(conn)
        return _decoded(response)

    def _reuse(self) -> _Connection | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to be stale
            if conn.reusable(now, self.idle_timeout_s):
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            if self.tls:
                context = self._ssl or _default_ssl_context()
                _, conn = await loop.create_connection(
                    _Connection, self.host, self.port, ssl=context, server_hostname=self.host
                )
            else:
                _, conn = await loop.create_connection(_Connection, self.host, self.port)
        except (OSError, ssl.SSLError) as exc:
            raise HttpError(f"cannot connect ({type(exc).__name__})") from None
        if self._closed:
            conn.abort()
            raise HttpError("the client is closed")
        return conn

    def close(self) -> None:
        """Close every connection; calls in flight fail and none is started again."""
        self._closed = True
        if self._loop is None or self._loop.is_closed():
            return
        for conn in [*self._idle, *self._busy]:
            conn.abort()
        self._idle.clear()


def _decoded(response: HttpResponse) -> HttpResponse:
    """The response with its gzip or deflate body decoded; an error status is returned as it
    is (its body is not read, and its status and headers must reach the caller)."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("identity", "") or response.status >= 300:
        return response
    if encoding not in ("gzip", "deflate"):
        raise HttpError(f"unsupported content-encoding {encoding[:40]!r}")  # upstream text: cut
    # gzip: a gzip or zlib header (wbits 32 + 15 detects either); deflate: a zlib header, else
    # raw deflate below
    decoder = zlib.decompressobj(47 if encoding == "gzip" else 15)
    try:
        body = decoder.decompress(response.body, MAX_RESPONSE_BYTES)
    except zlib.error:
        if encoding != "deflate":
            raise HttpError("corrupt gzip body") from None
        try:  # some servers send raw deflate without the zlib header
            decoder = zlib.decompressobj(-15)
            body = decoder.decompress(response.body, MAX_RESPONSE_BYTES)
        except zlib.error:
            raise HttpError("corrupt deflate body") from None
    if decoder.unconsumed_tail:
        raise HttpError(f"response larger than {MAX_RESPONSE_BYTES} bytes once decoded")
    return HttpResponse(response.status, response.headers, body)
