"""ASGI entry for `uvicorn --workers N` (and other servers): settings from the environment.

`create_app` makes the same bind/auth check as `serve` (a keyless GATEWAY_HOST that is not
loopback is refused); the factory cannot see uvicorn's `--host`, so in keyless mode the app
also refuses requests that arrive on a non-loopback server address."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.api.app import create_app
from gateway.infra.logs import configure_logging
from gateway.infra.settings import Settings


def app_factory() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
