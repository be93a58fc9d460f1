"""Live weights in Redis: versioned, audited, shared by every replica.

Layout (keys from `gateway.redis_keys`): a hash `weights:<experiment>` with `version` and
`weights` (JSON), and a stream `weights-history:<experiment>` with one entry per change (version,
weights, previous, actor, reason, ts). Each replica polls the version numbers every
`weights_poll_s` (one pipelined round trip for all experiments) and installs a new version
within that interval, so a change reaches every replica in about a second, without restarts.
The routes file gives the weights until the first change is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway import redis_keys
from gateway.errors import NotFoundError, UnavailableError
from gateway.metrics import GatewayMetrics
from gateway.route_table import RouteTable

log = logging.getLogger("triage_gateway")


class RouteStore:
    def __init__(self, redis: aioredis.Redis, table: RouteTable, metrics: GatewayMetrics) -> None:
        self.redis = redis
        self.table = table
        self.metrics = metrics
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> list[str]:
        """Install any newer stored weights; returns the experiments that changed."""
        names = [e.name for e in self.table.routes.experiments]
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hmget(redis_keys.weights(name), "version", "weights")
        rows = await pipe.execute()
        changed = []
        for name, (version, weights) in zip(names, rows, strict=True):
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
        return changed

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
