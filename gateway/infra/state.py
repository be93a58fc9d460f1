"""Everything the running gateway owns, built in one place and closed in reverse order.

`build_state` is used by the app's lifespan only. Offline tools build just the parts they
need from the same `Settings`: eval a `VariantPool` from the routes file (the classify path
without a server), the CLI its Redis clients through `gateway.infra.redis_client`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway import __version__
from gateway.experiments import served_routes
from gateway.experiments.config import (
    DEFAULT_ROUTES_PATH,
    Experiment,
    RoutesConfig,
    Variant,
    load_routes,
)
from gateway.experiments.store import RouteStore, VariantBuilder
from gateway.experiments.table import RouteTable
from gateway.infra.embedded_redis import EmbeddedRedis
from gateway.infra.metrics import GatewayMetrics
from gateway.infra.redis_client import client_for, redis_url
from gateway.infra.settings import Settings
from gateway.local.loader import LocalModelError, baseline_model_path, needs_baseline
from gateway.pairs.pairlog import PairLog
from gateway.request.classify import Classifier
from gateway.request.pricing import ProviderError, ProviderFacts
from gateway.request.upstream import UpstreamClient
from gateway.request.variants import VariantPool

log = logging.getLogger("triage_gateway")


@dataclass
class GatewayState:
    settings: Settings
    routes: RoutesConfig
    table: RouteTable
    metrics: GatewayMetrics
    upstream: UpstreamClient
    pool: VariantPool
    classifier: Classifier
    redis: aioredis.Redis
    route_store: RouteStore | None = None
    embedded: EmbeddedRedis | None = None
    pairs: PairLog | None = None

    async def close(self) -> None:
        if self.route_store is not None:
            await self.route_store.close()
        await self.classifier.drain()
        if self.pairs is not None:
            await self.pairs.close()
        await self.upstream.close()
        await self.redis.aclose()
        if self.embedded is not None:  # its AOF compaction may take seconds: off the loop
            await asyncio.to_thread(self.embedded.stop)


def baseline_model_dir(settings: Settings, routes: RoutesConfig) -> Path | None:
    """The built-in baseline local model's directory, when a variant uses it. It is built
    before the server starts (`triage-gateway serve`, `training.baseline`), never here: a
    missing one fails the start."""
    if not needs_baseline(routes):
        return None
    path = baseline_model_path(settings.data_dir)
    if not (path / "model_card.json").is_file():
        raise LocalModelError(
            f"the baseline local model is missing from {path}: start the gateway with "
            "`triage-gateway serve`, which builds it first, or train a model with "
            "`triage-gateway train-local` and name it in the local variant's `model_path`"
        )
    return path


def runtime_variant_builder(
    pool: VariantPool,
    routes: RoutesConfig,
    facts: ProviderFacts,
    keys: dict[str, str],
    baseline: Path | None,
) -> VariantBuilder:
    """`VariantPool.prepare` for variants added at run time (admin API, `models deploy`). Such a
    variant may send a configured provider key only to a base URL that the routes file already
    sends it to, or to that provider's own API: adding variants must not move secrets."""
    allowed: dict[str, set[str]] = {}
    for exp in routes.experiments:
        for v in exp.variants:
            if not v.is_local and not v.is_cascade:
                ep = facts.endpoint(v)
                allowed.setdefault(v.api_key or ep.provider, set()).add(ep.base_url)
    for name in keys:
        for provider in (name, f"{name}_ai"):  # "together" is litellm's "together_ai"
            try:
                probe = Variant(name="probe", model=f"{provider}/probe")
                allowed.setdefault(name, set()).add(facts.endpoint(probe).base_url)
            except ProviderError:
                continue

    def build(exp: Experiment, v: Variant) -> Callable[[], None]:
        if not v.is_local and not v.is_cascade:
            ep = facts.endpoint(v)
            key_name = v.api_key or ep.provider
            where = sorted(allowed.get(key_name, set()))
            if keys.get(key_name) and ep.base_url not in where:
                raise ValueError(
                    f"provider key {key_name!r} is only sent to {where}, not {ep.base_url}; "
                    "name another key (api_key) or add the endpoint to the routes file"
                )
        return pool.prepare(exp, v, facts, keys, baseline)

    return build


async def _record_routes(client: aioredis.Redis, path: Path) -> None:
    """Record the routes file served (`served_routes`), for CLI commands run elsewhere."""
    try:
        await served_routes.record(client, *served_routes.read_file(path))
    except (RedisError, OSError) as exc:
        log.warning("served routes not recorded", extra={"fields": {"error": type(exc).__name__}})


async def build_state(
    settings: Settings, launched_redis: EmbeddedRedis | None = None
) -> GatewayState:
    routes = load_routes(settings.routes)
    metrics = GatewayMetrics()
    metrics.build_info.labels(__version__, sys.version.split()[0]).set(1)
    table = RouteTable(routes)
    for exp in routes.experiments:
        metrics.init_experiment(exp)
        metrics.set_weights(exp.name, dict(table.weights(exp.name)))
    upstream = UpstreamClient()
    facts, keys = ProviderFacts.from_litellm(), settings.provider_key_values()
    baseline = baseline_model_dir(settings, routes)
    pool = VariantPool.build(
        routes, facts, upstream, metrics, provider_keys=keys, baseline_model=baseline
    )
    url, embedded = redis_url(settings, launched_redis)
    try:
        # A blocking pool: a burst of admin/review calls waits for a connection instead of failing.
        if settings.redis_cluster:
            client = client_for(url, settings, timeout_s=2.0, max_connections=64)
        else:
            connections = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=64, timeout=5.0, socket_timeout=2.0, socket_connect_timeout=2.0
            )
            client = aioredis.Redis(connection_pool=connections)
        pairs = PairLog.from_url(url, settings, metrics)
        classifier = Classifier(table=table, pool=pool, metrics=metrics, pairs=pairs)
        await pairs.start()
        builder = runtime_variant_builder(pool, routes, facts, keys, baseline)
        route_store = RouteStore(client, table, metrics, build_variant=builder)
        try:
            await route_store.refresh()
        except (RedisError, OSError) as exc:
            log.warning(
                "weights not loaded from Redis", extra={"fields": {"error": type(exc).__name__}}
            )
        route_store.start(settings.weights_poll_s)
        await _record_routes(client, settings.routes or DEFAULT_ROUTES_PATH)
    except BaseException:
        if embedded is not None:
            embedded.stop(compact=False)  # a failed start leaves no redis-server behind
        raise
    if embedded is not None:
        # Restarted with backoff when it dies; /healthz fails once it gives up.
        embedded.supervise()
    return GatewayState(
        settings=settings,
        routes=routes,
        table=table,
        metrics=metrics,
        upstream=upstream,
        pool=pool,
        classifier=classifier,
        redis=client,
        route_store=route_store,
        embedded=embedded,
        pairs=pairs,
    )
