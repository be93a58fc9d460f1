"""The upstream HTTP/1.1 client (`gateway.request.http1`) against real servers on 127.0.0.1:
raw asyncio servers that answer as a script says (keep-alive, chunked, gzip, a connection
closed at the wrong moment, a slow answer, garbage), and aiohttp's own server over TLS."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trustme
from aiohttp import web

from gateway.errors import UpstreamError
from gateway.experiments.config import Price
from gateway.request.http1 import (
    MAX_RESPONSE_BYTES,
    STALE_WINDOW_S,
    HttpError,
    Origin,
    encode_headers,
)
from gateway.request.pricing import Endpoint
from gateway.request.upstream import UpstreamClient

HEADERS = encode_headers({"Content-Type": "application/json"})
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Close(bytes):
    """An answer after which the server closes the connection."""


# (request number on this connection, the raw request) -> bytes to send back (then close when
# they are `Close`), or None to close without answering
Script = Callable[[int, bytes], Awaitable[bytes | None]]


class RawServer:
    """Reads each request whole (head + Content-Length body) and answers as `script` says."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.url = ""
        self.reader: asyncio.StreamReader | None = None
        """The connection being answered (a script may wait on it)."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        self.reader = reader
        n = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = await self.script(n, request)
                n += 1
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if isinstance(answer, Close):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


@asynccontextmanager
async def raw_server(script: Script) -> AsyncIterator[RawServer]:
    srv = RawServer(script)
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    srv.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield srv
    finally:
        server.close()


async def always_ok(n: int, request: bytes) -> bytes:
    return OK


async def test_calls_share_one_keep_alive_connection_and_send_a_well_formed_request() -> None:
    async with raw_server(always_ok) as srv:
        origin = Origin(srv.url)
        for _ in range(5):
            response = await origin.post("/chat/completions", b'{"a":1}', HEADERS, timeout_s=5)
            assert (response.status, response.body) == (200, b"{}")
            assert response.headers["content-type"] == "application/json"
        origin.close()
    assert srv.connections == 1
    first = srv.requests[0]
    port = srv.url.split(":")[2].split("/")[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{port}\r\n".encode() in first
    assert b"\r\nContent-Length: 7\r\n\r\n" in first
    assert first.endswith(b'\r\n\r\n{"a":1}')


async def test_chunked_and_gzip_bodies_are_decoded() -> None:
    packed = gzip.compress(b'{"ok":true}')

    async def answer(n: int, request: bytes) -> bytes:
        if n == 0:
            chunks = b'3\r\n{"o\r\n5\r\nk":1}\r\n0\r\n\r\n'
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
        return (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed)
            + packed
        )

    async with raw_server(answer) as srv:
        origin = Origin(srv.url)
        assert (await origin.post("/x", b"", HEADERS, timeout_s=5)).body == b'{"ok":1}'
        assert (await origin.post("/x", b"", HEADERS, timeout_s=5)).body == b'{"ok":true}'
        origin.close()


async def test_an_idle_connection_the_server_dropped_is_replaced_once() -> None:
    """The server closes the kept connection as the second request arrives, without a byte
    of answer (an idle-timeout race): the request goes out again on a new connection."""

    async def answer(n: int, request: bytes) -> bytes | None:
        return OK if n == 0 else None

    async with raw_server(answer) as srv:
        origin = Origin(srv.url)
        assert (await origin.post("/x", b"1", HEADERS, timeout_s=5)).status == 200
        assert (await origin.post("/x", b"2", HEADERS, timeout_s=5)).status == 200
        origin.close()
    assert srv.connections == 2
    assert len(srv.requests) == 3  # the second one was sent twice


async def cut_short(n: int, request: bytes) -> bytes | None:
    return OK if n == 0 else Close(b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"part')


async def dropped_late(n: int, request: bytes) -> bytes | None:
    if n == 0:
        return OK
    await asyncio.sleep(STALE_WINDOW_S + 0.3)
    return None


@pytest.mark.parametrize("answer", [cut_short, dropped_late], ids=["cut-short", "dropped-late"])
async def test_a_failure_after_the_upstream_may_have_worked_is_not_sent_again(
    answer: Script,
) -> None:
    """A response cut short, or a reused connection dropped without an answer after the
    stale window: the upstream may have worked (and billed) on the request, so the failure
    is the caller's."""
    async with raw_server(answer) as srv:
        origin = Origin(srv.url)
        await origin.post("/x", b"1", HEADERS, timeout_s=5)
        with pytest.raises(HttpError, match="closed before the whole response"):
            await origin.post("/x", b"2", HEADERS, timeout_s=5)
        origin.close()
    assert len(srv.requests) == 2


