"""ASGI entry for `uvicorn --workers N` (and other servers): settings from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.api.app import create_app
from gateway.infra.logs import configure_logging
from gateway.infra.settings import Settings


def app_factory() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
