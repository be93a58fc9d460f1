"""Step-wise promotion of a candidate variant, on evidence, with automatic rollback.

At the start the controller records the baseline (the weight version in force) and prints the
evidence plan. For each step it sets the candidate's share to `step`% (the rest split among
the other variants in proportion to the baseline weights) through the route store on Redis
(change kind `ramp_step`, naming the baseline), so every replica applies it within about a
second, then looks at the live figures every `interval`:

* comparisons with the control over the whole ramp, each an anytime-valid confidence sequence
  (`gateway.experiments.sequential`), so looking at every interval and every step keeps the
  chance of a false decision at alpha: error rate, invalid answers per model call, and the
  share of requests slower than the control's p95 line as harm tests (a breach once the
  candidate is shown worse than its margin), online accuracy from reviewer corrections as a
  non-inferiority test (margin `-min_accuracy_delta`);
* absolute guardrails on the candidate alone over the step: error rate and invalid answers
  (a breach once the rate's confidence sequence lies wholly above the limit) and p95 latency
  (once the step has its minimum requests).

A step advances only when its hold has passed AND its evidence is in: the candidate took at
least `min_requests` requests during the step (by default the power calculation of the
margins), and, when the accuracy gate is on, each arm has `min_corrected` corrected pairs
since the ramp started (`min_corrected = 0` turns the gate off, for a deployment without
reviewers). The step that would reach 100% (or the last step) also needs non-inferiority
shown on every gate. A breach restores the baseline version exactly (`breach_rollback`) and
exits 1; a step still short of evidence after `max_step_wait` (default 4 x hold) stops the
ramp at its current share and exits 3; so does a weight change made by someone else.
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

from eval import live
from eval.live import FigureSource, LiveFigures, MetricsScrape, PrometheusQuery, Series
from gateway.errors import GatewayError
from gateway.experiments import sequential as seq
from gateway.experiments.config import RoutesConfig, RoutesFileError, load_routes
from gateway.experiments.store import ChangeKind, Rollback, RouteStore
from gateway.experiments.table import RouteTable
from gateway.infra import redis_keys
from gateway.infra.metrics import GatewayMetrics
from gateway.infra.redis_client import async_connect, run_with_redis
from gateway.infra.settings import Settings
from gateway.pairs import online_report

PROMOTED, ROLLED_BACK, REFUSED, ABORTED = 0, 1, 2, 3

ASSUMED_ERROR_RATE = 0.01
ASSUMED_INVALID_RATE = 0.01
ASSUMED_ACCURACY = 0.8
SLOW_SHARE = 0.05
"""The control's share of requests slower than its p95 line (by definition of the line)."""
MIN_HISTORY = 100
"""Control requests before the ramp needed to plan from its own rates instead of assumed ones."""
MIN_LINE_REQUESTS = 20
"""Control requests with a latency needed to fix the p95 line."""


class PromotionError(ValueError):
    """The promotion cannot start as asked."""


class NoMetricsSource(PromotionError):
    """Neither a gateway nor Prometheus to read the live figures from."""

    def __init__(self) -> None:
        super().__init__(
            "no metrics source: pass --gateway URL (one gateway's /metrics) or --prometheus URL "
            "(every replica); without live figures a ramp cannot judge the candidate, so no "
            "weight was changed"
        )


@dataclass(frozen=True)
class Limits:
    # absolute guardrails on the candidate alone
    max_error_rate: float = 0.02
    max_validation_failure_rate: float = 0.05
    max_p95_ms: float | None = None
    # margins of the comparisons with the control
    error_margin: float = 0.02
    validity_margin: float = 0.02
    latency_margin: float = 0.05
    min_accuracy_delta: float = -0.02
    # evidence
    min_requests: int | None = None
    """Candidate requests per step; None: from the power calculation."""
    min_corrected: int | None = None
    """Corrected pairs per arm for the accuracy gate; None: from the power calculation;
    0: no accuracy gate (no reviewers)."""
    max_step_wait_s: float | None = None
    """None: 4 x hold."""
    alpha: float = seq.DEFAULT_ALPHA

    def __post_init__(self) -> None:
        for name in ("error_margin", "validity_margin", "latency_margin"):
            if not 0 < getattr(self, name) < 1:
                raise PromotionError(f"--{name.replace('_', '-')} must be in (0, 1)")
        if not -1 < self.min_accuracy_delta < 0:
            raise PromotionError("--min-accuracy-delta must be in (-1, 0), e.g. -0.02")
        if not 0 < self.alpha < 0.5:
            raise PromotionError("--alpha must be in (0, 0.5)")
        if self.min_requests is not None and self.min_requests < 1:
            raise PromotionError("--min-requests must be at least 1")
        if self.min_corrected is not None and self.min_corrected < 0:
            raise PromotionError("--min-corrected must be 0 (no accuracy gate) or more")


