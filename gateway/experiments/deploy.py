"""Deploying a variant into a running experiment: the one path for the admin API
(`PUT /admin/experiments/{name}/variants`) and for `triage-gateway models deploy`.

A variant is built before it is stored, with the construction every replica uses when it
installs a runtime variant (`runtime_variant_builder`: the provider-key check, then
`VariantPool.prepare`), and checked against the experiment (`RouteTable.with_runtime`). A variant
that cannot be built or does not fit is refused with an `InvalidRequestError` naming why, and
nothing is stored; otherwise it is stored, installed here, and every replica installs it at its
next poll (`RouteStore.put_variant`).

The running gateway deploys with its own route store; a process that is not a replica (the CLI)
gets one from `offline_store`: the routes file, the stored weights and runtime variants, and the
replica's builder with the same provider facts, keys and baseline model.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.experiments import model_registry
from gateway.experiments.config import RoutesConfig
from gateway.experiments.model_registry import VariantOptions
from gateway.experiments.store import RouteStore, VariantPut
from gateway.experiments.table import RouteTable, RuntimeVariant
from gateway.infra.metrics import GatewayMetrics
from gateway.infra.settings import Settings
from gateway.infra.state import baseline_model_dir, runtime_variant_builder
from gateway.local.loader import LocalModelError
from gateway.request.pricing import ProviderFacts
from gateway.request.upstream import UpstreamClient
from gateway.request.variants import VariantPool


async def deploy_variant(store: RouteStore, experiment: str, runtime: RuntimeVariant) -> VariantPut:
    """Build, check, store and install a runtime variant (add or replace); see the module
    docstring. A registry model deployed as the shadow gets the registry label `shadow` (when
    Redis fails at that step the variant stays deployed and `registry_status` says so); the
    status shown by `models list` is derived from traffic (`model_registry.live_statuses`)."""
    result = await store.put_variant(experiment, runtime)
    if runtime.registry_name is not None and runtime.shadow_sample_rate is not None:
        try:
            await model_registry.set_status(store.redis, runtime.registry_name, "shadow")
        except RedisError:  # the variant is in place; the registry status is a label
            result["registry_status"] = "not updated (redis unavailable)"
    return result


async def offline_store(
    redis: aioredis.Redis, settings: Settings, routes: RoutesConfig
) -> RouteStore:
    """A route store for a process that runs no replica, loaded with the stored weights and
    runtime variants, that builds variants as a replica does (into a pool of its own)."""
    metrics = GatewayMetrics()
    facts, keys = ProviderFacts.from_litellm(), settings.provider_key_values()
    pool = VariantPool(UpstreamClient(), metrics)  # building opens no connection
    try:
        baseline = baseline_model_dir(settings, routes)
    except LocalModelError:  # not built where this runs: a variant that needs it is refused
        baseline = None
    builder = runtime_variant_builder(pool, routes, facts, keys, baseline)
    store = RouteStore(redis, RouteTable(routes), metrics, build_variant=builder)
    await store.refresh()
    return store


async def deploy_model(
    redis: aioredis.Redis,
    settings: Settings,
    routes: RoutesConfig,
    *,
    name: str,
    experiment: str,
    as_variant: str,
    actor: str,
    weight: float = 0.0,
    shadow: float | None = None,
    options: VariantOptions = VariantOptions(),
) -> VariantPut:
    """Deploy the registered model `name` as variant `as_variant` of `experiment` (at `weight`,
    or as the experiment's shadow at sample rate `shadow`) from outside the gateway: the
    `models deploy` command. Returns what `deploy_variant` returns."""
    record = await model_registry.get_model(redis, name)
    variant = model_registry.to_variant(record, as_variant, weight=weight, options=options)
    runtime = RuntimeVariant(
        variant=variant,
        shadow_sample_rate=shadow,
        registry_name=name,
        actor=actor,
        ts=time.time(),
    )
    store = await offline_store(redis, settings, routes)
    return await deploy_variant(store, experiment, runtime)
