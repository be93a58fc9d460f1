"""The `triage-gateway` command. The one composition root that reaches the offline packages:
each command imports what it needs inside its body, so `serve` never loads training or eval."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

app = typer.Typer(
    name="triage-gateway",
    help="A/B routing inference gateway for LLM triage of app-store reviews.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("triage_gateway")
T = TypeVar("T")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind [GATEWAY_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [GATEWAY_PORT].")] = None,
    routes: Annotated[
        Path | None, typer.Option(help="Routes file (YAML) [GATEWAY_ROUTES].")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [GATEWAY_WORKERS].")] = None,
) -> None:
    """Run the gateway (uvicorn)."""
    import uvicorn

    from gateway.experiments.config import RoutesFileError, load_routes
    from gateway.infra.logs import configure_logging
    from gateway.infra.settings import Settings

    overrides = {
        k: v
        for k, v in {"host": host, "port": port, "routes": routes, "workers": workers}.items()
        if v is not None
    }
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings.log_level)
    if not settings.api_keys:
        if not settings.is_loopback():
            raise _fail(
                f"refusing to bind {settings.host} with no GATEWAY_API_KEYS: anyone could call it"
            )
        log.warning("no GATEWAY_API_KEYS configured: serving loopback only, without auth")
    try:
        load_routes(settings.routes)
    except RoutesFileError as exc:
        raise _fail(str(exc)) from None
    common: dict[str, Any] = {
        "proxy_headers": False,  # the gateway never uses the client address
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
        "timeout_graceful_shutdown": 20,
    }
    if settings.workers == 1:
        from gateway.api.app import create_app

        uvicorn.run(create_app(settings), **common)
        return
    _run_workers(settings, common)


def _run_workers(settings: object, common: dict[str, Any]) -> None:
    """Several processes: one shared Redis and one metrics directory for all of them."""
    import uvicorn

    from gateway.infra.settings import Settings
    from gateway.infra.state import redis_url

    assert isinstance(settings, Settings)
    url, embedded = redis_url(settings)
    os.environ["GATEWAY_REDIS_URL"] = url
    for field in ("host", "port", "routes", "data_dir"):
        value = getattr(settings, field)
        if value is not None:
            os.environ[f"GATEWAY_{field.upper()}"] = str(value)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        prom_dir = settings.data_dir / "prometheus-multiproc"
        shutil.rmtree(prom_dir, ignore_errors=True)
        prom_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom_dir.resolve())
    try:
        uvicorn.run(
            "gateway.api.asgi:app_factory", factory=True, workers=settings.workers, **common
        )
    finally:
        if embedded is not None:
            embedded.stop()


@app.command()
def simulate(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 18001,
    host: Annotated[str, typer.Option(help="Address (loopback by default).")] = "127.0.0.1",
    latency_ms: Annotated[float, typer.Option(help="Mean answer latency.")] = 50.0,
    jitter_ms: Annotated[float, typer.Option(help="Extra random latency (mean).")] = 0.0,
    error_rate: Annotated[float, typer.Option(help="Share of HTTP 500 answers.")] = 0.0,
    rate_limit_rate: Annotated[float, typer.Option(help="Share of HTTP 429 answers.")] = 0.0,
    timeout_rate: Annotated[float, typer.Option(help="Share of requests that hang.")] = 0.0,
    invalid_rate: Annotated[
        float, typer.Option(help="Share of broken or schema-breaking JSON answers.")
    ] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    require_key: Annotated[bool, typer.Option(help="Answer 401 without a bearer key.")] = False,
) -> None:
    """Run the OpenAI/OpenRouter-compatible upstream simulator (for tests and demos)."""
    from devtools.simulator.server import SimulatorConfig, run_simulator

    config = SimulatorConfig(
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        error_rate=error_rate,
        rate_limit_rate=rate_limit_rate,
        timeout_rate=timeout_rate,
        invalid_rate=invalid_rate,
        seed=seed,
        require_key=require_key,
    )
    typer.echo(f"simulator on http://{host}:{port}/v1", err=True)
    run_simulator(host, port, config)


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="Directory for train.jsonl, val.jsonl, stats.json.")],
    since: Annotated[
        str | None, typer.Option(help="Only pairs logged since (ISO 8601, UTC if naive).")
    ] = None,
    experiment: Annotated[str | None, typer.Option(help="Only this experiment.")] = None,
    split: Annotated[float, typer.Option(help="Train share; the rest is val.")] = 0.8,
    balance: Annotated[bool, typer.Option(help="Cap each category at 2x the smallest.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed of split and balance.")] = 42,
    include_confirmed: Annotated[
        bool, typer.Option(help="Keep corrections that confirm the model's answer.")
    ] = True,
) -> None:
    """Export corrected pairs as chat fine-tuning JSONL (OpenAI / Together format)."""
    from gateway.infra.settings import Settings
    from training.export import run_export

    options = {"since": since, "experiment": experiment, "split": split, "balance": balance}
    try:
        run_export(Settings(), out, seed=seed, include_confirmed=include_confirmed, **options)
    except ValueError as exc:
        raise _fail(str(exc)) from None


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Labelled reviews, JSONL or CSV.")],
    corrected_by: Annotated[str, typer.Option(help="Name stored on the corrections.")] = "import",
) -> None:
    """Import labelled reviews as corrected pairs (they join the next export)."""
    from gateway.infra.settings import Settings
    from training.export import run_import

    try:
        count = run_import(Settings(), file, corrected_by)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"imported {count} labelled reviews from {file}")


@app.command("eval")
def eval_(
    data: Annotated[Path, typer.Option(help="Labelled set: JSONL, CSV, chat val.jsonl or .arff.")],
    out: Annotated[Path, typer.Option(help="Directory for summary.json and report.html.")],
    variants: Annotated[
        str, typer.Option(help="Variants to evaluate, comma-separated (gateway mode: filter).")
    ] = "",
    control: Annotated[str | None, typer.Option(help="Control variant (default: control).")] = None,
    routes: Annotated[Path | None, typer.Option(help="Routes file [GATEWAY_ROUTES].")] = None,
    experiment: Annotated[str | None, typer.Option(help="Experiment of the variants.")] = None,
    gateway: Annotated[
        str | None, typer.Option(help="Evaluate a running gateway at this URL instead.")
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="API key for --gateway.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Calls in flight.")] = 8,
    limit: Annotated[int | None, typer.Option(min=1, help="Seeded sample of N rows.")] = None,
    gate_margin: Annotated[
        float | None, typer.Option(help="Max accuracy loss vs control [0.02].")
    ] = None,
    gate_validity: Annotated[float | None, typer.Option(help="Min validity rate [0.995].")] = None,
    gate_p95_ms: Annotated[float | None, typer.Option(help="Max p95 latency (ms).")] = None,
    gate_cost_per_review: Annotated[
        float | None, typer.Option(help="Max cost per review (USD).")
    ] = None,
    sweep_cascade: Annotated[
        str | None, typer.Option(help="CHEAP,STRONG: sweep the cascade threshold.")
    ] = None,
    target_accuracy: Annotated[
        float | None, typer.Option(help="Cascade target (default: strong's accuracy).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Run variants over a labelled set; exit 1 when a gate fails."""
    from eval.offline import main as run_eval_command

    gates = {
        "accuracy_margin": gate_margin,
        "min_validity": gate_validity,
        "max_p95_ms": gate_p95_ms,
        "max_cost_per_review_usd": gate_cost_per_review,
    }
    try:
        code = run_eval_command(
            data=data, out=out, variants=variants, control=control, routes=routes,
            experiment=experiment, gateway=gateway, api_key=api_key, concurrency=concurrency,
            limit=limit, gates=gates, sweep=sweep_cascade, target_accuracy=target_accuracy,
            progress=progress,
        )  # fmt: skip
    except ValueError as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