@dataclass(frozen=True)
class Plan:
    """The evidence each step waits for, fixed before the ramp's data arrive."""

    min_requests: int
    min_corrected: int
    base_error: float
    base_invalid: float
    base_accuracy: float
    planned_from: str

    @property
    def accuracy_gate(self) -> bool:
        return self.min_corrected > 0

    def lines(self, lim: Limits) -> list[str]:
        acc = (
            f"  accuracy gate: {self.min_corrected} corrected pairs per arm (non-inferiority, "
            f"margin {-lim.min_accuracy_delta:g}, planned accuracy {self.base_accuracy:.3f})"
            if self.accuracy_gate
            else "  accuracy gate: off (--min-corrected 0)"
        )
        return [
            f"evidence plan (alpha {lim.alpha:g}, power {online_report.POWER:g}; rates "
            f"{self.planned_from}):",
            f"  per step: {self.min_requests} candidate requests (error rate margin "
            f"{lim.error_margin:g} at {self.base_error:.3f}, invalid answers margin "
            f"{lim.validity_margin:g} at {self.base_invalid:.3f}, slow share margin "
            f"{lim.latency_margin:g} at {SLOW_SHARE:g})",
            acc,
        ]


def evidence_plan(lim: Limits, control_before: LiveFigures) -> Plan:
    """Power calculations for the configured margins, at the control's rates before the ramp
    when it has served `MIN_HISTORY` requests, else at assumed rates."""
    if control_before.requests >= MIN_HISTORY:
        base_error = control_before.errors / control_before.requests
        calls = max(control_before.calls, 1)
        base_invalid = control_before.validation_failures / calls
        source = f"from the control's {control_before.requests} requests before the ramp"
    else:
        base_error, base_invalid = ASSUMED_ERROR_RATE, ASSUMED_INVALID_RATE
        source = "assumed (the control has too little history)"
    needed = max(
        seq.required_per_arm(lim.error_margin, base_error, lim.alpha),
        seq.required_per_arm(lim.validity_margin, base_invalid, lim.alpha),
        seq.required_per_arm(lim.latency_margin, SLOW_SHARE, lim.alpha),
    )
    corrected = lim.min_corrected
    if corrected is None:
        corrected = seq.required_per_arm(-lim.min_accuracy_delta, 1 - ASSUMED_ACCURACY, lim.alpha)
    return Plan(
        min_requests=lim.min_requests if lim.min_requests is not None else needed,
        min_corrected=corrected,
        base_error=base_error,
        base_invalid=base_invalid,
        base_accuracy=ASSUMED_ACCURACY,
        planned_from=source,
    )


@dataclass
class PromotionResult:
    code: int
    message: str
    steps_done: list[int] = field(default_factory=list)
    breach: str | None = None
    baseline_version: int | None = None


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


@dataclass(frozen=True)
class Look:
    """What one look at the live figures says."""

    comparisons: dict[str, seq.Comparison]
    breach: str | None
    guardrail: str | None

    def waiting_for(self) -> list[str]:
        """Gates that have not shown non-inferiority yet."""
        return [name for name, c in self.comparisons.items() if c.decision is not seq.Decision.PASS]


