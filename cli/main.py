"""The `triage-gateway` command: the one composition root that reaches the offline packages.

The typer app and the helpers its commands share live in `cli.app`; each command group lives
in its own module and is registered here, in the order `--help` lists them. Every command
imports what it needs inside its body: `serve` loads no eval, and of training only the
baseline's card check (`training.baseline_card`); the baseline builder
(`training.baseline`, scikit-learn) runs in a child process before the server starts."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli import archive, data, evaluate, models, promote, train
from cli.app import app, get_settings, log
from cli.app import fail as _fail

if TYPE_CHECKING:
    from gateway.experiments.config import RoutesConfig
    from gateway.infra.embedded_redis import EmbeddedRedis
    from gateway.infra.settings import Settings

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
    # Start-up builds some 150,000 objects that live as long as the server: the collector
    # would walk them again and again for nothing (about 10% of the import time). The app's
    # lifespan collects once, freezes them and turns it back on (`settle_heap`).
    gc.disable()
    from gateway.experiments.config import RoutesFileError, load_routes
    from gateway.infra.logs import configure_logging
    from gateway.infra.security import InsecureBindError, check_bind

    settings = get_settings(host=host, port=port, routes=routes, workers=workers)
    configure_logging(settings.log_level)
    try:
        check_bind(settings)  # the same check `create_app` makes for every entry point
    except InsecureBindError as exc:
        raise _fail(str(exc)) from None
    _check_port(settings.host, settings.port)  # a busy port is a one-line error, not a trace
    if not settings.api_keys:
        log.warning("no GATEWAY_API_KEYS configured: serving loopback only, without auth")
    try:
        routes_config = load_routes(settings.routes)
    except RoutesFileError as exc:
        raise _fail(str(exc)) from None
    _build_baseline(routes_config, settings)
    launched = _launch_embedded_redis(settings)
    try:
        _run(settings, launched)
    finally:
        if launched is not None:
            launched.stop()  # after the app stopped it, a no-op; before it started, the only stop


def _launch_embedded_redis(settings: Settings) -> EmbeddedRedis | None:
    """Launch the embedded Redis of a one-process gateway without a GATEWAY_REDIS_URL now, so
    that it loads its data while the server's modules import (the app waits for it)."""
    if settings.workers != 1 or settings.redis_url is not None:
        return None
    import signal

    from gateway.infra.embedded_redis import EmbeddedRedis

    embedded = EmbeddedRedis(settings.data_dir / "redis")

    def stop_then_die(signum: int, frame: object) -> None:
        # before uvicorn's own handlers are in place (and when it re-raises the signal after
        # its graceful shutdown): stop the server, then end as the signal would have
        embedded.stop(compact=False)  # at once: the process is going
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop_then_die)
    try:
        return embedded.launch()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        raise _fail(f"cannot start the embedded redis ({exc})") from None


