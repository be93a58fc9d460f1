"""`finetune` and `models ...`: hosted fine-tuning and the model registry (list, show, add,
retire, deploy into a running experiment)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.app import fail, store_settings, with_redis


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
    from training.finetune import PROVIDERS, FinetuneError, FinetuneOptions, finetune_and_register

    if provider not in PROVIDERS:
        raise fail(f"--provider must be one of {sorted(PROVIDERS)}")
    config = store_settings()
    env_key, secret = {
        "openai": ("OPENAI_API_KEY", config.openai_api_key),
        "together": ("TOGETHER_API_KEY", config.together_api_key),
    }[provider]
    api_key = secret.get_secret_value().strip() if secret is not None else ""
    if not api_key:
        raise fail(f"set {env_key} (the {provider} API key)")
    if (price_in is None) != (price_out is None):
        raise fail("give both --price-in and --price-out, or neither")
    try:
        routes = load_routes(config.routes)
        taxonomy = (routes.experiment(experiment) if experiment else routes.default).taxonomy
    except RoutesFileError as exc:
        raise fail(str(exc)) from None
    except KeyError:
        raise fail(f"unknown experiment {experiment!r} in the routes file") from None
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
        finetune_and_register(config, opts, api_key)
    except FinetuneError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(code=exc.exit_code) from None


models_app = typer.Typer(
    help="The model registry: fine-tuned and self-hosted models, and their deployment.",
    no_args_is_help=True,
)


@models_app.command("list")
def models_list() -> None:
    """Every registered model, oldest first, with its live status: `serving` (all traffic),
    `candidate <share>`, `shadow`, `rolled back` or `retired`, read from the weights and
    variants in force (the routes file in GATEWAY_ROUTES plus Redis), not a stored label."""
    from rich.console import Console

    from gateway.experiments import model_registry
    from gateway.experiments.config import RoutesFileError, load_routes
    from gateway.experiments.store import RouteStore
    from gateway.experiments.table import RouteTable
    from gateway.infra.metrics import GatewayMetrics
    from training.finetune import registry_table

    config = store_settings()
    try:
        routes = load_routes(config.routes)
    except RoutesFileError as exc:
        routes = None
        typer.echo(f"warning: stored labels shown, routes file unusable ({exc})", err=True)

    async def work(redis: Any) -> tuple[list[Any], dict[str, str] | None]:
        records = await model_registry.list_models(redis)
        if routes is None:
            return records, None
        store = RouteStore(redis, RouteTable(routes), GatewayMetrics())
        await store.refresh()
        return records, await model_registry.live_statuses(store, records)

    records, statuses = with_redis(config, work)
    Console(width=160).print(registry_table(records, statuses))


@models_app.command("show")
def models_show(name: Annotated[str, typer.Argument(help="Registry name.")]) -> None:
    """One registered model, every field."""
    from rich.console import Console

    from gateway.experiments import model_registry
    from training.finetune import record_table

    record = with_redis(store_settings(), lambda r: model_registry.get_model(r, name))
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
            raise fail(f"--metric {item!r}: expected KEY=VALUE")
        try:
            metrics[key] = float(value)
        except ValueError:
            metrics[key] = value
    if (price_in is None) != (price_out is None):
        raise fail("give both --price-in and --price-out, or neither")
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
        raise fail("; ".join(e["msg"] for e in exc.errors())) from None
    except OSError as exc:
        raise fail(f"cannot read training data ({exc})") from None
    with_redis(store_settings(), lambda r: model_registry.register(r, record, replace=replace))
    typer.echo(f"registered {name!r} ({kind}, status candidate)")


@models_app.command("retire")
def models_retire(name: Annotated[str, typer.Argument(help="Registry name.")]) -> None:
    """Mark a model retired: kept for the record, no longer deployable. Variants already made
    from it keep serving until their weight is set to 0."""
    from gateway.experiments import model_registry

    with_redis(store_settings(), lambda r: model_registry.retire(r, name))
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

    from gateway.experiments.config import RoutesFileError, load_routes
    from gateway.experiments.deploy import deploy_model
    from gateway.experiments.model_registry import VariantOptions
    from gateway.experiments.store import VariantPut

    config = store_settings()
    try:
        routes = load_routes(config.routes)
    except RoutesFileError as exc:
        raise fail(str(exc)) from None

    async def work(redis: Any) -> VariantPut:
        return await deploy_model(
            redis,
            config,
            routes,
            name=name,
            experiment=experiment,
            as_variant=as_variant,
            actor=f"cli:{getpass.getuser()}",
            weight=weight,
            shadow=shadow,
            options=VariantOptions(api_base=api_base, api_key=api_key, timeout_s=timeout_s),
        )

    result = with_redis(config, work)
    version = result["variants_version"]
    role = f"shadow at {shadow:g}" if shadow is not None else f"weight {weight:g}"
    typer.echo(
        f"deployed {name!r} as variant {as_variant!r} of {experiment!r} ({role}), variants "
        f"version {version}; replicas pick it up within GATEWAY_WEIGHTS_POLL_S"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command()(finetune)
    app.add_typer(models_app, name="models")
