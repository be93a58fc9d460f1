"""Step-wise promotion of a candidate variant, with automatic rollback.

For each step the controller sets the candidate's share to `step`% (the rest split among the
other variants in proportion to their weights when the promotion started) through the route
store on Redis, so every replica applies it within about a second. It then holds the step,
judging the candidate's live figures since the step began every `interval`:

* error rate (failures and fallbacks away from the candidate / requests it took) and
  validation-failure rate (invalid answers / model calls that returned): a breach when the
  whole 95% Wilson interval lies above the limit, so a few unlucky requests do not roll back,
  while a broken candidate is caught at the first evaluation;
* p95 latency (end to end, from the latency histogram), once `min_requests` are in;
* online accuracy minus the control's, from reviewer corrections made during the step, once both
  have `min_corrected`: a breach when the whole Newcombe interval lies below the limit.

At the end of a hold the point estimates must be within the limits too. On a breach the
controller restores the weights in force before the step (the last good ones), with the breach
as the reason, and stops. If anyone else changes the weights meanwhile, it stops and leaves
them alone.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from eval.live import FigureSource, LiveFigures, MetricsScrape, PrometheusQuery
from gateway.errors import GatewayError
from gateway.experiments.config import RoutesConfig, RoutesFileError, load_routes
from gateway.experiments.store import RouteStore
from gateway.experiments.table import RouteTable
from gateway.infra import redis_keys
from gateway.infra.metrics import GatewayMetrics
from gateway.infra.redis_client import async_connect
from gateway.infra.settings import Settings
from gateway.pairs import online_report

PROMOTED, ROLLED_BACK, ABORTED = 0, 1, 3


class PromotionError(ValueError):
    """The promotion cannot start as asked."""


@dataclass(frozen=True)
class Limits:
    max_error_rate: float = 0.02
    max_validation_failure_rate: float = 0.05
    max_p95_ms: float | None = None
    min_accuracy_delta: float = -0.02
    min_requests: int = 5
    min_corrected: int = 30


@dataclass
class PromotionResult:
    code: int
    message: str
    steps_done: list[int] = field(default_factory=list)
    breach: str | None = None


def step_weights(base: Mapping[str, float], candidate: str, percent: float) -> dict[str, float]:
    """Candidate at `percent`%, the others sharing the rest in proportion to `base`."""
    share = percent / 100
    others = {name: w for name, w in base.items() if name != candidate}
    total = sum(others.values())
    if total <= 0 and share < 1:
        raise PromotionError("no other variant carries traffic to take the remaining share")
    weights = {candidate: round(share, 6)}
    for name, w in others.items():
        weights[name] = round((1 - share) * w / total, 6) if total > 0 else 0.0
    return weights


def rate_breach(name: str, bad: int, n: int, limit: float, min_n: int, final: bool) -> str | None:
    """A breach text when `bad`/`n` is over `limit` (confidently, or at all when `final`)."""
    if n < max(1, min_n):
        return None
    lo, hi = online_report.wilson(bad, n)
    over = bad / n > limit if final else lo > limit
    if not over:
        return None
    return f"{name} {bad / n:.3f} > {limit:g} ({bad}/{n}, 95% CI {lo:.3f}-{hi:.3f})"


def judge(
    figs: LiveFigures,
    acc: Mapping[str, tuple[int, int]],
    cand: str,
    ctrl: str,
    lim: Limits,
    *,
    final: bool = False,
) -> str | None:
    """The first breached limit, as text naming it, or None."""
    breach = rate_breach(
        "error rate", figs.errors, figs.requests, lim.max_error_rate, lim.min_requests, final
    ) or rate_breach(
        "validation failure rate",
        figs.validation_failures,
        figs.calls,
        lim.max_validation_failure_rate,
        lim.min_requests,
        final,
    )
    if breach:
        return breach
    p95, limit = figs.p95_ms, lim.max_p95_ms
    if limit is not None and p95 is not None and figs.latency_n >= lim.min_requests and p95 > limit:
        return f"p95 latency {p95:.0f} ms > {limit:g} ms ({figs.latency_n} requests)"
    return accuracy_breach(acc, cand, ctrl, lim, final)


def accuracy_breach(
    acc: Mapping[str, tuple[int, int]], cand: str, ctrl: str, lim: Limits, final: bool
) -> str | None:
    (k1, n1), (k2, n2) = acc.get(cand, (0, 0)), acc.get(ctrl, (0, 0))
    if min(n1, n2) < max(1, lim.min_corrected):
        return None
    diff = k1 / n1 - k2 / n2
    lo, hi = online_report.newcombe(k1, n1, k2, n2)
    if (diff if final else hi) >= lim.min_accuracy_delta:
        return None
    return (
        f"online accuracy vs control {diff:+.3f} < {lim.min_accuracy_delta:+g} "
        f"({k1}/{n1} vs {k2}/{n2}, 95% CI {lo:+.3f}..{hi:+.3f})"
    )


@dataclass
class Controller:
    routes: RoutesConfig
    redis: aioredis.Redis
    source: FigureSource
    experiment: str
    candidate: str
    steps: Sequence[float]
    hold_s: float
    interval_s: float
    limits: Limits = field(default_factory=Limits)
    control: str | None = None
    stream: str = redis_keys.pairs_stream()
    say: Callable[[str], None] = print
    actor: str = field(default_factory=lambda: f"promote:{uuid.uuid4().hex[:8]}")

    def __post_init__(self) -> None:
        self.store = RouteStore(self.redis, RouteTable(self.routes), GatewayMetrics())
        self.store.table.experiment(self.experiment)  # unknown: NotFoundError
        self.names: list[str] = []

    async def _check_variants(self) -> None:
        """The experiment's variants now, runtime variants (model registry) included."""
        await self.store.refresh()
        exp = self.store.table.experiment(self.experiment)
        self.names = [v.name for v in exp.variants]
        if self.candidate not in self.names:
            raise PromotionError(f"{self.candidate!r} is not a variant of {self.experiment!r}")
        if self.control is None:
            others = [n for n in self.names if n != self.candidate]
            self.control = "control" if "control" in others else others[0] if others else None

    async def run(self) -> PromotionResult:
        await self._check_variants()
        base = dict(self.store.table.weights(self.experiment))
        done: list[int] = []
        for i, step in enumerate(self.steps, 1):
            last_good = dict(self.store.table.weights(self.experiment))
            weights = step_weights(base, self.candidate, step)
            reason = f"promote step {i}/{len(self.steps)}: {self.candidate} to {step:g}%"
            entry = await self.store.set_weights(
                self.experiment, weights, actor=self.actor, reason=reason
            )
            self.say(
                f"step {i}: {self.candidate} at {step:g}% (weights version {entry['version']})"
            )
            try:
                outcome = await self._hold(i, step, int(entry["version"]))
            except asyncio.CancelledError:
                await self._restore(last_good, f"promotion interrupted at step {i} ({step:g}%)")
                raise
            if outcome is not None:
                return await self._finish(outcome, i, step, last_good, done)
            done.append(i)
        return PromotionResult(PROMOTED, f"{self.candidate} promoted to {self.steps[-1]:g}%", done)

    async def _finish(
        self,
        outcome: tuple[int, str],
        i: int,
        step: float,
        last_good: dict[str, float],
        done: list[int],
    ) -> PromotionResult:
        code, text = outcome
        if code == ABORTED:
            return PromotionResult(ABORTED, text, done)
        reason = f"rollback at promote step {i} ({self.candidate} {step:g}%): {text}"
        await self._restore(last_good, reason)
        return PromotionResult(ROLLED_BACK, reason, done, breach=text)

    async def _restore(self, weights: dict[str, float], reason: str) -> None:
        entry = await self.store.set_weights(
            self.experiment, weights, actor=self.actor, reason=reason
        )
        self.say(f"rolled back to version {entry['version']}: {reason}")

    async def _hold(self, i: int, step: float, version: int) -> tuple[int, str] | None:
        """Judge the step until the hold ends; (code, text) when it must stop."""
        await self.source.start()
        started = time.time()
        deadline = time.monotonic() + self.hold_s
        while True:
            remaining = deadline - time.monotonic()
            final = remaining <= self.interval_s
            await asyncio.sleep(max(0.0, min(self.interval_s, remaining)))
            await self.store.refresh()
            if self.store.table.versions[self.experiment] != version:
                return ABORTED, "weights changed by someone else during the promotion; stopped"
            figs = await self.source.figures()
            acc = await online_report.corrections_since(
                self.redis, self.stream, self.experiment, self.names, started
            )
            self.say(_progress_line(i, step, figs, acc.get(self.candidate)))
            breach = judge(figs, acc, self.candidate, str(self.control), self.limits, final=final)
            if breach is not None:
                return ROLLED_BACK, breach
            if final:
                if figs.requests < self.limits.min_requests:
                    self.say(f"  warning: only {figs.requests} requests reached the candidate")
                return None