async def test_a_timeout_aborts_the_connection_so_the_upstream_sees_it() -> None:
    """The upstream, still working on its answer, sees the connection end when the call
    times out (and would stop generating)."""
    seen_gone = asyncio.Event()

    async def slow(n: int, request: bytes) -> bytes | None:
        reader = srv.reader  # the server below, assigned before any request arrives
        assert reader is not None
        with contextlib.suppress(ConnectionError):
            await reader.read()  # b"" (or a reset) once the client has gone
        seen_gone.set()
        return None

    async with raw_server(slow) as srv:
        origin = Origin(srv.url)
        with pytest.raises(TimeoutError):
            await origin.post("/x", b"", HEADERS, timeout_s=0.2)
        await asyncio.wait_for(seen_gone.wait(), 2)
        origin.close()


async def test_the_connection_limit_holds_and_waiting_calls_proceed() -> None:
    async def slow(n: int, request: bytes) -> bytes:
        await asyncio.sleep(0.05)
        return OK

    async with raw_server(slow) as srv:
        origin = Origin(srv.url, limit=2)
        results = await asyncio.gather(
            *(origin.post("/x", b"", HEADERS, timeout_s=5) for _ in range(6))
        )
        origin.close()
    assert [r.status for r in results] == [200] * 6
    assert srv.most_open == 2


@pytest.mark.parametrize(
    "reply",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_RESPONSE_BYTES + 1)
        + b"x" * (MAX_RESPONSE_BYTES + 1),
        b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ids=["garbage", "too-large", "unknown-encoding"],
)
async def test_bad_responses_are_http_errors(reply: bytes) -> None:
    async def answer(n: int, request: bytes) -> bytes:
        return reply

    async with raw_server(answer) as srv:
        origin = Origin(srv.url)
        with pytest.raises(HttpError):
            await origin.post("/x", b"", HEADERS, timeout_s=10)
        origin.close()


async def test_nothing_listening_is_an_http_error() -> None:
    async with raw_server(always_ok) as srv:
        url = srv.url
    origin = Origin(url)
    with pytest.raises(HttpError, match="cannot connect"):
        await origin.post("/x", b"", HEADERS, timeout_s=5)


def test_headers_and_urls_that_could_split_a_request_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid HTTP header"):
        encode_headers({"Authorization": "Bearer k\r\nX-Evil: 1"})
    with pytest.raises(ValueError, match="invalid HTTP header"):
        encode_headers({"X-A: b": "c"})
    for url in ("ftp://h/x", "http:///x", "http://h/a b", "http://h/a\r\nX: 1"):
        with pytest.raises(ValueError):
            Origin(url)


async def test_a_key_that_could_split_the_request_is_an_upstream_error_without_the_key() -> None:
    async with raw_server(always_ok) as srv:
        client = UpstreamClient()
        with pytest.raises(UpstreamError) as caught:
            await client.chat(
                Endpoint(base_url=srv.url, model="m", provider="openrouter"),
                "sk-secret\r\nX-Evil: 1",
                [{"role": "user", "content": "hi"}],
                timeout_s=5,
                max_tokens=10,
                response_format=None,
                price=Price(input_per_1m=1.0, output_per_1m=1.0),
            )
        await client.close()
    assert "sk-secret" not in str(caught.value)
    assert srv.requests == []


