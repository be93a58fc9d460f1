"""The one way to reach the gateway's Redis: the configured GATEWAY_REDIS_URL, or else an
embedded redis-server started under the data directory.

`redis_url` makes that decision; `async_connect` gives a client on it for the length of a
block and stops an embedded server it started. The running gateway keeps its own
pooled clients on the URL (see `gateway.infra.state`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.errors import UnavailableError
from gateway.infra.embedded_redis import EmbeddedRedis
from gateway.infra.settings import Settings

log = logging.getLogger("triage_gateway")
T = TypeVar("T")

TIMEOUT_S = 5.0
"""Socket and connect timeout of a client from `async_connect` (None: no timeout)."""


def redis_url(settings: Settings) -> tuple[str, EmbeddedRedis | None]:
    """The configured Redis URL, or an embedded server started under the data directory
    (returned too: the caller stops it)."""
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value(), None
    embedded = EmbeddedRedis(settings.data_dir / "redis").start()
    log.info(
        "no GATEWAY_REDIS_URL: started embedded Redis", extra={"fields": {"url": embedded.url}}
    )
    return embedded.url, embedded


@contextlib.asynccontextmanager
async def async_connect(
    settings: Settings, *, timeout_s: float | None = TIMEOUT_S
) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client on the gateway's Redis for the block (see `redis_url`)."""
    url, embedded = redis_url(settings)
    try:
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        try:
            yield client
        finally:
            await client.aclose()
    finally:
        if embedded is not None:
            embedded.stop()


def run_with_redis(settings: Settings, work: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
    """Run `work(client)` to completion on a new event loop, with a client from
    `async_connect`. A Redis failure (or an OS error on the way) is raised as
    `UnavailableError` naming it; what `work` raises otherwise passes through."""

    async def run() -> T:
        async with async_connect(settings) as client:
            return await work(client)

    try:
        return asyncio.run(run())
    except (RedisError, OSError) as exc:
        raise UnavailableError(f"redis unavailable ({type(exc).__name__}: {exc})") from None
