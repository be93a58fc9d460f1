"""Live weights in Redis: versioned, audited, shared by every replica.

Layout (keys from `gateway.infra.redis_keys`): a hash `weights:<experiment>` with `version` and
`weights` (JSON), and a stream `weights-history:<experiment>` with one entry per change (version,
weights, previous, actor, reason, ts). Each replica polls the version numbers every
`weights_poll_s` (one pipelined round trip for all experiments) and installs a new version
within that interval, so a change reaches every replica in about a second, without restarts.
The routes file gives the weights until the first change is stored.

Variants added at run time (`put_variant`, `store_runtime_variant`): a hash
`variants:<experiment>` (name -> `RuntimeVariant` JSON) and a `variants_version` counter in the
weights hash, read by the same poll; a replica that sees a new counter reads the hash, builds
each variant's runtime (`build_variant`, i.e. `VariantPool.add`) and installs the experiment
with the extra variants, before any weights of the same poll (which may name them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError

from gateway.errors import InvalidRequestError, NotFoundError, UnavailableError
from gateway.experiments.config import Experiment, Variant
from gateway.experiments.table import RouteTable, RuntimeVariant
from gateway.infra import redis_keys
from gateway.infra.metrics import GatewayMetrics

log = logging.getLogger("triage_gateway")

VARIANTS_VERSION = "variants_version"  # field of the weights hash
VariantBuilder = Callable[[Experiment, Variant], None]


async def store_runtime_variant(
    redis: aioredis.Redis, experiment: str, runtime: RuntimeVariant
) -> int:
    """Store (add or replace) a runtime variant and bump the experiment's variants version;
    every replica installs it at its next poll. Returns the new version."""
    pipe = redis.pipeline(transaction=True)
    pipe.hset(
        redis_keys.runtime_variants(experiment), runtime.variant.name, runtime.model_dump_json()
    )
    pipe.hincrby(redis_keys.weights(experiment), VARIANTS_VERSION, 1)
    _, version = await pipe.execute()
    return int(version)


class RouteStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        table: RouteTable,
        metrics: GatewayMetrics,
        build_variant: VariantBuilder | None = None,
    ) -> None:
        self.redis = redis
        self.table = table
        self.metrics = metrics
        self.build_variant = build_variant
        """Builds a runtime variant's runtime (`VariantPool.add`). None (offline tools that
        only manage weights): runtime variants join the table without being built."""
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> list[str]:
        """Install any newer stored weights; returns the experiments that changed."""
        names = [e.name for e in self.table.routes.experiments]
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hmget(redis_keys.weights(name), "version", "weights", VARIANTS_VERSION)
        rows = await pipe.execute()
        changed = []
        for name, (version, weights, variants_version) in zip(names, rows, strict=True):
            if variants_version is not None:
                try:
                    if await self._refresh_variants(name, int(variants_version)):
                        changed.append(name)
                except (RedisError, OSError):
                    raise
                except Exception as exc:  # keep polling whatever a stored variant holds
                    self._skip(name, "*", int(variants_version), f"{type(exc).__name__}: {exc}")
            if version is None or weights is None:
                continue
            v = int(version)
            if v != self.table.versions[name]:
                parsed = {k: float(w) for k, w in orjson.loads(weights).items()}
                try:
                    merged = self.table.check_weights(name, parsed)
                except Exception as exc:  # a stored change that this routes file cannot take
                    log.error(
                        "ignoring stored weights",
                        extra={"fields": {"experiment": name, "error": str(exc)}},
                    )
                    continue
                self.table.set_weights(name, merged, v)
                self.metrics.set_weights(name, merged)
                changed.append(name)
        return list(dict.fromkeys(changed))

    async def _refresh_variants(self, experiment: str, version: int) -> bool:
        """Install the stored runtime variants of a new version; False when unchanged. An entry
        that cannot be installed (bad JSON, a name clash, a runtime that cannot be built) is
        left out and logged, once per version; the others are installed."""
        if version == self.table.variant_versions[experiment]:
            return False
        raw: Any = await self.redis.hgetall(redis_keys.runtime_variants(experiment))
        runtime: dict[str, RuntimeVariant] = {}
        for key, value in raw.items():
            try:
                runtime[key.decode()] = RuntimeVariant.model_validate_json(value)
            except ValidationError as exc:
                self._skip(experiment, key.decode(), version, str(exc))
        self._install_variants(experiment, runtime, version)
        return True

    def _skip(self, experiment: str, variant: str, version: int, error: str) -> None:
        log.error(
            "ignoring stored variant",
            extra={
                "fields": {
                    "experiment": experiment,
                    "variant": variant,
                    "version": version,
                    "error": error,
                }
            },
        )

    def _install_variants(
        self, experiment: str, runtime: Mapping[str, RuntimeVariant], version: int
    ) -> None:
        accepted: dict[str, RuntimeVariant] = {}
        for name, r in sorted(runtime.items(), key=lambda kv: (kv[1].ts, kv[0])):
            trial = {**accepted, name: r}
            try:
                exp, _ = self.table.with_runtime(experiment, trial)
                self._build(exp, r.variant)
            except InvalidRequestError as exc:
                self._skip(experiment, name, version, exc.detail)
                continue
            accepted = trial
        exp, weights = self.table.with_runtime(experiment, accepted)
        self.table.set_runtime(experiment, exp, accepted, weights, version)
        self.metrics.set_weights(experiment, weights)
        log.info(
            "variants changed",
            extra={
                "fields": {
                    "experiment": experiment,
                    "version": version,
                    "variants": sorted(accepted),
                }
            },
        )

    def _build(self, exp: Experiment, variant: Variant) -> None:
        if self.build_variant is None:
            return
        try:
            self.build_variant(exp, variant)
        except Exception as exc:  # a provider that cannot be resolved, a model that won't load
            raise InvalidRequestError(
                f"variant {variant.name!r} cannot be built: {type(exc).__name__}: {exc}"
            ) from None

    async def put_variant(self, experiment: str, runtime: RuntimeVariant) -> dict[str, Any]:
        """Validate, build, store and install a runtime variant (add or replace); every other
        replica installs it at its next poll."""
        current = {**self.table.runtime_variants(experiment), runtime.variant.name: runtime}
        exp, _ = self.table.with_runtime(experiment, current)
        self._build(exp, runtime.variant)
        try:
            version = await store_runtime_variant(self.redis, experiment, runtime)
            await self._refresh_variants(experiment, version)
        except RedisError as exc:
            raise UnavailableError(
                f"variant not stored: redis unavailable ({type(exc).__name__})"
            ) from None
        if runtime.variant.name not in self.table.runtime_variants(experiment):
            raise InvalidRequestError(
                f"variant stored as version {version} but could not be installed (see the log)"
            )
        log.info(
            "variant added",
            extra={
                "fields": {
                    "experiment": experiment,
                    "variant": runtime.variant.name,
                    "version": version,
                    "actor": runtime.actor,
                }
            },
        )
        return {
            "experiment": experiment,
            "variant": runtime.variant.model_dump(mode="json", exclude_none=True),
            "shadow_sample_rate": runtime.shadow_sample_rate,
            "registry_name": runtime.registry_name,
            "variants_version": version,
            "weight": self.table.weights(experiment).get(runtime.variant.name, 0.0),
        }

    async def set_weights(
        self, experiment: str, weights: Mapping[str, float], *, actor: str, reason: str
    ) -> dict[str, Any]:
        """Validate, store and install new weights; returns the history entry."""
        self.table.experiment(experiment)
        merged = self.table.check_weights(experiment, weights)
        previous = dict(self.table.weights(experiment))
        key = redis_keys.weights(experiment)
        try:
            version = int(await self.redis.hincrby(key, "version", 1))
            entry = {
                "version": version,
                "weights": merged,
                "previous": previous,
                "actor": actor,
                "reason": reason,
                "ts": time.time(),
            }
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(key, "weights", orjson.dumps(merged))
            pipe.xadd(redis_keys.weights_history(experiment), {"entry": orjson.dumps(entry)})
            await pipe.execute()
        except RedisError as exc:
            raise UnavailableError(
                f"weights not stored: redis unavailable ({type(exc).__name__})"
            ) from None
        self.table.set_weights(experiment, merged, version)
        self.metrics.set_weights(experiment, merged)
        log.info(
            "weights changed",
            extra={
                "fields": {
                    "experiment": experiment,
                    "version": version,
                    "actor": actor,
                    "reason": reason,
                }
            },
        )
        return entry

    async def history(self, experiment: str, limit: int = 100) -> list[dict[str, Any]]:
        """Weight changes, newest first."""
        self.table.experiment(experiment)
        rows: Any = await self.redis.xrevrange(redis_keys.weights_history(experiment), count=limit)
        return [orjson.loads(fields[b"entry"]) for _, fields in rows]

    async def rollback(self, experiment: str, *, actor: str, reason: str) -> dict[str, Any]:
        """Restore the weights in force before the latest change."""
        entries = await self.history(experiment, limit=1)
        if not entries:
            raise NotFoundError(f"experiment {experiment!r} has no weight change to roll back")
        return await self.set_weights(
            experiment, entries[0]["previous"], actor=actor, reason=reason
        )

    async def _poll(self, interval_s: float) -> None:
        while True:
            try:
                await self.refresh()
            except (RedisError, OSError) as exc:
                log.warning("weights poll failed", extra={"fields": {"error": type(exc).__name__}})
            await asyncio.sleep(interval_s)

    def start(self, interval_s: float) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll(interval_s))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