async def test_tls_with_a_verified_certificate() -> None:
    """HTTPS as OpenRouter is reached: aiohttp's server with a certificate from a test CA the
    client trusts; a client that does not trust it refuses the connection."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def chat(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path, "body": (await request.read()).decode()})

    app = web.Application()
    app.router.add_post("/api/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = runner.addresses[0][1]
    try:
        origin = Origin(f"https://127.0.0.1:{port}/api/v1", ssl_context=client_ctx)
        for _ in range(2):
            response = await origin.post("/chat/completions", b"hi", HEADERS, timeout_s=5)
            assert response.status == 200
            assert response.body == b'{"path": "/api/v1/chat/completions", "body": "hi"}'
        origin.close()
        untrusting = Origin(
            f"https://127.0.0.1:{port}/api/v1", ssl_context=ssl.create_default_context()
        )
        with pytest.raises(HttpError, match="cannot connect"):
            await untrusting.post("/chat/completions", b"hi", HEADERS, timeout_s=5)
    finally:
        await runner.cleanup()


async def test_an_interim_response_is_skipped_and_never_answers_the_next_call() -> None:
    """103 Early Hints before the answer: the call gets its own 200, and the next call on the
    same connection gets the next answer, not this one's."""

    async def answer(n: int, request: bytes) -> bytes:
        body = b'{"n":%d}' % n
        final = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        return b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n" + final

    async with raw_server(answer) as srv:
        origin = Origin(srv.url)
        first = await origin.post("/x", b"", HEADERS, timeout_s=5)
        second = await origin.post("/x", b"", HEADERS, timeout_s=5)
        origin.close()
    assert (first.status, first.body, second.body) == (200, b'{"n":0}', b'{"n":1}')
    assert srv.connections == 1


async def test_an_unrequested_second_response_spoils_the_connection_not_the_next_call() -> None:
    async def answer(n: int, request: bytes) -> bytes:
        body = b'{"n":%d}' % n
        one = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        # a second, unasked-for response, cut mid-body: its tail would prefix the next answer
        extra = b'HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{"extra'
        return one + extra if n == 0 else one

    async with raw_server(answer) as srv:
        origin = Origin(srv.url)
        assert (await origin.post("/x", b"", HEADERS, timeout_s=5)).body == b'{"n":0}'
        assert (await origin.post("/x", b"", HEADERS, timeout_s=5)).body == b'{"n":0}'
        origin.close()
    assert srv.connections == 2  # the first connection was dropped, not reused


async def test_a_response_without_a_length_ends_with_the_connection() -> None:
    async def answer(n: int, request: bytes) -> bytes:
        return Close(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"whole":true}')

    async with raw_server(answer) as srv:
        origin = Origin(srv.url)
        for _ in range(2):
            response = await origin.post("/x", b"", HEADERS, timeout_s=5)
            assert (response.status, response.body) == (200, b'{"whole":true}')
        origin.close()
    assert srv.connections == 2


async def test_a_closed_origin_fails_calls_in_flight_and_starts_no_more() -> None:
    release, arrived = asyncio.Event(), asyncio.Event()

    async def slow(n: int, request: bytes) -> bytes:
        arrived.set()
        await release.wait()
        return OK

    async with raw_server(slow) as srv:
        origin = Origin(srv.url)
        call = asyncio.ensure_future(origin.post("/x", b"", HEADERS, timeout_s=5))
        await asyncio.wait_for(arrived.wait(), 5)
        origin.close()
        with pytest.raises(HttpError):
            await call
        with pytest.raises(HttpError, match="closed"):
            await origin.post("/x", b"", HEADERS, timeout_s=5)
        release.set()
    assert len(srv.requests) == 1 and srv.connections == 1