def _run(settings: Settings, launched: EmbeddedRedis | None) -> None:
    import uvicorn

    common: dict[str, Any] = {
        # X-Forwarded-* are handled in the app, from GATEWAY_TRUSTED_PROXIES only (the same
        # for every entry point); uvicorn's own handling would trust 127.0.0.1 by default.
        "proxy_headers": False,
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

        uvicorn.run(create_app(settings, launched_redis=launched), **common)
        return
    gc.enable()  # the supervisor runs no app; each worker settles its own heap
    _run_workers(settings, common)


BASELINE_BUILD_TIMEOUT_S = 600.0  # seconds on one core: a few, on a busy one tens


def _build_baseline(routes: RoutesConfig, settings: Settings) -> None:
    """Put the baseline local model into the data directory when a local variant of `routes`
    uses it and it is missing or stale: a copy of the one the package ships when that is
    current, else a build in a child process (training loads scikit-learn and scipy, about
    150 MB, which the server would otherwise keep for its whole life). The server only loads
    the model."""
    from gateway.local.loader import needs_baseline
    from training.baseline_card import baseline_is_current, install_packaged_baseline

    if not needs_baseline(routes) or baseline_is_current(settings.data_dir):
        return
    try:
        if install_packaged_baseline(settings.data_dir):  # the shipped one: no training
            log.info("installed the shipped baseline local model into %s", settings.data_dir)
            return
    except OSError as exc:
        raise _fail(f"could not build the baseline local model: {exc}") from None
    command = [sys.executable, "-m", "training.baseline", str(settings.data_dir)]
    try:
        build = subprocess.run(
            [*command, "--log-level", settings.log_level],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,  # the failure's message; logs go to our stderr
            text=True,
            check=False,
            timeout=BASELINE_BUILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise _fail(
            "could not build the baseline local model: "
            f"no result within {BASELINE_BUILD_TIMEOUT_S:g} s"
        ) from None
    if build.returncode != 0:
        reason = build.stdout.strip() or f"the build exited with status {build.returncode}"
        raise _fail(f"could not build the baseline local model: {reason}")


def _run_workers(settings: Settings, common: dict[str, Any]) -> None:
    """Several processes, started by uvicorn's own supervisor (`uvicorn.run` takes only an
    import string with several workers): each builds its app from these settings, pickled to
    it, so the command-line options and the Redis URL reach every worker as they are here. One
    shared Redis and one metrics directory for all of them."""
    import contextlib
    import functools

    import uvicorn
    from pydantic import SecretStr
    from uvicorn.supervisors import Multiprocess

    from gateway.api.asgi import app_factory
    from gateway.infra.redis_client import redis_url

    url, embedded = redis_url(settings)
    shared = settings.model_copy(update={"redis_url": SecretStr(url)})
    # prometheus-client reads PROMETHEUS_MULTIPROC_DIR from the environment itself, when a
    # worker first imports it, so this one setting reaches the workers by the environment.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        prom_dir = settings.data_dir / "prometheus-multiproc"
        shutil.rmtree(prom_dir, ignore_errors=True)
        prom_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom_dir.resolve())
    config = uvicorn.Config(
        functools.partial(app_factory, shared), factory=True, workers=settings.workers, **common
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run
            Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        if embedded is not None:
            embedded.stop()


@app.command()
def simulate(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 18001,
    host: Annotated[str, typer.Option(help="Address (loopback by default).")] = "127.0.0.1",
    profiles: Annotated[
        Path | None,
        typer.Option(help="Per-model profiles (YAML), matched before the built-in ones."),
    ] = None,
    latency_scale: Annotated[
        float | None,
        typer.Option(min=0, help="Multiply the profiles' latencies (e.g. 0.05) [file's, or 1]."),
    ] = None,
    labels: Annotated[
        list[Path] | None,
        typer.Option(help="Labelled JSONL (text, category, urgency) known besides the seed set."),
    ] = None,
    seed_labels: Annotated[
        bool, typer.Option(help="Know the labels of the project's seed set.")
    ] = True,
    latency_ms: Annotated[
        float | None,
        typer.Option(help="Fixed latency for every model, replacing the profiles' latencies."),
    ] = None,
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
    """Run the OpenAI/OpenRouter-compatible upstream simulator (for tests and demos).

    Each model answers as its profile says (accuracy on reviews with a known label, latency,
    price, error and invalid-output rates): built in, GPT-4o-like for openai/gpt-4o, a cheaper,
    faster, more accurate fine-tuned model for ids like *-ft or ft:*, and a weak one for
    *-weak; a --profiles file adds or replaces profiles."""
    from devtools.simulator.profiles import ProfileFile, load_labels, load_profile_file
    from devtools.simulator.server import SimulatorConfig, run_simulator, with_profile_file

    try:
        config = SimulatorConfig(
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            error_rate=error_rate,
            rate_limit_rate=rate_limit_rate,
            timeout_rate=timeout_rate,
            invalid_rate=invalid_rate,
            seed=seed,
            require_key=require_key,
            label_files=tuple(str(p) for p in labels or ()),
            seed_labels=seed_labels,
        )
        spec = load_profile_file(profiles) if profiles is not None else ProfileFile()
        config = with_profile_file(config, spec, latency_scale)
        known = load_labels(config.label_files, config.seed_labels)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _check_port(host, port)
    typer.echo(
        f"simulator on http://{host}:{port}/v1 ({len(config.profiles)} profiles, "
        f"{len(known)} labelled reviews, latency scale {config.latency_scale:g})",
        err=True,
    )
    try:
        run_simulator(host, port, config, known)
    except OSError as exc:  # lost a race for the port after the check
        raise _fail(_listen_error(host, port, exc)) from None


def _listen_error(host: str, port: int, exc: OSError) -> str:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is in use"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def _check_port(host: str, port: int) -> None:
    """Exit with a one-line error (code 2) when `host:port` cannot be bound, e.g. in use."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            sock.bind(address)
    except OSError as exc:
        raise _fail(_listen_error(host, port, exc)) from None


for group in (data, evaluate, promote, models, train, archive):
    group.register(app)


def main() -> None:
    app(prog_name="triage-gateway")


if __name__ == "__main__":
    main()
