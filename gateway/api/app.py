"""`create_app(settings)`: the FastAPI application and its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway import __version__
from gateway.api.body import add_schemas
from gateway.api.errors import install_error_handlers
from gateway.api.middleware import GatewayMiddleware
from gateway.api.routes import admin, classify, experiments, health, openai_compat, pairs, review
from gateway.infra.settings import Settings
from gateway.infra.state import build_state

log = logging.getLogger("triage_gateway")


def create_app(settings: Settings) -> FastAPI:
    """Build the app; nothing is started until the lifespan runs."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await build_state(settings)
        app.state.gateway = state
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(
        title="triage-gateway",
        version=__version__,
        summary="A/B routing inference gateway for LLM triage of app-store reviews",
        lifespan=lifespan,
    )
    app.state.api_keys = [k.get_secret_value().encode() for k in settings.api_keys]
    app.state.admin_keys = [k.get_secret_value().encode() for k in settings.admin_keys]
    app.state.reviewer_keys = [k.get_secret_value().encode() for k in settings.reviewer_keys]
    install_error_handlers(app)
    add_schemas(app)
    for module in (health, classify, openai_compat, admin, experiments, pairs, review):
        app.include_router(module.router)
    app.add_middleware(
        GatewayMiddleware,
        max_body_bytes=settings.max_body_bytes,
        access_log_enabled=settings.access_log,
    )
    return app
