"""The classify service: assign a variant, call it, validate, re-ask, fall back, log, count.

Plain asyncio, no web framework: the API, the eval runner and the load tests all call
`Classifier.classify`. A failed variant raises the `gateway.errors.UpstreamError` of what
went wrong; when none answers, `classify` raises `AllVariantsFailed` holding them all. Costs
arrive computed (`VariantAnswer.cost_usd`, `UpstreamError.cost_usd`) and are only added up here.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gateway.errors import AllVariantsFailed, UpstreamError
from gateway.experiments.config import Experiment
from gateway.experiments.table import RouteTable
from gateway.infra.metrics import GatewayMetrics
from gateway.pairs.record import PairRecord, PairTriage
from gateway.request.assign import assign_variant, should_sample
from gateway.request.triage import ReviewIn, Triage
from gateway.request.variants import VariantAnswer, VariantPool


class PairSink(Protocol):
    """Where (review, answer) pairs go; must never block or raise on the request path."""

    def submit(self, record: PairRecord) -> None: ...


@dataclass(slots=True)
class ClassifyResult:
    request_id: str
    review_id: str | None
    experiment: str
    variant: str
    model: str
    triage: Triage
    latency_ms: float
    cost_usd: float
    attempts: int
    fallback_from: str | None
    confidence: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def public_dict(self) -> dict[str, object]:
        """The body of a /v1/classify answer."""
        return {
            "request_id": self.request_id,
            "review_id": self.review_id,
            "experiment": self.experiment,
            "variant": self.variant,
            "model": self.model,
            "triage": self.triage.to_json_dict(),
            "latency_ms": self.latency_ms,
            "cost_usd": self.cost_usd,
            "attempts": self.attempts,
            "fallback_from": self.fallback_from,
        }

    answered_by: str | None = None  # for a cascade variant: the variant that answered


@dataclass
class Classifier:
    table: RouteTable
    pool: VariantPool
    metrics: GatewayMetrics
    pairs: PairSink | None = None
    clock: Callable[[], float] = time.perf_counter
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    _cooldown: dict[tuple[str, str], float] = field(default_factory=dict)

    async def classify(
        self, review: ReviewIn, experiment: str | None = None, request_id: str | None = None
    ) -> ClassifyResult:
        """Classify one review; raises `AllVariantsFailed` when every variant failed."""
        start = self.clock()
        exp = self.table.experiment(experiment)
        request_id = request_id or uuid.uuid4().hex
        assigned = assign_variant(exp.salt, self.table.weights(exp.name), review.review_id)
        failures: list[UpstreamError] = []
        answer: VariantAnswer | None = None
        for name in self._order(exp, assigned):
            if self._cooling(exp.name, name):
                continue
            try:
                answer = await self.pool.run(exp, name, review)
                break
            except UpstreamError as exc:
                exc.variant = name
                failures.append(exc)
                self._note_failure(exp, name, exc)
        attempts = sum(f.attempts for f in failures)
        if answer is None:
            self._count_failure(exp, assigned, start)
            raise AllVariantsFailed(failures)
        attempts += answer.attempts
        served = answer.variant
        if failures:
            self._count_fallbacks(exp, failures, served)
        total = self.clock() - start
        result = ClassifyResult(
            request_id=request_id,
            review_id=review.review_id,
            experiment=exp.name,
            variant=served,
            model=answer.model,
            triage=answer.triage,
            latency_ms=round(total * 1000, 3),
            cost_usd=round(answer.cost_usd + sum(f.cost_usd for f in failures), 8),
            attempts=attempts,
            fallback_from=assigned if served != assigned else None,
            confidence=answer.confidence,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            answered_by=answer.answered_by,
        )
        self._count_success(exp, answer, total)
        self._log_pair(review, result, answer.raw_if_repaired, shadow=False)
        self._maybe_shadow(exp, review, result)
        return result

    def _order(self, exp: Experiment, assigned: str) -> list[str]:
        return [assigned, *(name for name in exp.fallback if name != assigned)]

    def _cooling(self, experiment: str, variant: str) -> bool:
        until = self._cooldown.get((experiment, variant))
        if until is None:
            return False
        if self.clock() >= until:
            del self._cooldown[(experiment, variant)]
            return False
        return True

    def _spent(self, experiment: str, variant: str, model: str, usd: float) -> None:
        """The one place spend reaches the cost metric (the amount comes computed)."""
        if usd:
            self.metrics.cost.labels(experiment, variant, model).inc(usd)

    def _note_failure(self, exp: Experiment, variant: str, exc: UpstreamError) -> None:
        self._spent(exp.name, variant, self.pool.model_name(exp, variant), exc.cost_usd)
        if exc.retry_after is not None:
            # Honour the provider's Retry-After: skip this variant until then.
            self._cooldown[(exp.name, variant)] = self.clock() + exc.retry_after

    def _count_success(self, exp: Experiment, a: VariantAnswer, total: float) -> None:
        m = self.metrics
        labels = (exp.name, a.variant, a.model)
        m.requests.labels(*labels, "ok").inc()
        m.request_duration.labels(*labels).observe(total)
        m.overhead_duration.labels(exp.name).observe(max(0.0, total - a.model_seconds))
        self._spent(*labels, a.cost_usd)
        if a.prompt_tokens:
            m.tokens.labels(*labels, "prompt").inc(a.prompt_tokens)
            m.tokens.labels(*labels, "completion").inc(a.completion_tokens)

    def _count_failure(self, exp: Experiment, assigned: str, start: float) -> None:
        model = self.pool.model_name(exp, assigned)
        self.metrics.requests.labels(exp.name, assigned, model, "error").inc()
        self.metrics.request_duration.labels(exp.name, assigned, model).observe(
            self.clock() - start
        )

    def _count_fallbacks(self, exp: Experiment, failures: list[UpstreamError], served: str) -> None:
        hops = [str(f.variant) for f in failures] + [served]
        for f, to in zip(failures, hops[1:], strict=True):
            self.metrics.fallbacks.labels(exp.name, f.variant, to, f.reason).inc()

    def _log_pair(
        self, review: ReviewIn, result: ClassifyResult, raw: str | None, *, shadow: bool
    ) -> None:
        if self.pairs is None:
            return
        self.pairs.submit(
            PairRecord(
                request_id=result.request_id if not shadow else f"{result.request_id}:shadow",
                served_request_id=result.request_id if shadow else None,
                shadow=shadow,
                review_id=review.review_id,
                text=review.text,
                app=review.app,
                rating=review.rating,
                metadata=review.metadata,
                experiment=result.experiment,
                variant=result.variant,
                model=result.model,
                triage=PairTriage.of(result.triage),
                raw_output=raw,
                attempts=result.attempts,
                fallback_from=result.fallback_from,
                latency_ms=result.latency_ms,
                cost_usd=result.cost_usd,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                confidence=result.confidence,
                answered_by=result.answered_by,
                ts=time.time(),
            )
        )

    def _maybe_shadow(self, exp: Experiment, review: ReviewIn, served: ClassifyResult) -> None:
        shadow = exp.shadow
        if shadow is None or shadow.variant == served.variant:
            return
        if not should_sample(shadow.sample_rate):
            return
        task = asyncio.get_running_loop().create_task(self._run_shadow(exp, review, served))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run_shadow(self, exp: Experiment, review: ReviewIn, served: ClassifyResult) -> None:
        assert exp.shadow is not None
        name = exp.shadow.variant
        try:
            answer = await self.pool.run(exp, name, review)
        except UpstreamError as exc:
            model = self.pool.model_name(exp, name)
            self.metrics.requests.labels(exp.name, name, model, "shadow_error").inc()
            self._spent(exp.name, name, model, exc.cost_usd)
            return
        agree = answer.triage.category == served.triage.category
        self.metrics.shadow.labels(exp.name, name, "agree" if agree else "disagree").inc()
        labels = (exp.name, name, answer.model)
        self.metrics.requests.labels(*labels, "shadow").inc()
        self._spent(*labels, answer.cost_usd)
        shadow_result = ClassifyResult(
            request_id=served.request_id,
            review_id=review.review_id,
            experiment=exp.name,
            variant=name,
            model=answer.model,
            triage=answer.triage,
            latency_ms=round(answer.model_seconds * 1000, 3),
            cost_usd=answer.cost_usd,
            attempts=answer.attempts,
            fallback_from=None,
            confidence=answer.confidence,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
        )
        self._log_pair(review, shadow_result, answer.raw_if_repaired, shadow=True)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for shadow calls still running (on shutdown)."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout_s)


__all__ = ["Classifier", "ClassifyResult", "PairSink"]
