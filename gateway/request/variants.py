"""Calling one variant: an upstream model or the in-process local model, with validation and
one re-ask. `VariantPool` is built once at start-up from the routes file."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.experiments.config import Cascade, Experiment, Price, RoutesConfig, Variant
from gateway.infra.metrics import GatewayMetrics
from gateway.local.loader import LocalModel, load_local_model
from gateway.request.pricing import Endpoint, ProviderFacts, call_cost
from gateway.request.triage import ReviewIn, Triage, json_schema, system_prompt, user_prompt
from gateway.request.upstream import Completion, UpstreamClient, UpstreamFailure
from gateway.request.validate import TriageValidationError, validate_triage

REASK = (
    "Your previous answer was not valid: {error}. Answer again with only the JSON object, "
    "with the keys category, urgency, topic and summary."
)


@dataclass(frozen=True, slots=True)
class VariantAnswer:
    variant: str
    model: str
    triage: Triage
    attempts: int
    raw_if_repaired: str | None  # the raw output, kept when it needed repair or a re-ask
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    model_seconds: float  # time inside model calls (upstream or local)
    confidence: float | None = None
    answered_by: str | None = None  # for a cascade: the variant whose answer this is


class VariantFailed(Exception):
    def __init__(
        self, reason: str, attempts: int, retry_after: float | None = None, cost_usd: float = 0.0
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.retry_after = retry_after
        self.cost_usd = cost_usd  # spent on answers that were then rejected


@dataclass(frozen=True, slots=True)
class _Upstream:
    endpoint: Endpoint
    api_key: str | None
    price: Price | None
    response_format: dict[str, Any] | None


class VariantPool:
    """Runs variants by name; owns no connections (the `UpstreamClient` does)."""

    def __init__(self, client: UpstreamClient, metrics: GatewayMetrics) -> None:
        self.client = client
        self.metrics = metrics
        self._upstreams: dict[tuple[str, str], _Upstream] = {}
        self._locals: dict[tuple[str, str], LocalModel] = {}
        self._cascades: dict[tuple[str, str], Cascade] = {}

    @classmethod
    def build(
        cls,
        routes: RoutesConfig,
        facts: ProviderFacts,
        client: UpstreamClient,
        metrics: GatewayMetrics,
        *,
        provider_keys: dict[str, str],
        baseline_model: Path | None,
    ) -> VariantPool:
        pool = cls(client, metrics)
        models: dict[str, LocalModel] = {}
        for exp in routes.experiments:
            for v in exp.variants:
                pool.add(exp, v, facts, provider_keys, baseline_model, models)
        return pool

    def add(
        self,
        exp: Experiment,
        v: Variant,
        facts: ProviderFacts,
        provider_keys: dict[str, str],
        baseline_model: Path | None,
        models: dict[str, LocalModel] | None = None,
    ) -> None:
        key = (exp.name, v.name)
        if v.cascade is not None:
            self._cascades[key] = v.cascade
            return
        if v.is_local:
            path = Path(v.model_path) if v.model_path else baseline_model
            if path is None:
                raise ValueError(f"variant {v.name!r}: no model_path and no baseline model")
            cache = models if models is not None else {}
            if str(path) not in cache:
                cache[str(path)] = load_local_model(path)
            self._locals[key] = cache[str(path)]
            return
        endpoint = facts.endpoint(v)
        key_name = v.api_key or endpoint.provider
        fmt: dict[str, Any] | None = None
        if v.response_format == "json_object":
            fmt = {"type": "json_object"}
        elif v.response_format == "json_schema":
            fmt = {"type": "json_schema", "json_schema": json_schema(exp.taxonomy)}
        self._upstreams[key] = _Upstream(endpoint, provider_keys.get(key_name), facts.price(v), fmt)

    def model_name(self, exp: Experiment, name: str) -> str:
        return exp.variant(name).model

    async def run(self, exp: Experiment, name: str, review: ReviewIn) -> VariantAnswer:
        """Answer `review` with variant `name`; raise `VariantFailed` when it cannot."""
        local = self._locals.get((exp.name, name))
        if local is not None:
            return self._run_local(exp, name, local, review)
        cascade = self._cascades.get((exp.name, name))
        if cascade is not None:
            return await self._run_cascade(exp, name, cascade, review)
        return await self._run_upstream(
            exp, exp.variant(name), self._upstreams[(exp.name, name)], review
        )

    def _run_local(
        self, exp: Experiment, name: str, model: LocalModel, review: ReviewIn
    ) -> VariantAnswer:
        start = time.perf_counter()
        try:
            pred = model.predict(review.text, review.app, review.rating)
        except Exception as exc:  # a broken model must fall back, not fail the request
            raise VariantFailed(f"local_model_error:{type(exc).__name__}", 1) from None
        elapsed = time.perf_counter() - start
        self.metrics.upstream_duration.labels(exp.name, name, "local").observe(elapsed)
        return VariantAnswer(
            variant=name,
            model="local",
            triage=pred.triage,
            attempts=1,
            raw_if_repaired=None,
            cost_usd=0.0,
            prompt_tokens=0,
            completion_tokens=0,
            model_seconds=elapsed,
            confidence=pred.confidence,
        )

    async def _run_cascade(
        self, exp: Experiment, name: str, cascade: Cascade, review: ReviewIn
    ) -> VariantAnswer:
        """The cheap variant when it is confident enough, else the strong one. A cheap answer
        without a confidence (an upstream model), or a cheap failure, always escalates."""
        try:
            cheap: VariantAnswer | None = await self.run(exp, cascade.cheap, review)
        except VariantFailed:
            cheap = None
        confidence = cheap.confidence if cheap is not None else None
        if cheap is not None and confidence is not None and confidence >= cascade.threshold:
            return dataclasses.replace(cheap, variant=name, answered_by=cascade.cheap)
        strong = await self.run(exp, cascade.strong, review)
        if cheap is None:
            return dataclasses.replace(strong, variant=name, answered_by=cascade.strong)
        return dataclasses.replace(
            strong,
            variant=name,
            answered_by=cascade.strong,
            attempts=cheap.attempts + strong.attempts,
            cost_usd=round(cheap.cost_usd + strong.cost_usd, 8),
            prompt_tokens=cheap.prompt_tokens + strong.prompt_tokens,
            completion_tokens=cheap.completion_tokens + strong.completion_tokens,
            model_seconds=cheap.model_seconds + strong.model_seconds,
        )

    async def _call(
        self, exp: Experiment, v: Variant, up: _Upstream, messages: list[dict[str, str]]
    ) -> Completion:
        done = await self.client.chat(
            up.endpoint,
            up.api_key,
            messages,
            timeout_s=v.timeout_s,
            max_tokens=v.max_tokens,
            response_format=up.response_format,
        )
        self.metrics.upstream_duration.labels(exp.name, v.name, v.model).observe(done.latency_s)
        return done

    async def _run_upstream(
        self, exp: Experiment, v: Variant, up: _Upstream, review: ReviewIn
    ) -> VariantAnswer:
        messages = [
            {"role": "system", "content": system_prompt(exp.taxonomy)},
            {"role": "user", "content": user_prompt(review.text, review.app, review.rating)},
        ]
        calls: list[Completion] = []
        raws: list[str] = []
        for attempt in (1, 2):
            try:
                done = await self._call(exp, v, up, messages)
            except UpstreamFailure as exc:
                raise VariantFailed(exc.reason, attempt, exc.retry_after) from None
            calls.append(done)
            try:
                checked = validate_triage(done.content, exp.taxonomy)
            except TriageValidationError as exc:
                self.metrics.validation_failures.labels(exp.name, v.name, exc.reason).inc()
                raws.append(done.content)
                if attempt == 2:
                    spent = sum(self._cost(up, c) for c in calls)
                    raise VariantFailed("invalid_output", attempt, cost_usd=spent) from None
                self.metrics.reasks.labels(exp.name, v.name).inc()
                messages = [
                    *messages,
                    {"role": "assistant", "content": done.content[:4000]},
                    {"role": "user", "content": REASK.format(error=exc.message)},
                ]
                continue
            if checked.repaired:
                raws.append(done.content)
            return self._answer(v, up, checked.triage, calls, raws)
        raise AssertionError("unreachable")

    @staticmethod
    def _cost(up: _Upstream, c: Completion) -> float:
        return call_cost(c.reported_cost, up.price, c.prompt_tokens, c.completion_tokens)

    def _answer(
        self, v: Variant, up: _Upstream, triage: Triage, calls: list[Completion], raws: list[str]
    ) -> VariantAnswer:
        prompt = sum(c.prompt_tokens for c in calls)
        completion = sum(c.completion_tokens for c in calls)
        cost = sum(self._cost(up, c) for c in calls)
        return VariantAnswer(
            variant=v.name,
            model=v.model,
            triage=triage,
            attempts=len(calls),
            raw_if_repaired="\n---\n".join(raws) if raws else None,
            cost_usd=round(cost, 8),
            prompt_tokens=prompt,
            completion_tokens=completion,
            model_seconds=sum(c.latency_s for c in calls),
        )
