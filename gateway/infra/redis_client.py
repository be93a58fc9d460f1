"""The one way to reach the gateway's Redis: the configured GATEWAY_REDIS_URL, or else an
embedded redis-server started under the data directory.

`redis_url` makes that decision for the gateway; `async_connect` gives a client on it for the
length of a block and stops an embedded server it started. The running gateway keeps its own
pooled clients on the URL (see `gateway.infra.state`).

`open_store` is the CLI's way in: the configured URL, else the embedded server a running
gateway started for the same data directory (`embedded_redis.find_running`), else one started
for the command; `Store.description` says which, without credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar, cast
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from gateway.errors import UnavailableError
from gateway.infra import redis_keys
from gateway.infra.embedded_redis import EmbeddedRedis, find_running
from gateway.infra.settings import Settings

log = logging.getLogger("triage_gateway")
T = TypeVar("T")

TIMEOUT_S = 5.0
"""Socket and connect timeout of a client from `async_connect` (None: no timeout)."""


def client_for(
    url: str,
    settings: Settings,
    *,
    timeout_s: float | None = TIMEOUT_S,
    connect_timeout_s: float | None = None,
    max_connections: int | None = None,
    retry: Retry | None = None,
) -> aioredis.Redis:
    """A client on `url`: redis-py's cluster client (`redis.asyncio.cluster.RedisCluster`,
    discovering every node from the one named) when `GATEWAY_REDIS_CLUSTER` is set, a plain
    client otherwise. Both speak the same commands; the cluster one routes each by slot."""
    connect_s = timeout_s if connect_timeout_s is None else connect_timeout_s
    if settings.redis_cluster:
        cluster = RedisCluster.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=connect_s,
            max_connections=max_connections or 2**31,
            retry=retry or Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        )
        return cast("aioredis.Redis", cluster)
    if retry is not None:
        return aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=connect_s, retry=retry
        )
    return aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=connect_s)


def redis_url(
    settings: Settings, launched: EmbeddedRedis | None = None
) -> tuple[str, EmbeddedRedis | None]:
    """The configured Redis URL, or an embedded server started under the data directory
    (returned too: the caller stops it), or `launched` (an embedded server `serve` launched
    earlier) once it answers. Also chooses the key layout (`redis_keys.configure`): every
    connection of the process starts here."""
    redis_keys.configure(
        cluster=settings.redis_cluster,
        pair_shards=settings.pair_shards,
        archive_url=settings.archive_url,
    )
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value(), None
    embedded = (launched or EmbeddedRedis(settings.data_dir / "redis")).launch().wait()
    log.info(
        "no GATEWAY_REDIS_URL: started embedded Redis", extra={"fields": {"url": embedded.url}}
    )
    return embedded.url, embedded


def describe_url(url: str) -> str:
    """`url` without user name, password or query (which may hold a password)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port is not None else "")
    return f"{parts.scheme}://{netloc}{parts.path}"


@dataclass
class Store:
    """The Redis a command uses: its URL, a description for people, and the embedded server
    started for the command (None when it uses one that was already running)."""

    url: str
    description: str
    embedded: EmbeddedRedis | None = None

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def open_store(settings: Settings) -> Store:
    """The store of a command that is not a replica: GATEWAY_REDIS_URL; else the embedded
    server already running for the data directory (a gateway's); else one started now, for
    the command (the caller closes the `Store`, which stops it)."""
    redis_keys.configure(
        cluster=settings.redis_cluster,
        pair_shards=settings.pair_shards,
        archive_url=settings.archive_url,
    )
    if settings.redis_url is not None:
        url = settings.redis_url.get_secret_value()
        return Store(url, describe_url(url))
    where = settings.data_dir / "redis"
    running = find_running(where)
    if running is not None:
        who = running.owner or "another process"
        if running.owner == "gateway":
            who = "running gateway"
        pid = f", pid {running.pid}" if running.pid is not None else ""
        return Store(running.url, f"embedded redis in {where} ({who}{pid})")
    embedded = EmbeddedRedis(where, owner="cli").start()
    return Store(
        embedded.url,
        f"embedded redis in {where} (no gateway running on it: started for this command)",
        embedded,
    )


@contextlib.asynccontextmanager
async def async_connect(
    settings: Settings, *, timeout_s: float | None = TIMEOUT_S
) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client on the gateway's Redis for the block (see `redis_url`)."""
    url, embedded = redis_url(settings)
    try:
        client = client_for(url, settings, timeout_s=timeout_s)
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
