"""The `triage-gateway` command: the one composition root that reaches the offline packages.

The typer app and the helpers its commands share live in `cli.app`; each command group lives
in its own module and is registered here, in the order `--help` lists them. Every command
imports what it needs inside its body: `serve` loads no eval, and of training only the
baseline builder (`training.baseline`), which runs before the server starts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from cli import data, evaluate, models, promote, train
from cli.app import app, get_settings, log
from cli.app import fail as _fail

__all__ = ["app", "main"]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind [GATEWAY_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [GATEWAY_PORT].")] = None,
    routes: Annotated[
        Path | None, typer.Option(help="Routes file (YAML) [GATEWAY_ROUTES].")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [GATEWAY_WORKERS].")] = None,
) -> None:
    """Run the gateway (uvicorn), first building the baseline local model into the data
    directory when a local variant uses it and it is missing or stale."""
    import uvicorn

    from gateway.experiments.config import RoutesFileError, load_routes
    from gateway.infra.logs import configure_logging

    settings = get_settings(host=host, port=port, routes=routes, workers=workers)
    configure_logging(settings.log_level)
    if not settings.api_keys:
        if not settings.is_loopback():
            raise _fail(
                f"refusing to bind {settings.host} with no GATEWAY_API_KEYS: anyone could call it"
            )
        log.warning("no GATEWAY_API_KEYS configured: serving loopback only, without auth")
    try:
        routes_config = load_routes(settings.routes)
    except RoutesFileError as exc:
        raise _fail(str(exc)) from None
    # The baseline local model is built here, before the server starts; the server only loads it.
    from gateway.local.loader import LocalModelError
    from training.baseline import baseline_for_routes

    try:
        baseline_for_routes(routes_config, settings.data_dir)
    except (LocalModelError, OSError, ValueError) as exc:
        raise _fail(f"could not build the baseline local model: {exc}") from None
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

    from gateway.infra.redis_client import redis_url
    from gateway.infra.settings import Settings

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


for group in (data, evaluate, promote, models, train):
    group.register(app)


def main() -> None:
    app(prog_name="triage-gateway")


if __name__ == "__main__":
    main()
