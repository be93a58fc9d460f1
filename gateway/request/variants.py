"""Calling one variant: an upstream model or the in-process local model, with validation and
one re-ask. `VariantPool` is built once at start-up from the routes file.

A variant that cannot answer raises the `gateway.errors.UpstreamError` of its last failure,
with the attempts made and the cost of every call (rejected answers cost money too).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gateway.errors import InvalidOutputError, UpstreamError
from gateway.experiments.config import Cascade, Experiment, Price, RoutesConfig, Variant
from gateway.infra.metrics import GatewayMetrics
from gateway.local.loader import MODEL_CARD, LocalModel, load_local_model
from gateway.request.pricing import Endpoint, ProviderFacts
from gateway.request.triage import ReviewIn, Triage, json_schema, system_prompt, user_prompt
from gateway.request.upstream import ChatMessage, Completion, ResponseFormat, UpstreamClient
from gateway.request.validate import (
    CATEGORY_SYNONYMS,
    URGENCY_SYNONYMS,
    TriageValidationError,
    canonical_label,
    validate_triage,
)

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


@dataclass(frozen=True, slots=True)
class _Upstream:
    endpoint: Endpoint
    api_key: str | None
    price: Price | None
    response_format: ResponseFormat | None


_R = TypeVar("_R")

LOCAL_INLINE_MAX_CHARS = 1_000
"""Longest review a cheap local model (one whose `inline` attribute is true: `tfidf-linear`,
a millisecond or two at this length) predicts on the event loop; longer ones, and every
encoder, go to the local-model thread."""

INLINE_BUDGET_S = 0.005
"""Most time spent predicting on the event loop in one iteration of it (`LoopSlices`)."""


class LoopSlices:
    """Short CPU-bound calls run on the event loop, in order of arrival, at most `budget_s` of
    them per iteration of the loop; the rest wait for the next iteration, so the loop polls for
    I/O in between: a burst of requests, or a batch, never holds a health check for the sum of
    its calls, and no call pays a thread hop."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self._queue: deque[tuple[asyncio.Future[Any], Callable[[], Any]]] = deque()
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        """The loop a drain is scheduled on (None: none is)."""

    def run(self, fn: Callable[..., _R], *args: Any) -> asyncio.Future[_R]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_R] = loop.create_future()
        if self._scheduled_on is not loop:  # none scheduled, or on a loop that has ended
            self._queue = deque(item for item in self._queue if item[0].get_loop() is loop)
            self._scheduled_on = loop
            loop.call_soon(self._drain)
        self._queue.append((future, functools.partial(fn, *args)))
        return future

    def _drain(self) -> None:
        deadline = time.perf_counter() + self.budget_s
        while self._queue and time.perf_counter() < deadline:
            future, call = self._queue.popleft()
            if future.done():  # cancelled: its request went away
                continue
            try:
                future.set_result(call())
            except Exception as exc:  # the caller's await raises it
                future.set_exception(exc)
        if self._queue:
            asyncio.get_running_loop().call_soon(self._drain)  # runs after the next I/O poll
        else:
            self._scheduled_on = None