def compare_arms(
    cand: LiveFigures,
    ctrl: LiveFigures,
    acc: Mapping[str, tuple[int, int]],
    names: tuple[str, str],
    lim: Limits,
    plan: Plan,
    line_s: float | None,
) -> dict[str, seq.Comparison]:
    """The anytime-valid comparisons of the candidate with the control over the ramp."""
    slow_c = cand.slower_than(line_s) if line_s is not None else (0, 0)
    slow_0 = ctrl.slower_than(line_s) if line_s is not None else (0, 0)
    # (gate, candidate (bad, n), control (bad, n), harm margin, assumed base rate)
    harms = (
        (
            "error rate",
            (cand.errors, cand.requests),
            (ctrl.errors, ctrl.requests),
            lim.error_margin,
            plan.base_error,
        ),
        (
            "invalid answers",
            (cand.validation_failures, cand.calls),
            (ctrl.validation_failures, ctrl.calls),
            lim.validity_margin,
            plan.base_invalid,
        ),
        ("p95 latency", slow_c, slow_0, lim.latency_margin, SLOW_SHARE),
    )
    out = {
        name: seq.compare(
            seq.Kind.HARM,
            c,
            k,
            margin,
            alpha=lim.alpha,
            planned_n=plan.min_requests,
            base_rate=base,
        )
        for name, c, k, margin, base in harms
    }
    if plan.accuracy_gate:
        cand_name, ctrl_name = names
        out["accuracy"] = seq.compare(
            seq.Kind.NON_INFERIORITY,
            acc.get(cand_name, (0, 0)),
            acc.get(ctrl_name, (0, 0)),
            -lim.min_accuracy_delta,
            alpha=lim.alpha,
            planned_n=plan.min_corrected,
            base_rate=plan.base_accuracy,
        )
    return out


def guardrail_breach(step: LiveFigures, lim: Limits, plan: Plan) -> str | None:
    """An absolute limit the candidate crossed during the step, as text naming it, or None."""
    for name, bad, n, limit in (
        ("error rate", step.errors, step.requests, lim.max_error_rate),
        ("invalid answers", step.validation_failures, step.calls, lim.max_validation_failure_rate),
    ):
        if n <= 0:
            continue
        lo, _ = seq.rate_cs(bad, n, lim.alpha, plan.min_requests)
        if float(lo) > limit:
            return (
                f"{name} {bad / n:.3f} > max {limit:g} ({bad}/{n}, anytime-valid lower bound "
                f"{float(lo):.3f})"
            )
    p95, limit_ms = step.p95_ms, lim.max_p95_ms
    enough = step.latency_n >= plan.min_requests
    if limit_ms is not None and p95 is not None and enough and p95 > limit_ms:
        return f"p95 latency {p95:.0f} ms > max {limit_ms:g} ms ({step.latency_n} requests)"
    return None


def judge(
    ramp: tuple[LiveFigures, LiveFigures],
    step: LiveFigures,
    acc: Mapping[str, tuple[int, int]],
    names: tuple[str, str],
    lim: Limits,
    plan: Plan,
    line_s: float | None,
) -> Look:
    """One look: the comparisons over the ramp, then the step's guardrails."""
    comparisons = compare_arms(ramp[0], ramp[1], acc, names, lim, plan, line_s)
    for gate, c in comparisons.items():
        if c.decision is seq.Decision.BREACH:
            return Look(comparisons, c.text(gate), None)
    guard = guardrail_breach(step, lim, plan)
    return Look(comparisons, guard, guard)


