"""Offline eval: run variants over a labelled set and write `summary.json` and `report.html`.

Two ways to run:

* in process (default): the same `VariantPool` the gateway builds from the routes file, so the
  same prompt, upstream client, validation and re-ask; each variant answers every review
  (`pool.run`, no fallback), and a failure or an invalid answer counts as a wrong answer.
  A variant the routes file lacks is taken from the store: a runtime variant (added with
  `models deploy` or the admin API, built as a replica builds it), else a model-registry
  entry, deployed or not (`model_registry.to_variant`: its endpoint, model id and price);
* through a running gateway (`gateway_url`): `POST /v1/classify` for the experiment. With
  `variants`, each named variant answers every review, forced with `X-Triage-Variant` (an
  admin key; weight-0 and runtime variants included; the gateway logs those pairs as eval
  pairs) and comparisons are paired; without, the experiment answers as served, figures are
  grouped by the variant that answered, and comparisons are unpaired.

Either way calls run concurrently under one semaphore, with a progress bar on stderr.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from redis.exceptions import RedisError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from eval.cascade import sweep_cascade
from eval.data import LabelledReview, load_labelled, sample, to_review
from eval.gates import check_gates
from eval.report import write_report
from eval.summary import FAILED, Outcome, summarise
from gateway.errors import InvalidRequestError, NotFoundError, UpstreamError
from gateway.experiments import model_registry
from gateway.experiments.config import (
    Experiment,
    Gates,
    RoutesConfig,
    RoutesFileError,
    load_routes,
)
from gateway.experiments.store import RouteStore
from gateway.experiments.table import RouteTable, RuntimeVariant
from gateway.infra.metrics import GatewayMetrics
from gateway.infra.redis_client import async_connect
from gateway.infra.settings import Settings
from gateway.infra.state import runtime_variant_builder
from gateway.local.loader import LocalModelError
from gateway.request.pricing import ProviderFacts
from gateway.request.upstream import UpstreamClient
from gateway.request.variants import VariantPool
from training.baseline import baseline_for_routes

VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A variant name (`gateway.experiments.config.Name`)."""


class EvalError(ValueError):
    """The eval cannot run as asked (unknown variant, unreadable data, ...)."""


@dataclass
class EvalOptions:
    data: Path
    out: Path
    variants: list[str] = field(default_factory=list)
    control: str | None = None
    routes: Path | None = None
    experiment: str | None = None
    gateway_url: str | None = None
    api_key: str | None = None
    admin_key: str | None = None
    """Gateway mode with `variants`: the bearer of the forced calls (X-Triage-Variant)."""
    concurrency: int = 8
    limit: int | None = None
    gates: Gates = field(default_factory=Gates)
    sweep: tuple[str, str] | None = None
    target_accuracy: float | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.gateway_url is not None and self.sweep is not None:
            raise EvalError("--sweep-cascade runs the variants in process: drop --gateway")


@dataclass
class EvalRun:
    summary: dict[str, Any]
    outcomes: dict[str, list[Outcome]]
    rows: list[LabelledReview]


def pick_experiment(routes: RoutesConfig, name: str | None, variants: Sequence[str]) -> Experiment:
    """The named experiment, else the first (default first) that has every variant."""
    if name is not None:
        try:
            return routes.experiment(name)
        except KeyError:
            raise EvalError(f"unknown experiment {name!r}") from None
    ordered = [routes.default, *(e for e in routes.experiments if e is not routes.default)]
    for exp in ordered:
        if set(variants) <= {v.name for v in exp.variants}:
            return exp
    raise EvalError(f"no experiment has all of the variants {list(variants)}")