async def test_an_endless_response_head_is_cut_off() -> None:
    async def answer(n: int, request: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (4 << 20) + b"\r\nContent-Length: 2\r\n\r\n{}"

    async with raw_server(answer) as srv:
        origin = Origin(srv.url)
        with pytest.raises(HttpError, match="head larger"):
            await origin.post("/x", b"", HEADERS, timeout_s=10)
        origin.close()


async def test_a_trailer_is_dropped_and_never_reaches_the_next_answer() -> None:
    """A chunked body's trailer fields are not headers of its answer, and the last one (which
    the parser holds until a next field) never becomes a header of the next call's answer."""

    async def answer(n: int, request: bytes) -> bytes:
        if n == 0:
            body = b"2\r\n{}\r\n0\r\nX-Trailer: 1\r\nContent-Encoding: gzip\r\n\r\n"
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
        return OK

    async with raw_server(answer) as srv:
        origin = Origin(srv.url)
        for _ in range(2):
            response = await origin.post("/x", b"", HEADERS, timeout_s=5)
            assert (response.status, response.body) == (200, b"{}")
            assert not {"x-trailer", "content-encoding"} & set(response.headers)
        origin.close()
    assert srv.connections == 1


async def test_an_endless_trailer_is_cut_off() -> None:
    async def answer(n: int, request: bytes) -> bytes:
        trailer = b"0\r\nX-Big: " + b"a" * (4 << 20) + b"\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n" + trailer

    async with raw_server(answer) as srv:
        origin = Origin(srv.url)
        with pytest.raises(HttpError, match="head larger"):
            await origin.post("/x", b"", HEADERS, timeout_s=10)
        origin.close()


async def test_an_error_status_keeps_its_headers_whatever_its_encoding() -> None:
    async def answer(n: int, request: bytes) -> bytes:
        head = b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nContent-Encoding: br\r\n"
        return head + b"Content-Length: 2\r\n\r\nxx"

    async with raw_server(answer) as srv:
        origin = Origin(srv.url)
        response = await origin.post("/x", b"", HEADERS, timeout_s=5)
        origin.close()
    assert (response.status, response.headers["retry-after"]) == (429, "7")


async def test_a_protocol_switch_is_an_http_error() -> None:
    async def answer(n: int, request: bytes) -> bytes:
        return (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )

    async with raw_server(answer) as srv:
        origin = Origin(srv.url)
        with pytest.raises(HttpError, match="switched protocols"):
            await origin.post("/x", b"", HEADERS, timeout_s=5)
        origin.close()


def test_an_origin_serves_a_second_event_loop() -> None:
    """The pool belongs to the loop that made it: on another loop, the connections the first
    one kept (open: the server runs in its own thread) are aborted on their own loop, not
    used (that loop is not running, so nothing would read their answers)."""

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    started = threading.Event()
    stop: list[Callable[[], object]] = []
    port: list[int] = []

    def serve() -> None:
        async def main() -> None:
            app = web.Application()
            app.router.add_post("/v1/x", ok)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            port.append(runner.addresses[0][1])
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            stop.append(lambda: loop.call_soon_threadsafe(done.set))
            started.set()
            await done.wait()
            await runner.cleanup()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    origin = Origin(f"http://127.0.0.1:{port[0]}/v1")

    async def call() -> int:
        return (await origin.post("/x", b"", HEADERS, timeout_s=3)).status

    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        assert first.run_until_complete(call()) == 200
        assert second.run_until_complete(call()) == 200
        first.run_until_complete(asyncio.sleep(0.05))  # runs the abort it was handed
        origin.close()
        second.run_until_complete(asyncio.sleep(0.05))
    finally:
        first.close()
        second.close()
        stop[0]()
        thread.join(10)


@pytest.mark.parametrize(
    "check",
    [
        test_tls_with_a_verified_certificate,
        test_a_timeout_aborts_the_connection_so_the_upstream_sees_it,
        test_an_interim_response_is_skipped_and_never_answers_the_next_call,
        test_a_closed_origin_fails_calls_in_flight_and_starts_no_more,
        test_an_idle_connection_the_server_dropped_is_replaced_once,
    ],
    ids=lambda f: f.__name__.removeprefix("test_"),
)
def test_on_uvloop(check: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """The gateway serves on uvloop, whose transports (TLS above all) are its own."""
    import uvloop

    uvloop.run(check())