def _cost(f: LiveFigures) -> str:
    c = f.cost_per_request
    return "-" if c is None else f"${c:.6f}"


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
        self.base_version = 0
        self.line_s: float | None = None

    @property
    def max_step_wait_s(self) -> float:
        wait = self.limits.max_step_wait_s
        return 4 * self.hold_s if wait is None else wait

    async def _check_variants(self) -> str:
        """The experiment's variants now (runtime variants included); the control's name."""
        await self.store.refresh()
        exp = self.store.table.experiment(self.experiment)
        self.names = [v.name for v in exp.variants]
        if self.candidate not in self.names:
            raise PromotionError(f"{self.candidate!r} is not a variant of {self.experiment!r}")
        others = [n for n in self.names if n != self.candidate]
        if self.control is None:
            self.control = "control" if "control" in others else others[0] if others else None
        if self.control is None or self.control not in others:
            raise PromotionError(
                f"control {self.control!r} must be another variant of {self.experiment!r} "
                f"({self.names})"
            )
        return self.control

    def _figures(self, series: Series, base: Series, variant: str) -> LiveFigures:
        return live.figures_of(live.delta(series, base), self.experiment, variant)

    async def run(self) -> PromotionResult:
        control = await self._check_variants()
        self.base_version = int(self.store.table.versions[self.experiment])
        base = dict(self.store.table.weights(self.experiment))
        before = await self.source.read()  # fails here, before any change, when unreachable
        plan = evidence_plan(self.limits, live.figures_of(before, self.experiment, control))
        lifetime = live.figures_of(before, self.experiment, control)
        if lifetime.latency_n >= MIN_LINE_REQUESTS:
            self.line_s = lifetime.p95_line()
        self.say(
            f"baseline: {self.experiment} weights version {self.base_version} = {base} "
            f"(restored on a breach); control {control}"
        )
        for line in plan.lines(self.limits):
            self.say(line)
        self.say(
            f"each step holds {self.hold_s:g}s and waits at most {self.max_step_wait_s:g}s "
            f"for its evidence; gates checked every {self.interval_s:g}s"
        )
        ramp_start_wall = time.time()
        done: list[int] = []
        for i, step in enumerate(self.steps, 1):
            weights = step_weights(base, self.candidate, step)
            reason = f"promote step {i}/{len(self.steps)}: {self.candidate} to {step:g}%"
            entry = await self.store.set_weights(
                self.experiment,
                weights,
                actor=self.actor,
                reason=reason,
                kind=ChangeKind.RAMP_STEP,
                baseline_version=self.base_version,
            )
            self.say(
                f"step {i}: {self.candidate} at {step:g}% (weights version {entry['version']})"
            )
            must_show = step >= 100 or i == len(self.steps) or self.steps[i] >= 100
            try:
                outcome = await self._hold(
                    i, step, int(entry["version"]), before, ramp_start_wall, plan, must_show
                )
            except asyncio.CancelledError:
                await self._restore(
                    f"promotion interrupted at step {i} ({step:g}%)", ChangeKind.MANUAL_ROLLBACK
                )
                raise
            if outcome is not None:
                return await self._finish(outcome, i, step, done)
            done.append(i)
        return PromotionResult(
            PROMOTED,
            f"{self.candidate} promoted to {self.steps[-1]:g}%",
            done,
            baseline_version=self.base_version,
        )

    async def _finish(
        self, outcome: tuple[int, str], i: int, step: float, done: list[int]
    ) -> PromotionResult:
        code, text = outcome
        if code == ABORTED:
            return PromotionResult(ABORTED, text, done, baseline_version=self.base_version)
        reason = f"breach at promote step {i} ({self.candidate} {step:g}%): {text}"
        await self._restore(reason, ChangeKind.BREACH_ROLLBACK)
        return PromotionResult(
            ROLLED_BACK, reason, done, breach=text, baseline_version=self.base_version
        )

    async def _restore(self, reason: str, kind: ChangeKind) -> None:
        entry = await self.store.restore_version(
            self.experiment, self.base_version, actor=self.actor, reason=reason, kind=kind
        )
        self.say(
            f"restored baseline version {self.base_version} as version {entry['version']} "
            f"= {entry['weights']}: {reason}"
        )

    async def _hold(
        self,
        i: int,
        step: float,
        version: int,
        ramp_base: Series,
        ramp_start_wall: float,
        plan: Plan,
        must_show: bool,
    ) -> tuple[int, str] | None:
        """Look at the figures every interval until the step may advance; (code, text) when
        the ramp must stop."""
        step_base = await self.source.read()
        started = time.monotonic()
        cand, ctrl = self.candidate, str(self.control)
        while True:
            await asyncio.sleep(self.interval_s)
            await self.store.refresh()
            if self.store.table.versions[self.experiment] != version:
                return ABORTED, "weights changed by someone else during the promotion; stopped"
            try:
                now = await self.source.read()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.say(f"  metrics source unreadable ({type(exc).__name__}); waiting")
                if time.monotonic() - started >= self.max_step_wait_s:
                    return ABORTED, f"stopped at step {i}: metrics source unreadable ({exc})"
                continue
            ramp = (self._figures(now, ramp_base, cand), self._figures(now, ramp_base, ctrl))
            step_figs = self._figures(now, step_base, cand)
            if self.line_s is None and ramp[1].latency_n >= MIN_LINE_REQUESTS:
                self.line_s = ramp[1].p95_line()
            acc = (
                await online_report.corrections_since(
                    self.redis, self.stream, self.experiment, self.names, ramp_start_wall
                )
                if plan.accuracy_gate
                else {}
            )
            look = judge(ramp, step_figs, acc, (cand, ctrl), self.limits, plan, self.line_s)
            self.say(self._progress(i, step, step_figs, ramp, acc))
            if look.breach is not None:
                return ROLLED_BACK, look.breach
            elapsed = time.monotonic() - started
            missing = self._missing(step_figs, acc, plan)
            if must_show and not missing:
                missing = [
                    look.comparisons[g].text(g) + " (non-inferiority not shown yet)"
                    for g in look.waiting_for()
                ]
            if elapsed >= self.hold_s and not missing:
                for gate, c in look.comparisons.items():
                    self.say(f"  {c.text(gate)}")
                return None
            if elapsed >= self.max_step_wait_s:
                return ABORTED, (
                    f"stopped at step {i} ({cand} {step:g}%) after {elapsed:.0f}s without enough "
                    f"evidence: {'; '.join(missing)}"
                )

    def _missing(
        self, step_figs: LiveFigures, acc: Mapping[str, tuple[int, int]], plan: Plan
    ) -> list[str]:
        out = []
        if step_figs.requests < plan.min_requests:
            out.append(f"candidate requests {step_figs.requests}/{plan.min_requests} this step")
        if plan.accuracy_gate:
            for name in (self.candidate, str(self.control)):
                n = acc.get(name, (0, 0))[1]
                if n < plan.min_corrected:
                    out.append(f"{name} corrected pairs {n}/{plan.min_corrected}")
        return out

    def _progress(
        self,
        i: int,
        step: float,
        f: LiveFigures,
        ramp: tuple[LiveFigures, LiveFigures],
        acc: Mapping[str, tuple[int, int]],
    ) -> str:
        p95 = "-" if f.p95_ms is None else f"{f.p95_ms:.0f} ms"
        right, n = acc.get(self.candidate, (0, 0))
        return (
            f"  step {i} ({step:g}%): requests {f.requests}, errors {f.errors}, "
            f"invalid {f.validation_failures}/{f.calls} calls, p95 {p95}, corrected right "
            f"{right}/{n}; cost per request {_cost(ramp[0])} vs control {_cost(ramp[1])}"
        )