async def run_eval(opts: EvalOptions, settings: Settings) -> EvalRun:
    """Run the eval, write `summary.json` and `report.html` under `opts.out`, return it all."""
    if opts.gateway_url:
        run = await _run_gateway(opts)
    else:
        run = await _run_in_process(opts, settings)
    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / "summary.json").write_bytes(
        orjson.dumps(run.summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )
    latencies = {
        name: [o.latency_ms for o in outs] for name, outs in run.outcomes.items() if name != FAILED
    }
    write_report(run.summary, latencies, opts.out / "report.html")
    return run


def _in_routes(routes: RoutesConfig, experiment: str | None, names: Sequence[str]) -> bool:
    try:
        pick_experiment(routes, experiment, names)
    except EvalError:
        return False
    return True


async def _from_store(
    settings: Settings,
    routes: RoutesConfig,
    pool: VariantPool,
    baseline: Path | None,
    experiment: str | None,
    names: Sequence[str],
) -> Experiment:
    """The experiment with `names`, from the routes file plus the store: the runtime variants
    in force (built into `pool` as a replica builds them), then registry entries for names
    still missing (built the same way, weight 0, never stored)."""
    facts, keys = ProviderFacts.from_litellm(), settings.provider_key_values()
    table = RouteTable(routes)
    build = runtime_variant_builder(pool, routes, facts, keys, baseline)
    try:
        async with async_connect(settings) as redis:
            await RouteStore(redis, table, GatewayMetrics(), build_variant=build).refresh()
            if experiment is not None:
                try:
                    candidates = [table.experiment(experiment)]
                except NotFoundError:
                    raise EvalError(f"unknown experiment {experiment!r}") from None
            else:
                default = table.experiment(None)
                candidates = [default, *(e for e in table.experiments() if e is not default)]
            # The experiment that has most of the names (the first such, default first).
            have = [len(set(names) & {v.name for v in e.variants}) for e in candidates]
            exp = candidates[have.index(max(have))]
            missing = [n for n in names if n not in {v.name for v in exp.variants}]
            records = [await _registry_record(redis, n, exp.name) for n in missing]
    except (RedisError, OSError) as exc:
        raise EvalError(f"redis unavailable ({type(exc).__name__}: {exc})") from None
    if not records:
        return exp
    runtime = dict(table.runtime_variants(exp.name))
    for record in records:
        try:
            variant = model_registry.to_variant(record, record.name)
        except InvalidRequestError as exc:
            raise EvalError(exc.detail) from None
        runtime[record.name] = RuntimeVariant(
            variant=variant, registry_name=record.name, actor="eval", ts=time.time()
        )
    try:
        exp, _ = table.with_runtime(exp.name, runtime)
        for record in records:
            build(exp, exp.variant(record.name))()  # build, then install into the pool
    except InvalidRequestError as exc:
        raise EvalError(exc.detail) from None
    except ValueError as exc:
        raise EvalError(f"registry model cannot be evaluated: {exc}") from None
    return exp


async def _registry_record(redis: Any, name: str, experiment: str) -> model_registry.ModelRecord:
    try:
        record = await model_registry.get_model(redis, name)
    except NotFoundError:
        raise EvalError(
            f"{name!r} is neither a variant of {experiment!r} (routes file or deployed) nor a "
            "registered model (see `triage-gateway models list`)"
        ) from None
    except InvalidRequestError as exc:
        raise EvalError(exc.detail) from None
    if not VARIANT_NAME.fullmatch(name):
        raise EvalError(
            f"registry name {name!r} is not a valid variant name: deploy it under one with "
            f"`triage-gateway models deploy {name} --experiment {experiment} --as-variant NAME`"
        )
    return record


async def _run_in_process(opts: EvalOptions, settings: Settings) -> EvalRun:
    routes = load_routes(opts.routes or settings.routes)
    names = list(dict.fromkeys([*opts.variants, *(opts.sweep or ())]))
    if not names:
        raise EvalError("name at least one variant (--variants)")
    shown = opts.variants or names
    control = _control(opts.control, shown)
    client = UpstreamClient()
    try:
        baseline = baseline_for_routes(routes, settings.data_dir)
        pool = VariantPool.build(
            routes,
            ProviderFacts.from_litellm(),
            client,
            GatewayMetrics(),
            provider_keys=settings.provider_key_values(),
            baseline_model=baseline,
        )
        if _in_routes(routes, opts.experiment, names):
            exp = pick_experiment(routes, opts.experiment, names)
        else:
            exp = await _from_store(settings, routes, pool, baseline, opts.experiment, names)
        rows = sample(load_labelled(opts.data, exp.taxonomy), opts.limit)
        batches = {
            name: [partial(_pool_call, pool, exp, name, i, row) for i, row in enumerate(rows)]
            for name in names
        }
        results = await _gather(batches, opts.concurrency, opts.progress)
    finally:
        await client.close()
    outcomes: dict[str, list[Outcome]] = {name: [] for name in names}
    for outcome in results:
        outcomes[outcome.variant].append(outcome)
    summary = summarise(
        rows,
        {n: outcomes[n] for n in shown},
        control,
        paired=True,
        categories=exp.taxonomy.categories,
    )
    summary["meta"] |= _meta(opts, exp.name, "in_process")
    summary["gates"] = check_gates(summary, opts.gates)
    if opts.sweep is not None:
        cheap, strong = opts.sweep
        gold = [r.category for r in rows]
        summary["cascade"] = sweep_cascade(
            gold, outcomes[cheap], outcomes[strong], target=opts.target_accuracy
        )
        summary["cascade"] |= {"cheap": cheap, "strong": strong}
    return EvalRun(summary, outcomes, rows)


async def _run_gateway(opts: EvalOptions) -> EvalRun:
    assert opts.gateway_url is not None
    if opts.variants:
        return await _run_gateway_forced(opts)
    rows = sample(load_labelled(opts.data), opts.limit)
    url = opts.gateway_url.rstrip("/")
    headers = {"Authorization": f"Bearer {opts.api_key}"} if opts.api_key else {}
    async with aiohttp.ClientSession(headers=headers) as session:
        calls = [
            partial(_http_call, session, url, opts.experiment, i, row) for i, row in enumerate(rows)
        ]
        results = await _gather({"gateway": calls}, opts.concurrency, opts.progress)
    outcomes: dict[str, list[Outcome]] = {}
    for outcome in results:
        outcomes.setdefault(outcome.variant, []).append(outcome)
    failed = outcomes.pop(FAILED, [])
    served = [n for n in opts.variants if n in outcomes] or sorted(outcomes)
    control = _control(opts.control, served)
    summary = summarise(rows, {n: outcomes[n] for n in served}, control, paired=False)
    summary["meta"] |= _meta(opts, opts.experiment, "gateway")
    summary["meta"]["gateway_failed"] = len(failed)
    summary["meta"]["gateway_failures"] = dict(Counter(o.error or "?" for o in failed))
    summary["gates"] = check_gates(summary, opts.gates)
    if failed:
        outcomes[FAILED] = failed
    return EvalRun(summary, outcomes, rows)


async def _run_gateway_forced(opts: EvalOptions) -> EvalRun:
    """Each named variant answers every review through the gateway (`X-Triage-Variant`)."""
    assert opts.gateway_url is not None
    if not opts.admin_key:
        raise EvalError(
            "--variants with --gateway forces each variant (X-Triage-Variant), which needs an "
            "admin key: --admin-key or GATEWAY_ADMIN_KEYS (drop --variants to evaluate the "
            "experiment as served)"
        )
    control = _control(opts.control, opts.variants)
    rows = sample(load_labelled(opts.data), opts.limit)
    url = opts.gateway_url.rstrip("/")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {opts.admin_key}"}) as s:
        for name in opts.variants:  # one call each first: a refusal ends the eval, named
            await _probe(s, url, opts.experiment, rows[0], name)
        batches = {
            name: [
                partial(_http_call, s, url, opts.experiment, i, row, name)
                for i, row in enumerate(rows)
            ]
            for name in opts.variants
        }
        results = await _gather(batches, opts.concurrency, opts.progress)
    outcomes: dict[str, list[Outcome]] = {name: [] for name in opts.variants}
    for outcome in results:
        outcomes[outcome.variant].append(outcome)
    summary = summarise(rows, outcomes, control, paired=True)
    summary["meta"] |= _meta(opts, opts.experiment, "gateway_forced")
    summary["gates"] = check_gates(summary, opts.gates)
    return EvalRun(summary, outcomes, rows)


async def _probe(
    session: aiohttp.ClientSession,
    url: str,
    experiment: str | None,
    row: LabelledReview,
    name: str,
) -> None:
    body: dict[str, Any] = {"text": row.text, "review_id": _review_id(0, row)}
    if experiment:
        body["experiment"] = experiment
    try:
        async with session.post(
            f"{url}/v1/classify",
            json=body,
            headers={"X-Triage-Variant": name},
            timeout=aiohttp.ClientTimeout(total=120),
        ) as resp:
            data = await resp.json(content_type=None)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise EvalError(f"gateway {url} unreachable ({type(exc).__name__}: {exc})") from None
    if status in (400, 401, 403, 404, 422):
        detail = data.get("detail", "") if isinstance(data, dict) else ""
        raise EvalError(f"the gateway refused variant {name!r} ({status}): {detail}")


def _control(requested: str | None, names: Sequence[str]) -> str:
    if requested is not None:
        if requested not in names:
            raise EvalError(f"control {requested!r} is not among the variants {list(names)}")
        return requested
    if not names:
        raise EvalError("no variant answered")
    return "control" if "control" in names else names[0]


def _meta(opts: EvalOptions, experiment: str | None, mode: str) -> dict[str, Any]:
    return {
        "data": opts.data.name,
        "mode": mode,
        "experiment": experiment,
        "limit": opts.limit,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


async def _gather(
    batches: Mapping[str, Sequence[Callable[[], Awaitable[Outcome]]]], concurrency: int, show: bool
) -> list[Outcome]:
    """Run each batch in turn (one variant at a time, so one variant's CPU work does not
    inflate another's latency), at most `concurrency` calls in flight."""
    sem = asyncio.Semaphore(max(1, concurrency))
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not show) as progress:

        async def bounded(call: Callable[[], Awaitable[Outcome]], task: TaskID) -> Outcome:
            async with sem:
                result = await call()
            progress.advance(task)
            return result

        results: list[Outcome] = []
        for label, calls in batches.items():
            task = progress.add_task(label, total=len(calls))
            results += await asyncio.gather(*(bounded(c, task) for c in calls))
        return results


async def _pool_call(
    pool: VariantPool, exp: Experiment, name: str, index: int, row: LabelledReview
) -> Outcome:
    start = time.perf_counter()
    try:
        answer = await pool.run(exp, name, to_review(row))
    except UpstreamError as exc:
        ms = (time.perf_counter() - start) * 1000
        return Outcome(name, index, None, None, ms, exc.cost_usd, exc.attempts, error=exc.reason)
    ms = (time.perf_counter() - start) * 1000
    t = answer.triage
    return Outcome(
        name, index, t.category, t.urgency, ms, answer.cost_usd, answer.attempts, answer.confidence
    )


def _review_id(index: int, row: LabelledReview) -> str:
    digest = hashlib.sha256(row.text.encode()).hexdigest()[:12]
    return row.review_id or f"eval-{index:06d}-{digest}"


async def _http_call(
    session: aiohttp.ClientSession,
    url: str,
    experiment: str | None,
    index: int,
    row: LabelledReview,
    force: str | None = None,
) -> Outcome:
    """One classify call; with `force`, that variant (X-Triage-Variant), and a failure is
    that variant's wrong answer (as in process) rather than a gateway failure."""
    body: dict[str, Any] = {"text": row.text, "review_id": _review_id(index, row)}
    body |= {k: v for k, v in (("app", row.app), ("rating", row.rating)) if v is not None}
    if experiment:
        body["experiment"] = experiment
    headers = {"X-Triage-Variant": force} if force is not None else {}
    start = time.perf_counter()
    try:
        async with session.post(
            f"{url}/v1/classify",
            json=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=120),
        ) as resp:
            data = await resp.json(content_type=None)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        ms = (time.perf_counter() - start) * 1000
        return Outcome(force or FAILED, index, None, None, ms, 0.0, 0, error=type(exc).__name__)
    ms = (time.perf_counter() - start) * 1000
    if status != 200 or not isinstance(data, dict):
        error = data.get("error") if isinstance(data, dict) else None
        return Outcome(force or FAILED, index, None, None, ms, 0.0, 0, error=str(error or status))
    t = data["triage"]
    return Outcome(
        str(data["variant"]),
        index,
        t["category"],
        t["urgency"],
        ms,
        float(data.get("cost_usd") or 0.0),
        int(data.get("attempts") or 1),
        fallback=data.get("fallback_from") is not None,
    )


def configured_gates(opts: EvalOptions, settings: Settings) -> Gates | None:
    """The gates of the experiment under evaluation in the routes file (`opts.routes`, else the
    configured one), or None when no experiment has the variants. A gateway run reads the
    routes file only when one is named."""
    if opts.gateway_url is not None and opts.routes is None:
        return None
    try:
        config = load_routes(opts.routes or settings.routes)
    except RoutesFileError as exc:
        raise EvalError(str(exc)) from None
    names = [*opts.variants, *(opts.sweep or ())]
    try:
        return pick_experiment(config, opts.experiment, names).gates
    except EvalError:
        return None


def evaluate(opts: EvalOptions, settings: Settings) -> EvalRun:
    """`run_eval` to completion; an unreadable routes file or local model is an EvalError."""
    try:
        return asyncio.run(run_eval(opts, settings))
    except (RoutesFileError, LocalModelError) as exc:
        raise EvalError(str(exc)) from None