@app.command()
def report(
    experiment: Annotated[str, typer.Option(help="Experiment name.")],
    mde: Annotated[float, typer.Option(help="Difference to detect (accuracy, 0..1).")] = 0.02,
    control: Annotated[str | None, typer.Option(help="Control variant.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """Online A/B report of an experiment from pairs and corrections in Redis."""
    from eval.online import main as run_report_command

    try:
        run_report_command(experiment, mde=mde, control=control, as_json=json_out)
    except ValueError as exc:
        raise _fail(str(exc)) from None


@app.command()
def promote(
    experiment: Annotated[str, typer.Option(help="Experiment name.")],
    candidate: Annotated[str, typer.Option(help="Variant to promote.")],
    steps: Annotated[
        str, typer.Option(help="Candidate shares in %, increasing.")
    ] = "1,5,25,50,100",
    hold: Annotated[str, typer.Option(help="Hold per step: 30m, 90s, 2h.")] = "30m",
    interval: Annotated[str, typer.Option(help="Evaluate the gates this often.")] = "30s",
    gateway: Annotated[
        str | None, typer.Option(help="Gateway to scrape /metrics from [host:port].")
    ] = None,
    prometheus: Annotated[
        str | None, typer.Option(help="Prometheus URL (sums every replica).")
    ] = None,
    routes: Annotated[Path | None, typer.Option(help="Routes file [GATEWAY_ROUTES].")] = None,
    control: Annotated[str | None, typer.Option(help="Control for accuracy.")] = None,
    max_error_rate: Annotated[float, typer.Option(help="Max candidate error rate.")] = 0.02,
    max_validation_failure_rate: Annotated[
        float, typer.Option(help="Max invalid answers per model call.")
    ] = 0.05,
    max_p95_ms: Annotated[float | None, typer.Option(help="Max p95 latency (ms).")] = None,
    min_accuracy_delta: Annotated[
        float, typer.Option(help="Min online accuracy minus control's.")
    ] = -0.02,
    min_requests: Annotated[int, typer.Option(help="Requests before rates count.")] = 5,
    min_corrected: Annotated[int, typer.Option(help="Corrections per arm for accuracy.")] = 30,
) -> None:
    """Raise a candidate's share step by step; roll back and exit 1 on a breach."""
    from eval.promotion import main as run_promote_command

    limits = {
        "max_error_rate": max_error_rate,
        "max_validation_failure_rate": max_validation_failure_rate,
        "max_p95_ms": max_p95_ms,
        "min_accuracy_delta": min_accuracy_delta,
        "min_requests": min_requests,
        "min_corrected": min_corrected,
    }
    try:
        code = run_promote_command(
            experiment=experiment, candidate=candidate, steps=steps, hold=hold,
            interval=interval, gateway=gateway, prometheus=prometheus, routes=routes,
            control=control, limits=limits,
        )  # fmt: skip
    except ValueError as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


@app.command()
def rollback(
    experiment: Annotated[str, typer.Option(help="Experiment name.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "manual rollback",
    routes: Annotated[Path | None, typer.Option(help="Routes file [GATEWAY_ROUTES].")] = None,
) -> None:
    """Restore the weights in force before an experiment's latest weight change."""
    from eval.promotion import rollback_main

    try:
        rollback_main(experiment, reason=reason, routes=routes)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _with_redis(work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(redis)` against the gateway's Redis (GATEWAY_REDIS_URL, or the embedded one
    under the data directory); gateway errors and Redis failures end the command."""
    import asyncio

    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    from gateway.errors import GatewayError
    from gateway.infra.settings import Settings
    from gateway.infra.state import redis_url

    async def run() -> T:
        url, embedded = redis_url(Settings())
        client = aioredis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
        try:
            return await work(client)
        finally:
            await client.aclose()
            if embedded is not None:
                embedded.stop()

    try:
        return asyncio.run(run())
    except GatewayError as exc:
        raise _fail(exc.detail) from None
    except (RedisError, OSError) as exc:
        raise _fail(f"redis unavailable ({type(exc).__name__}: {exc})") from None


@app.command()
def finetune(
    provider: Annotated[str, typer.Option(help="openai or together.")],
    base: Annotated[str, typer.Option(help="Base model to fine-tune.")],
    train: Annotated[Path, typer.Option(help="Training data, chat JSONL (from `export`).")],
    val: Annotated[Path | None, typer.Option(help="Validation data, chat JSONL.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs.")] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="OpenAI: learning-rate multiplier; Together: learning rate."),
    ] = None,
    lora_rank: Annotated[int | None, typer.Option(min=1, help="LoRA rank (Together).")] = None,
    base_url: Annotated[
        str | None, typer.Option(help="API base URL (default: the provider's).")
    ] = None,
    suffix: Annotated[str | None, typer.Option(help="Suffix of the model name.")] = None,
    name: Annotated[
        str | None, typer.Option(help="Registry name (default: the fine-tuned model id).")
    ] = None,
    price_in: Annotated[float | None, typer.Option(help="USD per 1M input tokens.")] = None,
    price_out: Annotated[float | None, typer.Option(help="USD per 1M output tokens.")] = None,
    poll_s: Annotated[float, typer.Option(min=0.1, help="Seconds between polls.")] = 10.0,
    timeout_s: Annotated[float, typer.Option(help="Give up following after this.")] = 7200.0,
    experiment: Annotated[
        str | None, typer.Option(help="Check answers against this experiment's taxonomy.")
    ] = None,
    validate: Annotated[bool, typer.Option(help="Check the files before uploading.")] = True,
) -> None:
    """Fine-tune a hosted model on exported data, follow the job, register the model.

    The API key comes from OPENAI_API_KEY or TOGETHER_API_KEY."""
    from gateway.experiments.config import Price, RoutesFileError, load_routes
    from gateway.infra.settings import Settings
    from training.finetune import PROVIDERS, FinetuneError, FinetuneOptions, finetune_and_register

    if provider not in PROVIDERS:
        raise _fail(f"--provider must be one of {sorted(PROVIDERS)}")
    env_key = {"openai": "OPENAI_API_KEY", "together": "TOGETHER_API_KEY"}[provider]
    api_key = os.environ.get(env_key, "").strip()
    if not api_key:
        raise _fail(f"set {env_key} (the {provider} API key)")
    if (price_in is None) != (price_out is None):
        raise _fail("give both --price-in and --price-out, or neither")
    settings = Settings()
    try:
        routes = load_routes(settings.routes)
        taxonomy = (routes.experiment(experiment) if experiment else routes.default).taxonomy
    except RoutesFileError as exc:
        raise _fail(str(exc)) from None
    except KeyError:
        raise _fail(f"unknown experiment {experiment!r} in the routes file") from None
    opts = FinetuneOptions(
        provider=provider,  # type: ignore[arg-type]  # checked against PROVIDERS above
        base_model=base,
        train=train,
        val=val,
        epochs=epochs,
        learning_rate=lr,
        lora_rank=lora_rank,
        suffix=suffix,
        base_url=base_url,
        name=name,
        price=Price(input_per_1m=price_in, output_per_1m=price_out)
        if price_in is not None and price_out is not None
        else None,
        poll_s=poll_s,
        timeout_s=timeout_s,
        validate=validate,
        taxonomy=taxonomy,
    )
    try:
        finetune_and_register(settings, opts, api_key)
    except FinetuneError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(code=exc.exit_code) from None


models_app = typer.Typer(
    help="The model registry: fine-tuned and self-hosted models, and their deployment.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """Every registered model, oldest first."""
    from rich.console import Console

    from gateway.experiments import model_registry
    from training.finetune import registry_table

    records = _with_redis(model_registry.list_models)
    Console().print(registry_table(records))


@models_app.command("show")
def models_show(name: Annotated[str, typer.Argument(help="Registry name.")]) -> None:
    """One registered model, every field."""
    from rich.console import Console

    from gateway.experiments import model_registry
    from training.finetune import record_table

    record = _with_redis(lambda r: model_registry.get_model(r, name))
    Console().print(record_table(record))


@models_app.command("add")
def models_add(
    name: Annotated[str, typer.Argument(help="Registry name.")],
    kind: Annotated[str, typer.Option(help="hosted, self-hosted or local.")] = "self-hosted",
    model: Annotated[
        str | None, typer.Option(help="Model id at the endpoint (default: the name).")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL (hosted, self-hosted).")
    ] = None,
    path: Annotated[
        str | None, typer.Option(help="Model or adapter directory (local; optional otherwise).")
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="Provider (also the provider key name to send).")
    ] = None,
    base_model: Annotated[str | None, typer.Option(help="Base model.")] = None,
    data: Annotated[
        list[Path] | None,
        typer.Option(help="Training data files, hashed in order (train, then val)."),
    ] = None,
    price_in: Annotated[float | None, typer.Option(help="USD per 1M input tokens.")] = None,
    price_out: Annotated[float | None, typer.Option(help="USD per 1M output tokens.")] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE (repeat for several).")
    ] = None,
    replace: Annotated[bool, typer.Option(help="Overwrite a record of the same name.")] = False,
) -> None:
    """Register a model by hand (a vLLM-served LoRA adapter, a local model, a hosted one)."""
    from pydantic import ValidationError

    from gateway.experiments import model_registry
    from training.finetune import data_hash

    metrics: dict[str, float | str] = {}
    for item in metric or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _fail(f"--metric {item!r}: expected KEY=VALUE")
        try:
            metrics[key] = float(value)
        except ValueError:
            metrics[key] = value
    if (price_in is None) != (price_out is None):
        raise _fail("give both --price-in and --price-out, or neither")
    price = {"input_per_1m": price_in, "output_per_1m": price_out} if price_in is not None else None
    try:
        record = model_registry.ModelRecord.model_validate(
            {
                "name": name,
                "kind": kind,
                "model": model,
                "endpoint": endpoint,
                "path": path,
                "provider": provider,
                "base_model": base_model,
                "training_data_hash": data_hash(data) if data else None,
                "metrics": metrics,
                "price": price,
            }
        )
    except ValidationError as exc:
        raise _fail("; ".join(e["msg"] for e in exc.errors())) from None
    except OSError as exc:
        raise _fail(f"cannot read training data ({exc})") from None
    _with_redis(lambda r: model_registry.register(r, record, replace=replace))
    typer.echo(f"registered {name!r} ({kind}, status candidate)")


@models_app.command("retire")
def models_retire(name: Annotated[str, typer.Argument(help="Registry name.")]) -> None:
    """Mark a model retired: kept for the record, no longer deployable. Variants already made
    from it keep serving until their weight is set to 0."""
    from gateway.experiments import model_registry

    _with_redis(lambda r: model_registry.retire(r, name))
    typer.echo(f"retired {name!r}")


@models_app.command("deploy")
def models_deploy(
    name: Annotated[str, typer.Argument(help="Registry name.")],
    experiment: Annotated[str, typer.Option(help="Experiment to add the variant to.")],
    as_variant: Annotated[str, typer.Option(help="Variant name in the experiment.")],
    shadow: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Make it the experiment's shadow at this sample rate."),
    ] = None,
    weight: Annotated[float, typer.Option(min=0, help="Starting weight (0: no traffic).")] = 0.0,
    api_base: Annotated[
        str | None, typer.Option(help="Endpoint override (default: the record's).")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="Provider key name (default: the record's provider).")
    ] = None,
    timeout_s: Annotated[float | None, typer.Option(help="Upstream timeout.")] = None,
) -> None:
    """Add a registered model to a running experiment as a variant (weight 0, or as its
    shadow), on every replica within seconds, without a restart. The experiment is checked
    against the routes file in GATEWAY_ROUTES (the one the gateway runs)."""
    import getpass
    import time

    import orjson

    from gateway.experiments import model_registry
    from gateway.experiments.config import RoutesFileError, load_routes
    from gateway.experiments.store import store_runtime_variant
    from gateway.experiments.table import RouteTable, RuntimeVariant
    from gateway.infra import redis_keys
    from gateway.infra.settings import Settings

    try:
        table = RouteTable(load_routes(Settings().routes))
    except RoutesFileError as exc:
        raise _fail(str(exc)) from None

    async def work(redis: Any) -> int:
        record = await model_registry.get_model(redis, name)
        variant = model_registry.to_variant(
            record,
            as_variant,
            weight=weight,
            api_base=api_base,
            api_key=api_key,
            timeout_s=timeout_s,
        )
        runtime = RuntimeVariant(
            variant=variant,
            shadow_sample_rate=shadow,
            registry_name=name,
            actor=f"cli:{getpass.getuser()}",
            ts=time.time(),
        )
        stored = await redis.hgetall(redis_keys.runtime_variants(experiment))
        current = {
            k.decode(): RuntimeVariant.model_validate(orjson.loads(v)) for k, v in stored.items()
        }
        table.with_runtime(experiment, {**current, as_variant: runtime})
        version = await store_runtime_variant(redis, experiment, runtime)
        if shadow is not None:
            await model_registry.set_status(redis, name, "shadow")
        return version

    version = _with_redis(work)
    role = f"shadow at {shadow:g}" if shadow is not None else f"weight {weight:g}"
    typer.echo(
        f"deployed {name!r} as variant {as_variant!r} of {experiment!r} ({role}), variants "
        f"version {version}; replicas pick it up within GATEWAY_WEIGHTS_POLL_S"
    )


@app.command("train-lora")
def train_lora(
    base: Annotated[str, typer.Option(help="Base model: a local directory (or a hub id).")],
    train: Annotated[Path, typer.Option(help="Training data, chat JSONL (from `export`).")],
    out: Annotated[Path, typer.Option(help="Directory for the adapter.")],
    val: Annotated[Path | None, typer.Option(help="Validation data, chat JSONL.")] = None,
    steps: Annotated[int, typer.Option(min=1, help="Optimizer steps.")] = 200,
    rank: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 16,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 2e-4,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per device step.")] = 4,
    max_length: Annotated[int, typer.Option(min=16, help="Tokens per example.")] = 1024,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    bf16: Annotated[bool, typer.Option(help="bfloat16 mixed precision (GPU).")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Train a LoRA adapter for self-hosting (vLLM --enable-lora); needs the `lora` extra."""
    try:
        from training.lora import LoraError, LoraOptions, train_lora_cli
    except ImportError as exc:
        raise _fail(
            f"the `lora` extra is not installed ({exc}): pip install -e '.[lora]'"
        ) from None
    if device not in ("auto", "cpu", "cuda"):
        raise _fail("--device must be auto, cpu or cuda")
    opts = LoraOptions(
        base=base,
        train=train,
        val=val,
        out=out,
        steps=steps,
        rank=rank,
        learning_rate=lr,
        batch_size=batch_size,
        max_length=max_length,
        device=device,  # type: ignore[arg-type]  # checked above
        bf16=bf16,
        seed=seed,
    )
    try:
        train_lora_cli(opts)
    except LoraError as exc:
        raise _fail(str(exc)) from None


@app.command("train-local")
def train_local(
    data: Annotated[
        list[Path],
        typer.Option(help="Labelled data: JSONL/CSV (or chat JSONL, .arff, .xlsx); repeatable."),
    ],
    out: Annotated[Path, typer.Option(help="Model directory to write.")],
    val: Annotated[
        Path | None, typer.Option(help="Held-out labelled set: metrics go in the card.")
    ] = None,
    approach: Annotated[
        str,
        typer.Option(
            help="auto (tfidf; plus minilm when the local-strong extra is installed and --val "
            "is given, keeping the better one on --val within 5 ms p50) | tfidf | minilm."
        ),
    ] = "auto",
    name: Annotated[str | None, typer.Option(help="Model name (default: DIR's name).")] = None,
) -> None:
    """Train a CPU local model (category + urgency, calibrated confidence) into DIR."""
    import json

    from training.data import DataError
    from training.local import APPROACHES, train_local

    if approach not in APPROACHES:
        raise _fail(f"--approach must be one of {', '.join(APPROACHES)}")
    try:
        card = train_local(
            data,
            val,
            out,
            approach=approach,  # type: ignore[arg-type]
            name=name,
            progress=lambda msg: typer.echo(msg, err=True),
        )
    except (DataError, ValueError, RuntimeError, OSError) as exc:
        raise _fail(str(exc)) from None
    summary = {k: card.get(k) for k in ("approach", "format", "metrics_val", "latency_ms")}
    typer.echo(json.dumps({"out": str(out), **summary}, indent=2))


@app.command()
def predict(
    model: Annotated[Path, typer.Option(help="Local model directory (from train-local).")],
    data: Annotated[Path, typer.Option(help="Reviews, JSONL or CSV (labels ignored).")],
    out: Annotated[Path, typer.Option(help="JSONL to write: review_id, triage, confidence.")],
) -> None:
    """Offline batch triage of a file of reviews with a local model."""
    from gateway.local.loader import LocalModelError
    from training.data import DataError
    from training.predict import predict_file

    try:
        count = predict_file(model, data, out)
    except (LocalModelError, DataError, OSError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"wrote {count} predictions to {out}")


def main() -> None:
    app(prog_name="triage-gateway")


if __name__ == "__main__":
    main()
