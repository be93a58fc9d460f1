"""`create_app(settings)`: the FastAPI application and its lifespan.

Every entry point builds the app here, so the bind/auth check
(`gateway.infra.security.check_bind`) runs for each of them; in keyless mode the
`KeylessGuard` middleware refuses foreign Host and Origin headers and non-loopback server
addresses. X-Forwarded-Proto/-For are believed only from GATEWAY_TRUSTED_PROXIES (uvicorn's
proxy-headers middleware, applied here for every entry point)."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from gateway import __version__
from gateway.api.body import add_schemas
from gateway.api.errors import install_error_handlers
from gateway.api.fastpath import FastRoutes
from gateway.api.middleware import GatewayMiddleware, KeylessGuard
from gateway.api.routes import (
    admin,
    classify,
    docs,
    experiments,
    experiments_page,
    health,
    openai_compat,
    pairs,
    review,
)
from gateway.infra.embedded_redis import EmbeddedRedis
from gateway.infra.logs import flush_logs
from gateway.infra.security import check_bind
from gateway.infra.settings import Settings
from gateway.infra.state import build_state

log = logging.getLogger("triage_gateway")


GC_THRESHOLDS = (20_000, 20, 20)
"""The collector's thresholds while serving (Python's default is 700, 10, 10): a request
allocates a few thousand container objects that die with it, so the young generation is
collected every few requests instead of several times a request."""


def settle_heap() -> None:
    """Once started: collect, move every object alive now (modules, the app, the local models'
    tables) to the collector's permanent generation, so no collection walks them again, and
    collect less often; then turn the collector on (`serve` starts with it off). In an ad-hoc
    wrk run on one core (`make bench` measures it), this took the p99 at c=64 from
    105-111 ms to 64-67 ms (the upstream answers in 50 ms) and the throughput at c=256 from
    1,686 to 2,472-2,536 req/s."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    gc.enable()  # `serve` imports and builds the app with the collector off


def create_app(settings: Settings, *, launched_redis: EmbeddedRedis | None = None) -> FastAPI:
    """Build the app; nothing is started until the lifespan runs (which waits for
    `launched_redis`, an embedded Redis `serve` launched early, and owns it from then). Raises
    `InsecureBindError` for keyless settings on a non-loopback GATEWAY_HOST."""
    check_bind(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await build_state(settings, launched_redis)
        app.state.gateway = state
        settle_heap()
        try:
            yield
        finally:
            await state.close()
            flush_logs()  # the access lines of the last requests

    app = FastAPI(
        title="triage-gateway",
        version=__version__,
        summary="A/B routing inference gateway for LLM triage of app-store reviews",
        lifespan=lifespan,
        openapi_url=None,  # served by routes.docs, behind a key unless GATEWAY_PUBLIC_DOCS
        docs_url=None,
        redoc_url=None,
        # FastAPI's OpenTelemetry hooks are off: otherwise every request asks the global
        # tracer, meter and logger providers whether they are configured (~5% of the CPU of a
        # classify call); the gateway exports Prometheus metrics and JSON logs instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.public_docs = settings.public_docs
    app.state.api_keys = [k.get_secret_value().encode() for k in settings.api_keys]
    app.state.admin_keys = [k.get_secret_value().encode() for k in settings.admin_keys]
    app.state.reviewer_keys = [k.get_secret_value().encode() for k in settings.reviewer_keys]
    install_error_handlers(app)
    add_schemas(app)
    routers = (health, classify, openai_compat, admin, experiments, pairs, review, docs)
    for module in (*routers, experiments_page):
        app.include_router(module.router)
    # The classify traffic skips FastAPI's router and dependency solver (the innermost
    # middleware: the ones below still see every request); the routes stay in the OpenAPI doc.
    hot = [*classify.router.routes, *openai_compat.router.routes]
    app.add_middleware(
        FastRoutes,
        routes=[r for r in hot if isinstance(r, APIRoute)],
        handlers=app.exception_handlers,
    )
    if not settings.api_keys:
        app.add_middleware(KeylessGuard, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(
        GatewayMiddleware,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
        access_log_enabled=settings.access_log,
    )
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app
