"""ASGI entry for uvicorn: `uvicorn --factory gateway.api.asgi:app_factory` (and other servers)
builds its settings from the environment; the workers of `triage-gateway serve --workers N`
get the settings `serve` built, bound to the same factory.

`create_app` makes the same bind/auth check as `serve` (a keyless GATEWAY_HOST that is not
loopback is refused); the factory cannot see uvicorn's `--host`, so in keyless mode the app
also refuses requests that arrive on a non-loopback server address.

Importing this module is cheap: a `serve` worker unpickles the factory before it starts
answering the supervisor's health pings, which kill a worker silent for 5 s; the app's own
modules load when the factory runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.infra.logs import configure_logging
from gateway.infra.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI


def app_factory(settings: Settings | None = None) -> FastAPI:
    """The app, built in the process that serves it (logging is per process): for `settings`,
    else for `Settings()` read from the environment."""
    from gateway.api.app import create_app

    if settings is None:
        settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
