"""Live weights in Redis: versioned, audited, shared by every replica.

Layout (keys from `gateway.infra.redis_keys`): a hash `weights:<experiment>` with `version` and
`weights` (JSON), and a stream `weights-history:<experiment>` with one entry per change. Each
replica polls the version numbers every `weights_poll_s` (one pipelined round trip for all
experiments) and installs a new version within that interval, so a change reaches every replica
in about a second, without restarts. The routes file gives the weights until the first change is
stored (they are version 0).

Weights are relative: a variant's share of traffic is its weight divided by the sum of the
weights. Each weight is a finite number in [0, 1e6] and at least one is above 0 (checked by
`RouteTable.check_weights` before anything is stored). `set_shares` states shares instead: the
named variants get exactly those shares and the rest is split among the other variants in
proportion to their weights in force.

History entries (`history`, newest first; `WeightChange` as written, `HistoryEntry` as read
back) hold `kind` (a `ChangeKind`), `actor`, `reason`,
`from_version` (the version in force before), `to_version` (= `version`), `weights`, `previous`,
`baseline_version` (the known-good version the change started from: for a ramp step the version
in force when the promotion started, for a manual change the version before it, for a rollback
the version it restored) and `ts`. `rollback` restores the baseline of the latest change that is
not itself a rollback (never a half-ramped state); when those weights are already in force it
changes nothing. `restore_version` makes any stored version's weights current again, as a new
version.

A stored state that cannot be loaded (bad JSON, a weight that is not a finite number in range,
an unknown variant: written by hand or by an old release) never stops a replica: it keeps the
last good version (at a start, the newest loadable version of the history, else the routes
file), logs the problem once, sets the `route_store_bad_state` gauge to 1 (an alert watches
it) and keeps polling, so the next good change, a rollback included, is applied. Nothing this
module stores is a state it could not load: each write is encoded, decoded and compared first.

Variants added at run time (`put_variant`, `store_runtime_variant`): a hash
`variants:<experiment>` (name -> `RuntimeVariant` JSON) and a `variants_version` counter in the
weights hash, read by the same poll; a replica that sees a new counter reads the hash, builds
each variant's runtime (`build_variant`, i.e. `VariantPool.prepare`) and installs the experiment
with the extra variants, before any weights of the same poll (which may name them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict, cast

import orjson
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError, WatchError

from gateway.errors import ConflictError, InvalidRequestError, NotFoundError, UnavailableError
from gateway.experiments.config import Experiment, Variant
from gateway.experiments.table import (
    MAX_WEIGHT,
    RouteTable,
    RuntimeVariant,
    check_number,
    shares_of,
)
from gateway.infra import redis_keys
from gateway.infra.metrics import GatewayMetrics

log = logging.getLogger("triage_gateway")

VARIANTS_VERSION = "variants_version"  # field of the weights hash
VariantBuilder = Callable[[Experiment, Variant], Callable[[], None]]
"""Builds a variant's runtime (slow: may load a model; run in a worker thread) and returns the
function that installs it into the pool (fast: called on the event loop, beside the route
table's switch, so requests never see one without the other)."""
HISTORY_SCAN = 10_000
"""How many history entries (newest first) a rollback or a version look-up reads at most."""
_WRITE_ATTEMPTS = 8


class ChangeKind(StrEnum):
    """Why the weights changed (kept in each history entry)."""

    RAMP_STEP = "ramp_step"
    BREACH_ROLLBACK = "breach_rollback"
    MANUAL_ROLLBACK = "manual_rollback"
    MANUAL_CHANGE = "manual_change"


ROLLBACK_KINDS = frozenset({ChangeKind.BREACH_ROLLBACK, ChangeKind.MANUAL_ROLLBACK})
SAME_WEIGHT = 1e-9


class ChangeExtras(TypedDict, total=False):
    """What some changes add to their history entry."""

    requested_shares: dict[str, float]
    """`set_shares`: the shares asked for (the entry's weights give them)."""
    restored_version: int
    """`restore_version` (rollbacks): the version whose weights were made current."""


class _Versions(ChangeExtras):
    """What every history entry holds (one read back: filled by `_normalise` when an earlier
    release did not record it)."""

    version: int
    from_version: int
    to_version: int
    kind: str
    """A `ChangeKind` value."""
    baseline_version: int


class WeightChange(_Versions):
    """A weight change as this module writes it: the history entry stored (as JSON) in the
    history stream, returned by every change and sent as is by the admin API."""

    weights: dict[str, float]
    previous: dict[str, float]
    actor: str
    reason: str
    ts: float


class HistoryEntry(_Versions):
    """A history entry as read back: a `WeightChange`, or less when an earlier release wrote
    it. What was not recorded then stays absent (the admin API shows the stored keys), and a
    weight may be null (an out-of-range weight an old release stored; `entry_weights` checks
    the weights)."""

    weights: NotRequired[dict[str, float | None]]
    previous: NotRequired[dict[str, float | None]]
    actor: NotRequired[str]
    reason: NotRequired[str]
    ts: NotRequired[float]


class NothingToRollBack(TypedDict):
    """`rollback` when the weights it would restore are already in force."""

    changed: Literal[False]
    experiment: str
    version: int
    baseline_version: int
    weights: dict[str, float]
    shares: dict[str, float]
    detail: str


class RolledBack(WeightChange):
    """`rollback` that restored weights: the new history entry."""

    changed: Literal[True]


Rollback = NothingToRollBack | RolledBack


class VariantPut(TypedDict):
    """A runtime variant stored and installed (`put_variant`), as the admin API answers."""

    experiment: str
    variant: dict[str, object]
    """The variant's routes-file JSON (unset fields left out)."""
    shadow_sample_rate: float | None
    registry_name: str | None
    variants_version: int
    weight: float
    registry_status: NotRequired[str]
    """Set (by `deploy.deploy_variant`) when the registry label could not be updated."""


@dataclass(frozen=True)
class _Audit:
    """Who changes the weights, why, and what the change is (kept in its history entry)."""

    actor: str
    reason: str
    kind: ChangeKind
    baseline_version: int | None
    """The known-good version the change belongs to; None: the version in force before it."""
    extras: ChangeExtras | None = None


class StoredStateError(ValueError):
    """Stored weights that cannot be loaded."""


def parse_stored_weights(raw: bytes | str | None) -> dict[str, float]:
    """Weights as stored (a JSON object of variant -> finite number in [0, 1e6]); a
    `StoredStateError` naming the problem for anything else."""
    if raw is None:
        raise StoredStateError("no weights stored")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StoredStateError(f"weights are not JSON ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise StoredStateError(f"weights must be a non-empty object, got {type(data).__name__}")
    weights: dict[str, float] = {}
    for name, w in data.items():
        if not name:
            raise StoredStateError("weights: a variant name is empty")
        try:
            check_number(f"weights.{name}", w, MAX_WEIGHT)
        except InvalidRequestError as exc:
            raise StoredStateError(exc.detail) from None
        weights[name] = float(w)
    return weights


def encode_weights(weights: Mapping[str, float]) -> bytes:
    """The JSON stored for `weights`, checked to load back to the same weights."""
    data = orjson.dumps(dict(weights))
    if parse_stored_weights(data) != dict(weights):  # never store what cannot be loaded
        raise InvalidRequestError("weights: they do not survive storage unchanged")
    return data


def same_weights(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return all(
        math.isclose(a.get(n, 0.0), b.get(n, 0.0), rel_tol=SAME_WEIGHT, abs_tol=SAME_WEIGHT)
        for n in set(a) | set(b)
    )


def entry_weights(entry: HistoryEntry) -> dict[str, float]:
    """The weights of a history entry; a `StoredStateError` when they would not load."""
    return parse_stored_weights(orjson.dumps(entry.get("weights")))


def _version_of(entry: HistoryEntry) -> int:
    return int(entry["to_version"])


def _normalise(entry: dict[str, Any]) -> HistoryEntry:
    """Fill the fields of entries stored before kinds and baselines were recorded: such a
    change counts as a manual change from the version before it. `entry` is the stored JSON
    object, kept as it is otherwise."""
    version = int(entry.get("to_version", entry.get("version", -1)))
    entry.setdefault("to_version", version)
    entry.setdefault("version", version)
    entry.setdefault("from_version", version - 1)
    entry.setdefault("kind", ChangeKind.MANUAL_CHANGE.value)
    entry.setdefault("baseline_version", entry["from_version"])
    return cast(HistoryEntry, entry)


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


def _nothing() -> None:
    """The installer of a variant built by no builder."""


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
        """Builds a runtime variant's runtime (`VariantPool.prepare`). None (offline tools that
        only manage weights): runtime variants join the table without being built."""
        self._task: asyncio.Task[None] | None = None
        self._bad: dict[str, int] = {}
        """Experiment -> the stored weights version that cannot be loaded (ignored)."""
        self._bad_variants: dict[str, str] = {}
        """Experiment -> the last error of its stored variants state (logged once)."""
        self._installing = asyncio.Lock()
        """One install of runtime variants at a time: builds run in a thread, so a poll and an
        admin call could otherwise interleave and the older read finish last."""
        for exp in table.experiments():
            metrics.route_store_bad_state.labels(exp.name).set(0)

    # ------------------------------------------------------------------ polling and loading

    async def refresh(self) -> list[str]:
        """Install any newer stored weights; returns the experiments that changed. A stored
        state that cannot be loaded is skipped (see the module docstring); only a Redis
        failure raises."""
        names = [e.name for e in self.table.routes.experiments]
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hmget(redis_keys.weights(name), "version", "weights", VARIANTS_VERSION)
        rows = await pipe.execute()
        changed = []
        for name, (version, weights, variants_version) in zip(names, rows, strict=True):
            if variants_version is not None and await self._refresh_variants_safely(
                name, variants_version
            ):
                changed.append(name)
            try:
                if await self._refresh_weights(name, version, weights):
                    changed.append(name)
            except (RedisError, OSError):
                raise
            except Exception as exc:  # whatever is stored, keep the last good and keep polling
                await self._bad_state(name, version, f"{type(exc).__name__}: {exc}")
        return list(dict.fromkeys(changed))

    async def _refresh_variants_safely(self, name: str, raw_version: bytes) -> bool:
        try:
            changed = await self._refresh_variants(name, int(raw_version))
        except (RedisError, OSError):
            raise
        except Exception as exc:  # keep polling whatever a stored variant holds
            error = f"{type(exc).__name__}: {exc}"
            if self._bad_variants.get(name) != error:
                self._bad_variants[name] = error
                self._skip(name, "*", -1, error)
            return False
        self._bad_variants.pop(name, None)
        return changed

    async def _refresh_weights(
        self, name: str, raw_version: bytes | None, raw_weights: bytes | None
    ) -> bool:
        if raw_version is None and raw_weights is None:
            return self._clear_bad(name)
        try:
            version = int(raw_version) if raw_version is not None else None
        except ValueError:
            version = None
        if version is None:
            raise StoredStateError(f"stored version {raw_version!r} is not a number")
        if version == self.table.versions[name] or version == self._bad.get(name):
            return False
        try:
            merged = self.table.check_weights(name, parse_stored_weights(raw_weights))
        except (StoredStateError, InvalidRequestError) as exc:
            detail = exc.detail if isinstance(exc, InvalidRequestError) else str(exc)
            return await self._bad_state(name, raw_version, detail)
        self._install(name, merged, version)
        self._clear_bad(name)
        return True

    def _install(self, name: str, weights: Mapping[str, float], version: int) -> None:
        self.table.set_weights(name, weights, version)
        self.metrics.set_weights(name, weights)

    def _clear_bad(self, name: str) -> bool:
        if self._bad.pop(name, None) is not None:
            self.metrics.route_store_bad_state.labels(name).set(0)
            log.info("stored weights loadable again", extra={"fields": {"experiment": name}})
        return False

    async def _bad_state(self, name: str, raw_version: bytes | None, error: str) -> bool:
        """Keep the last good weights, say so once per stored version, and fall back to the
        newest loadable version of the history when it is newer than the one in force.
        True when that installed other weights."""
        try:
            version = int(raw_version) if raw_version is not None else -1
        except ValueError:
            version = -1
        if self._bad.get(name) == version:
            return False
        self._bad[name] = version
        self.metrics.route_store_bad_state.labels(name).set(1)
        log.error(
            "stored weights cannot be loaded; keeping the last good version",
            extra={
                "fields": {
                    "experiment": name,
                    "stored_version": version,
                    "version_in_force": self.table.versions[name],
                    "error": error,
                }
            },
        )
        try:
            good = await self._newest_loadable(name, version)
        except UnavailableError:  # the history cannot be read now: keep what is in force
            return False
        if good is None or good[0] == self.table.versions[name]:
            return False
        self._install(name, good[1], good[0])
        log.warning(
            "installed the newest loadable weights from the history",
            extra={"fields": {"experiment": name, "version": good[0]}},
        )
        return True

    async def _newest_loadable(
        self, name: str, at_most: int
    ) -> tuple[int, dict[str, float]] | None:
        """(version, weights) of the newest history entry up to `at_most` (any when -1) whose
        weights load, or None."""
        for entry in await self._entries(name):
            version = _version_of(entry)
            if at_most >= 0 and version > at_most:
                continue
            if version <= self.table.versions[name]:
                return None  # nothing newer than what is in force
            try:
                return version, self.table.check_weights(name, entry_weights(entry))
            except (StoredStateError, InvalidRequestError):
                continue
        return None

    async def _refresh_variants(self, experiment: str, version: int) -> bool:
        """Install the stored runtime variants of a new version; False when unchanged. An entry
        that cannot be installed (bad JSON, a name clash, a runtime that cannot be built) is
        left out and logged, once per version; the others are installed."""
        async with self._installing:  # the stored state is read inside: always the newest
            if version == self.table.variant_versions[experiment]:
                return False
            raw: Any = await self.redis.hgetall(redis_keys.runtime_variants(experiment))
            runtime: dict[str, RuntimeVariant] = {}
            for key, value in raw.items():
                try:
                    runtime[key.decode()] = RuntimeVariant.model_validate_json(value)
                except ValidationError as exc:
                    self._skip(experiment, key.decode(), version, str(exc))
            await self._install_variants(experiment, runtime, version)
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

    async def _install_variants(
        self, experiment: str, runtime: Mapping[str, RuntimeVariant], version: int
    ) -> None:
        accepted: dict[str, RuntimeVariant] = {}
        installers: list[Callable[[], None]] = []
        for name, r in sorted(runtime.items(), key=lambda kv: (kv[1].ts, kv[0])):
            trial = {**accepted, name: r}
            try:
                exp, _ = self.table.with_runtime(experiment, trial)
                installers.append(await self._build(exp, r.variant))
            except InvalidRequestError as exc:
                self._skip(experiment, name, version, exc.detail)
                continue
            accepted = trial
        exp, weights = self.table.with_runtime(experiment, accepted)
        for install in installers:  # no await from here on: the pool and the table switch
            install()  # together
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

    async def _build(self, exp: Experiment, variant: Variant) -> Callable[[], None]:
        """Build a variant's runtime in a worker thread (a local model can take a second to
        load, an encoder's weights, which must not hold the event loop); returns its
        installer."""
        if self.build_variant is None:
            return _nothing
        try:
            return await asyncio.to_thread(self.build_variant, exp, variant)
        except Exception as exc:  # a provider that cannot be resolved, a model that won't load
            raise InvalidRequestError(
                f"variant {variant.name!r} cannot be built: {type(exc).__name__}: {exc}"
            ) from None

    async def put_variant(self, experiment: str, runtime: RuntimeVariant) -> VariantPut:
        """Validate, build, store and install a runtime variant (add or replace); every other
        replica installs it at its next poll."""
        current = {**self.table.runtime_variants(experiment), runtime.variant.name: runtime}
        exp, _ = self.table.with_runtime(experiment, current)
        # held until the install below, which then reuses what it loaded (a local model)
        _checked = await self._build(exp, runtime.variant)
        RuntimeVariant.model_validate_json(runtime.model_dump_json())  # it loads back
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

    # --------------------------------------------------------------------- weight changes

    async def set_weights(
        self,
        experiment: str,
        weights: Mapping[str, float],
        *,
        actor: str,
        reason: str,
        kind: ChangeKind = ChangeKind.MANUAL_CHANGE,
        baseline_version: int | None = None,
    ) -> WeightChange:
        """Validate, store and install new weights (full, or partial: the others keep theirs)
        as a new version; returns its history entry. `baseline_version` is the known-good
        version the change belongs to (a ramp step: the version in force when the promotion
        started); by default the version in force before it."""
        return await self._write(
            experiment, lambda: weights, _Audit(actor, reason, kind, baseline_version)
        )

    async def set_shares(
        self, experiment: str, shares: Mapping[str, float], *, actor: str, reason: str
    ) -> WeightChange:
        """Give the named variants exactly `shares` of the traffic, the rest split among the
        other variants in proportion to their weights in force (a manual change)."""
        extras = ChangeExtras(requested_shares=dict(shares))
        return await self._write(
            experiment,
            lambda: self.table.weights_from_shares(experiment, shares),
            _Audit(actor, reason, ChangeKind.MANUAL_CHANGE, None, extras),
        )

    async def _write(
        self,
        experiment: str,
        make_weights: Callable[[], Mapping[str, float]],
        audit: _Audit,
    ) -> WeightChange:
        """Store the weights `make_weights` returns on top of the stored state, as one atomic
        change of the version, the weights and the history (retried when another writer got
        there first)."""
        self.table.experiment(experiment)
        self.table.check_weights(experiment, make_weights())  # refuse before any Redis call
        kind = ChangeKind(audit.kind)
        key = redis_keys.weights(experiment)
        try:
            for _ in range(_WRITE_ATTEMPTS):
                async with self.redis.pipeline(transaction=True) as pipe:
                    await pipe.watch(key)
                    raw = await pipe.hget(key, "version")
                    stored = _int_or_none(raw)
                    if stored is not None and stored not in (
                        self.table.versions[experiment],
                        self._bad.get(experiment),
                    ):
                        await self.refresh()  # merge with the weights in force, not stale ones
                        continue
                    merged = self.table.check_weights(experiment, make_weights())
                    previous = dict(self.table.weights(experiment))
                    from_version = self.table.versions[experiment]
                    version = max(stored or 0, from_version) + 1
                    entry: WeightChange = {
                        "version": version,
                        "from_version": from_version,
                        "to_version": version,
                        "kind": kind.value,
                        "baseline_version": from_version
                        if audit.baseline_version is None
                        else int(audit.baseline_version),
                        "weights": merged,
                        "previous": previous,
                        "actor": audit.actor,
                        "reason": audit.reason,
                        "ts": time.time(),
                        **(audit.extras or ChangeExtras()),
                    }
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, mapping={"version": version, "weights": encode_weights(merged)})
                    pipe.xadd(
                        redis_keys.weights_history(experiment), {"entry": orjson.dumps(entry)}
                    )
                    try:
                        await pipe.execute()
                    except WatchError:
                        continue
                    break
            else:
                raise ConflictError("weights changed concurrently, again and again; try again")
        except RedisError as exc:
            raise UnavailableError(
                f"weights not stored: redis unavailable ({type(exc).__name__})"
            ) from None
        self._install(experiment, merged, version)
        self._clear_bad(experiment)
        log.info(
            "weights changed",
            extra={
                "fields": {
                    "experiment": experiment,
                    "version": version,
                    "kind": kind.value,
                    "actor": audit.actor,
                    "reason": audit.reason,
                }
            },
        )
        return entry

    async def weights_at(self, experiment: str, version: int) -> dict[str, float]:
        """The weights of a stored version (from the history; version 0 is the routes file)."""
        self.table.experiment(experiment)
        if version == 0:
            return {v.name: v.weight for v in self.table.routes.experiment(experiment).variants}
        for entry in await self._entries(experiment):
            if _version_of(entry) == version:
                try:
                    return entry_weights(entry)
                except StoredStateError as exc:
                    raise InvalidRequestError(
                        f"version {version} of {experiment!r} cannot be restored: {exc}"
                    ) from None
        if version == self.table.versions[experiment]:
            return dict(self.table.weights(experiment))
        raise NotFoundError(
            f"{experiment!r} has no weights version {version} "
            f"(the version in force is {self.table.versions[experiment]})"
        )

    async def restore_version(
        self, experiment: str, version: int, *, actor: str, reason: str, kind: ChangeKind
    ) -> WeightChange:
        """Make the weights of `version` current again, as a new (audited) version; a variant
        that version does not name gets weight 0. Returns the new history entry."""
        target = self.table.full_weights(experiment, await self.weights_at(experiment, version))
        extras = ChangeExtras(restored_version=version)
        return await self._write(
            experiment, lambda: target, _Audit(actor, reason, kind, version, extras)
        )

    async def rollback(
        self, experiment: str, *, actor: str, reason: str, to_version: int | None = None
    ) -> Rollback:
        """Restore the last known-good baseline (the baseline of the latest change that is not
        itself a rollback: the pre-ramp weights after a ramp or a breach, the version before a
        manual change), or `to_version`. When those weights are already in force nothing
        changes: `{"changed": False, "version": <in force>, ...}`; else the new history entry
        with `"changed": True`."""
        self.table.experiment(experiment)
        await self.refresh()
        if to_version is None:
            target = 0
            for entry in await self._entries(experiment):
                if entry["kind"] not in ROLLBACK_KINDS:
                    target = int(entry["baseline_version"])
                    break
        else:
            target = int(to_version)
            if target < 0:
                raise InvalidRequestError(f"to_version: must be >= 0, got {target}")
        wanted = self.table.full_weights(experiment, await self.weights_at(experiment, target))
        in_force = self.table.versions[experiment]
        current = dict(self.table.weights(experiment))
        if same_weights(current, wanted):
            return {
                "changed": False,
                "experiment": experiment,
                "version": in_force,
                "baseline_version": target,
                "weights": current,
                "shares": shares_of(current),
                "detail": f"nothing to roll back: version {in_force} is in force"
                + (f" (the weights of version {target})" if target != in_force else ""),
            }
        change = await self.restore_version(
            experiment, target, actor=actor, reason=reason, kind=ChangeKind.MANUAL_ROLLBACK
        )
        return {"changed": True, **change}

    async def history(self, experiment: str, limit: int = 100) -> list[HistoryEntry]:
        """Weight changes, newest first (entries that cannot be read are left out)."""
        self.table.experiment(experiment)
        return await self._entries(experiment, limit)

    async def _entries(self, experiment: str, limit: int = HISTORY_SCAN) -> list[HistoryEntry]:
        try:
            rows: Any = await self.redis.xrevrange(
                redis_keys.weights_history(experiment), count=limit
            )
        except RedisError as exc:
            raise UnavailableError(
                f"weights history unavailable: redis ({type(exc).__name__})"
            ) from None
        entries = []
        for entry_id, fields in rows:
            try:
                entry = orjson.loads(fields[b"entry"])
                if not isinstance(entry, dict):
                    raise TypeError(f"entry is a {type(entry).__name__}")
                entries.append(_normalise(entry))
            except (KeyError, TypeError, ValueError) as exc:
                log.error(
                    "ignoring unreadable history entry",
                    extra={
                        "fields": {
                            "experiment": experiment,
                            "id": entry_id.decode(),
                            "error": f"{type(exc).__name__}: {exc}",
                        }
                    },
                )
        return entries

    # ----------------------------------------------------------------------------- polling

    async def _poll(self, interval_s: float) -> None:
        while True:
            try:
                await self.refresh()
            except (RedisError, OSError) as exc:
                log.warning("weights poll failed", extra={"fields": {"error": type(exc).__name__}})
            except Exception:  # the poll outlives any stored state
                log.exception("weights poll failed")
            await asyncio.sleep(interval_s)

    def start(self, interval_s: float) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll(interval_s))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _int_or_none(raw: bytes | str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None