class VariantPool:
    """Runs variants by name; owns no connections (the `UpstreamClient` does)."""

    def __init__(self, client: UpstreamClient, metrics: GatewayMetrics) -> None:
        self.client = client
        self.metrics = metrics
        self._upstreams: dict[tuple[str, str], _Upstream] = {}
        self._locals: dict[tuple[str, str], LocalModel] = {}
        self._cascades: dict[tuple[str, str], Cascade] = {}
        self._local_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-model")
        self._slices = LoopSlices(INLINE_BUDGET_S)
        self._loaded: weakref.WeakValueDictionary[tuple[str, int, int, int], LocalModel] = (
            weakref.WeakValueDictionary()
        )
        """Local models loaded and still in use (installed, or held by an installer), by
        directory and the identity of its model card: a variant rebuilt (an admin call's
        check, then its install; every runtime variant when another one changes) reuses
        the model instead of loading it again."""

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
        for exp in routes.experiments:
            for v in exp.variants:  # installed at once: a model two variants name loads once
                pool.prepare(exp, v, facts, provider_keys, baseline_model)()
        return pool

    def prepare(
        self,
        exp: Experiment,
        v: Variant,
        facts: ProviderFacts,
        provider_keys: dict[str, str],
        baseline_model: Path | None,
    ) -> Callable[[], None]:
        """Build variant `v`'s runtime (loading a local model: slow, safe in a worker thread)
        without touching the pool; the function returned installs it, in place of whatever
        ran under that name (call it on the event loop, beside the route table's switch)."""
        key = (exp.name, v.name)
        if v.cascade is not None:
            return self._installer(key, self._cascades, v.cascade)
        if v.is_local:
            path = Path(v.model_path) if v.model_path else baseline_model
            if path is None:
                raise ValueError(f"variant {v.name!r}: no model_path and no baseline model")
            model = self._load(path)
            outside = labels_outside(exp, model)
            if outside:
                raise ValueError(
                    f"experiment {exp.name!r}, local variant {v.name!r}: the model at {path} "
                    f"answers {', '.join(repr(x) for x in outside)}, outside the experiment's "
                    f"taxonomy (categories: {', '.join(exp.taxonomy.categories)}; urgencies: "
                    f"{', '.join(exp.taxonomy.urgencies)}); use a model trained on it"
                )
            return self._installer(key, self._locals, model)
        endpoint = facts.endpoint(v)
        key_name = v.api_key or endpoint.provider
        fmt: ResponseFormat | None = None
        if v.response_format == "json_object":
            fmt = {"type": "json_object"}
        elif v.response_format == "json_schema":
            fmt = {"type": "json_schema", "json_schema": json_schema(exp.taxonomy)}
        upstream = _Upstream(endpoint, provider_keys.get(key_name), facts.price(v), fmt)
        return self._installer(key, self._upstreams, upstream)

    def _load(self, path: Path) -> LocalModel:
        """The model in directory `path`, the one already loaded when its model card is the
        same file, unchanged: `train-local` writes a new directory and card, so a retrained
        model is loaded afresh. Model files replaced by hand with the card left as it was are
        not seen until every variant using the old model is gone (or the gateway restarts)."""
        try:
            card = (path / MODEL_CARD).stat()
        except OSError:
            return load_local_model(path)  # which says what is missing
        key = (str(path.resolve()), card.st_ino, card.st_mtime_ns, card.st_size)
        model = self._loaded.get(key)
        if model is None:
            model = load_local_model(path)
            with contextlib.suppress(TypeError):  # a type without weak references: not kept
                self._loaded[key] = model
        return model

    def _installer(
        self, key: tuple[str, str], table: dict[tuple[str, str], _R], runtime: _R
    ) -> Callable[[], None]:
        def install() -> None:
            self._locals.pop(key, None)  # a variant replaced by one of another kind
            self._cascades.pop(key, None)
            self._upstreams.pop(key, None)
            table[key] = runtime

        return install

    def model_name(self, exp: Experiment, name: str) -> str:
        return exp.variant(name).model

    async def run(self, exp: Experiment, name: str, review: ReviewIn) -> VariantAnswer:
        """Answer `review` with variant `name`; raise an `UpstreamError` when it cannot."""
        local = self._locals.get((exp.name, name))
        if local is not None:
            return await self._run_local(exp, name, local, review)
        cascade = self._cascades.get((exp.name, name))
        if cascade is not None:
            return await self._run_cascade(exp, name, cascade, review)
        return await self._run_upstream(
            exp, exp.variant(name), self._upstreams[(exp.name, name)], review
        )

    async def _run_local(
        self, exp: Experiment, name: str, model: LocalModel, review: ReviewIn
    ) -> VariantAnswer:
        start = time.perf_counter()
        try:
            if getattr(model, "inline", False) and len(review.text) <= LOCAL_INLINE_MAX_CHARS:
                # a cheap model on a short review: on the event loop, in slices (cheaper than
                # the hop to the thread and back, which on one core also makes the two threads
                # take turns with the GIL)
                pred = await self._slices.run(model.predict, review.text, review.app, review.rating)
            else:
                # In the pool's one local-model thread: one thread, not many, as predictions
                # hold the GIL, so several threads would only make the event loop wait its
                # turn behind each of them.
                pred = await asyncio.get_running_loop().run_in_executor(
                    self._local_thread, model.predict, review.text, review.app, review.rating
                )
        except Exception as exc:  # a broken model must fall back, not fail the request
            reason = f"local_model_error:{type(exc).__name__}"
            raise UpstreamError(f"the local model failed ({reason})", reason=reason) from None
        elapsed = time.perf_counter() - start
        self.metrics.series(exp.name, name, "local").upstream.observe(elapsed)
        triage = self._in_taxonomy(exp, name, pred.triage)
        return VariantAnswer(
            variant=name,
            model="local",
            triage=triage,
            attempts=1,
            raw_if_repaired=None,
            cost_usd=0.0,
            prompt_tokens=0,
            completion_tokens=0,
            model_seconds=elapsed,
            confidence=pred.confidence,
        )

    def _in_taxonomy(self, exp: Experiment, name: str, triage: Triage) -> Triage:
        """The local answer with its labels as the experiment's taxonomy spells them; a label
        outside it is an invalid answer (the next variant in the fallback order answers), as
        for an upstream model. The start check (`labels_outside`) covers the labels a model
        declares; this covers any other (a default urgency, a format that declares none)."""
        tax = exp.taxonomy
        category = canonical_label(triage.category, tax.categories, CATEGORY_SYNONYMS)
        urgency = canonical_label(triage.urgency, tax.urgencies, URGENCY_SYNONYMS)
        if category is None or urgency is None:
            field = "category" if category is None else "urgency"
            value = triage.category if category is None else triage.urgency
            self.metrics.validation_failures.labels(exp.name, name, f"bad_{field}").inc()
            raise InvalidOutputError(
                f"the local model answered {field} {value[:40]!r}, not in the taxonomy of "
                f"experiment {exp.name!r}",
                reason=f"bad_{field}",
            )
        if (category, urgency) == (triage.category, triage.urgency):
            return triage
        return triage.model_copy(update={"category": category, "urgency": urgency})

    async def _run_cascade(
        self, exp: Experiment, name: str, cascade: Cascade, review: ReviewIn
    ) -> VariantAnswer:
        """The cheap variant when it is confident enough, else the strong one. A cheap answer
        without a confidence (an upstream model), or a cheap failure, always escalates. What
        the cheap variant spent is added to the strong one's answer or failure."""
        spent = 0.0
        try:
            cheap: VariantAnswer | None = await self.run(exp, cascade.cheap, review)
        except UpstreamError as exc:
            cheap, spent = None, exc.cost_usd
        confidence = cheap.confidence if cheap is not None else None
        if cheap is not None and confidence is not None and confidence >= cascade.threshold:
            return dataclasses.replace(cheap, variant=name, answered_by=cascade.cheap)
        try:
            strong = await self.run(exp, cascade.strong, review)
        except UpstreamError as exc:
            spent += cheap.cost_usd if cheap is not None else 0.0
            exc.cost_usd = round(exc.cost_usd + spent, 8)
            raise
        if cheap is None:
            return dataclasses.replace(
                strong,
                variant=name,
                answered_by=cascade.strong,
                cost_usd=round(strong.cost_usd + spent, 8),
            )
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
        self, exp: Experiment, v: Variant, up: _Upstream, messages: list[ChatMessage]
    ) -> Completion:
        done = await self.client.chat(
            up.endpoint,
            up.api_key,
            messages,
            timeout_s=v.timeout_s,
            max_tokens=v.max_tokens,
            response_format=up.response_format,
            price=up.price,
            stop=v.stop,
        )
        self.metrics.series(exp.name, v.name, v.model).upstream.observe(done.latency_s)
        return done

    async def _run_upstream(
        self, exp: Experiment, v: Variant, up: _Upstream, review: ReviewIn
    ) -> VariantAnswer:
        messages: list[ChatMessage] = [
            {"role": "system", "content": system_prompt(exp.taxonomy)},
            {"role": "user", "content": user_prompt(review.text, review.app, review.rating)},
        ]
        calls: list[Completion] = []
        raws: list[str] = []
        for attempt in (1, 2):
            try:
                done = await self._call(exp, v, up, messages)
            except UpstreamError as exc:
                exc.attempts, exc.cost_usd = attempt, round(sum(c.cost_usd for c in calls), 8)
                raise
            calls.append(done)
            try:
                checked = validate_triage(done.content, exp.taxonomy)
            except TriageValidationError as exc:
                self.metrics.validation_failures.labels(exp.name, v.name, exc.reason).inc()
                raws.append(done.content)
                if attempt == 2:
                    raise InvalidOutputError(
                        f"no valid triage after the re-ask ({exc.reason})",
                        attempts=attempt,
                        cost_usd=round(sum(c.cost_usd for c in calls), 8),
                    ) from None
                self.metrics.reasks.labels(exp.name, v.name).inc()
                messages = [
                    *messages,
                    {"role": "assistant", "content": done.content[:4000]},
                    {"role": "user", "content": REASK.format(error=exc.message)},
                ]
                continue
            if checked.repaired:
                raws.append(done.content)
            return self._answer(v, checked.triage, calls, raws)
        raise AssertionError("unreachable")

    def _answer(
        self, v: Variant, triage: Triage, calls: list[Completion], raws: list[str]
    ) -> VariantAnswer:
        prompt = sum(c.prompt_tokens for c in calls)
        completion = sum(c.completion_tokens for c in calls)
        cost = sum(c.cost_usd for c in calls)
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


def labels_outside(exp: Experiment, model: LocalModel) -> list[str]:
    """The labels a local model declares (`categories`, `urgencies`: both runtimes list the
    classes they can answer) that the experiment's taxonomy does not accept. A model that
    declares none passes here; its answers are still checked one by one."""
    outside: list[str] = []
    for attr, allowed, synonyms in (
        ("categories", exp.taxonomy.categories, CATEGORY_SYNONYMS),
        ("urgencies", exp.taxonomy.urgencies, URGENCY_SYNONYMS),
    ):
        declared = getattr(model, attr, None) or ()
        outside += [str(x) for x in declared if canonical_label(str(x), allowed, synonyms) is None]
    return outside