def _progress_line(i: int, step: float, f: LiveFigures, corrected: tuple[int, int] | None) -> str:
    p95 = "-" if f.p95_ms is None else f"{f.p95_ms:.0f} ms"
    acc = f"{corrected[0]}/{corrected[1]}" if corrected else "0/0"
    return (
        f"  step {i} ({step:g}%): requests {f.requests}, errors {f.errors}, "
        f"invalid {f.validation_failures}/{f.calls} calls, p95 {p95}, corrected right {acc}"
    )


async def rollback_latest(
    routes: RoutesConfig, redis: aioredis.Redis, experiment: str, reason: str
) -> dict[str, Any]:
    """Restore the weights in force before the latest change (a new, audited change)."""
    store = RouteStore(redis, RouteTable(routes), GatewayMetrics())
    await store.refresh()
    entry: dict[str, Any] = await store.rollback(
        experiment, actor=f"rollback:{uuid.uuid4().hex[:8]}", reason=reason
    )
    return entry


def _routes(settings: Settings) -> RoutesConfig:
    try:
        return load_routes(settings.routes)
    except RoutesFileError as exc:
        raise PromotionError(str(exc)) from None


async def _promote(
    ctrl_args: dict[str, Any], settings: Settings, gateway: str | None, prometheus: str | None
) -> PromotionResult:
    async with async_connect(settings) as client, aiohttp.ClientSession() as session:
        exp, cand = ctrl_args["experiment"], ctrl_args["candidate"]
        source: FigureSource
        if prometheus:
            source = PrometheusQuery(session, prometheus, exp, cand)
        else:
            url = gateway or f"http://{settings.host}:{settings.port}"
            source = MetricsScrape(session, url, exp, cand)
        stream = redis_keys.pairs_stream(settings.pairs_stream)
        controller = Controller(redis=client, source=source, stream=stream, **ctrl_args)
        return await controller.run()


