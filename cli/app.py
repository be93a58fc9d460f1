"""The `triage-gateway` typer app and what its commands share: the one `Settings` of an
invocation, the error exit, a Redis connection, and the parsing of option strings.

Nothing here imports training or eval: each command imports what it needs inside its body,
so `serve` never loads them."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import click
import typer

if TYPE_CHECKING:
    from gateway.infra.settings import Settings

app = typer.Typer(
    name="triage-gateway",
    help="A/B routing inference gateway for LLM triage of app-store reviews.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("triage_gateway")
T = TypeVar("T")

_SETTINGS_KEY = "triage_gateway.settings"

ExperimentOption = Annotated[str, typer.Option(help="Experiment name.")]
"""`--experiment NAME` of the commands that act on one experiment."""
RoutesOption = Annotated[Path | None, typer.Option(help="Routes file [GATEWAY_ROUTES].")]
"""`--routes FILE` of the commands that read the routes (see `store_settings`)."""


def fail(message: str) -> typer.Exit:
    """Print `error: message` on stderr; the exit (code 2) for the caller to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def get_settings(**overrides: Any) -> Settings:
    """The invocation's `Settings`: built from the environment (and `.env`) on the first call,
    with the options given as `overrides` (None values are ignored), then reused.

    Commands call it once and pass the result down; nothing else in the CLI reads the
    environment."""
    from gateway.infra.settings import Settings

    given = {k: v for k, v in overrides.items() if v is not None}
    ctx = click.get_current_context(silent=True)
    cached = ctx.meta.get(_SETTINGS_KEY) if ctx is not None else None
    if isinstance(cached, Settings):
        if given:
            raise RuntimeError("the settings of this invocation are already built")
        return cached
    built = Settings(**given)
    if ctx is not None:
        ctx.meta[_SETTINGS_KEY] = built
    return built


_STORE_KEY = "triage_gateway.store_settings"


def store_settings(**overrides: Any) -> Settings:
    """`get_settings`, pointed at the store every command shares with the running gateway:
    GATEWAY_REDIS_URL, else the embedded Redis a gateway runs for the data directory, else one
    started for this command and stopped when it ends (`redis_client.open_store`). Says on
    stderr which store it is. Without --routes / GATEWAY_ROUTES, the routes are those the
    gateway recorded at its start (`served_routes`), so the CLI sees its experiments."""
    from pydantic import SecretStr

    from gateway.infra.redis_client import open_store

    ctx = click.get_current_context(silent=True)
    cached = ctx.meta.get(_STORE_KEY) if ctx is not None else None
    if cached is not None:
        if overrides and any(v is not None for v in overrides.values()):
            raise RuntimeError("the settings of this invocation are already built")
        return cached  # type: ignore[no-any-return]
    config = get_settings(**overrides)
    try:
        store = open_store(config)
    except (OSError, RuntimeError) as exc:
        raise fail(f"cannot start the embedded redis ({exc})") from None
    if ctx is not None:
        ctx.call_on_close(store.close)
    else:
        import atexit

        atexit.register(store.close)
    typer.echo(f"store: {store.description}", err=True)
    config = config.model_copy(update={"redis_url": SecretStr(store.url)})
    if config.routes is None:
        config = _served_routes(config)
    if ctx is not None:
        ctx.meta[_STORE_KEY] = config
        ctx.meta[_SETTINGS_KEY] = config
    return config


def _served_routes(config: Settings) -> Settings:
    from gateway.experiments import served_routes

    served = with_redis(config, served_routes.read)
    if served is None:
        typer.echo("routes: none recorded in this store: the packaged default", err=True)
        return config
    path, copied = served_routes.routes_path(served, config.data_dir)
    note = f"copy of {served.path}, changed or missing here" if copied else "the gateway's"
    typer.echo(f"routes: {path} ({note}, recorded at the gateway's start)", err=True)
    return config.model_copy(update={"routes": path})


def with_redis(config: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(redis)` against the gateway's Redis (the configured URL, or the embedded one
    under the data directory); gateway errors and Redis failures end the command."""
    from gateway.errors import GatewayError
    from gateway.infra.redis_client import run_with_redis

    try:
        return run_with_redis(config, work)
    except GatewayError as exc:
        raise fail(exc.detail) from None


_DURATION = re.compile(r"(?P<number>[+-]?[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(?P<unit>ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """`30m`, `90s`, `0.5s`, `250ms`, `2h` or plain seconds, as seconds (ValueError if not)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (e.g. 30m, 90s, 500ms)")
    seconds = float(match["number"]) * _UNIT_SECONDS[match["unit"]]
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return seconds


def parse_names(text: str) -> list[str]:
    """A comma-separated list, blanks dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]