async def rollback_latest(
    routes: RoutesConfig,
    redis: aioredis.Redis,
    experiment: str,
    reason: str,
    to_version: int | None = None,
) -> Rollback:
    """Restore the last known-good baseline (`RouteStore.rollback`: the pre-ramp weights after
    a ramp, the version before a manual change), or `to_version`, as a new audited change;
    `{"changed": False, "version": N, ...}` when those weights are already in force."""
    store = RouteStore(redis, RouteTable(routes), GatewayMetrics())
    await store.refresh()
    return await store.rollback(
        experiment,
        actor=f"rollback:{uuid.uuid4().hex[:8]}",
        reason=reason,
        to_version=to_version,
    )


def _routes(settings: Settings) -> RoutesConfig:
    try:
        return load_routes(settings.routes)
    except RoutesFileError as exc:
        raise PromotionError(str(exc)) from None


async def _promote(
    ctrl_args: dict[str, Any], settings: Settings, gateway: str, prometheus: str | None
) -> PromotionResult:
    async with async_connect(settings) as client, aiohttp.ClientSession() as session:
        source: FigureSource
        if prometheus:
            source = PrometheusQuery(session, prometheus, ctrl_args["experiment"])
        else:
            source = MetricsScrape(session, gateway)
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
    figures from Prometheus (every replica) or one gateway's /metrics; NoMetricsSource when
    neither is given, a PromotionError when it cannot start or Redis fails."""
    if not gateway and not prometheus:
        raise NoMetricsSource()
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
    url = gateway or ""
    if url and "://" not in url:
        url = f"http://{url}"
    try:
        return asyncio.run(_promote(args, settings, url, prometheus))
    except GatewayError as exc:
        raise PromotionError(exc.detail) from None
    except (RedisError, aiohttp.ClientError, OSError) as exc:
        raise PromotionError(f"promotion stopped: {type(exc).__name__}: {exc}") from None


def rollback(
    settings: Settings, experiment: str, reason: str, to_version: int | None = None
) -> Rollback:
    """Roll an experiment back to its last known-good baseline, or to `to_version`
    (`rollback_latest`); the new history entry with `changed` True, or `changed` False and
    the `version` in force when there was nothing to roll back."""
    config = _routes(settings)
    try:
        return run_with_redis(
            settings,
            lambda client: rollback_latest(config, client, experiment, reason, to_version),
        )
    except GatewayError as exc:  # a Redis failure included (UnavailableError)
        raise PromotionError(exc.detail) from None