def promote(
    settings: Settings,
    *,
    experiment: str,
    candidate: str,
    steps: Sequence[float],
    hold_s: float,
    interval_s: float,
    limits: Limits,
    control: str | None = None,
    gateway: str | None = None,
    prometheus: str | None = None,
    say: Callable[[str], None] = print,
) -> PromotionResult:
    """Run a promotion to its end (`code`: PROMOTED, ROLLED_BACK or ABORTED), reading the live
    figures from Prometheus, else from the gateway's /metrics (`gateway`, else the configured
    host and port); a PromotionError when it cannot start or Redis fails."""
    args: dict[str, Any] = {
        "routes": _routes(settings),
        "experiment": experiment,
        "candidate": candidate,
        "steps": list(steps),
        "hold_s": hold_s,
        "interval_s": interval_s,
        "limits": limits,
        "control": control,
        "say": say,
    }
    try:
        return asyncio.run(_promote(args, settings, gateway, prometheus))
    except GatewayError as exc:
        raise PromotionError(exc.detail) from None
    except (RedisError, aiohttp.ClientError, OSError) as exc:
        raise PromotionError(f"promotion stopped: {type(exc).__name__}: {exc}") from None


def rollback(settings: Settings, experiment: str, reason: str) -> dict[str, Any]:
    """Restore the weights in force before the experiment's latest change; the new history
    entry (`version`, `weights`, ...)."""
    config = _routes(settings)

    async def run() -> dict[str, Any]:
        async with async_connect(settings) as client:
            return await rollback_latest(config, client, experiment, reason)

    try:
        return asyncio.run(run())
    except GatewayError as exc:
        raise PromotionError(exc.detail) from None
    except (RedisError, OSError) as exc:
        raise PromotionError(f"rollback failed: {type(exc).__name__}: {exc}") from None
