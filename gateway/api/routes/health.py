"""Health checks (no auth), the routes view and /metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api.deps import ApiKey, State, key_matches
from gateway.api.schemas import ExperimentView, RoutesView, VariantView
from gateway.errors import AuthError

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=None)
async def healthz(state: State) -> JSONResponse:
    """Liveness: the process answers, and its embedded Redis (if any) has not been given up
    on after repeated failed restarts (then only a restart of the process helps)."""
    if state.embedded is not None and state.embedded.failed:
        body = {"status": "failed", "detail": "embedded redis could not be restarted"}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/readyz", response_model=None)
async def readyz(state: State) -> JSONResponse:
    """Readiness: Redis answers (pairs and corrections need it). An embedded Redis that died
    is restarted by its supervisor: not ready meanwhile, ready again once it answers."""
    try:
        await asyncio.wait_for(state.redis.ping(), timeout=1.0)
    except Exception as exc:
        body = {"status": "unavailable", "detail": f"redis unreachable ({type(exc).__name__})"}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/v1/routes", dependencies=[ApiKey], tags=["routes"])
async def routes(state: State) -> RoutesView:
    """Experiments, their variants and the weights in force now."""
    views = []
    for exp in state.table.experiments():  # with the variants added at run time
        weights = state.table.weights(exp.name)
        total = sum(weights.values()) or 1.0
        shadow = exp.shadow.variant if exp.shadow else None
        variants = [
            VariantView(
                name=v.name,
                model=v.model,
                weight=weights.get(v.name, 0.0),
                share=round(weights.get(v.name, 0.0) / total, 6),
                shadow=v.name == shadow,
            )
            for v in exp.variants
        ]
        views.append(
            ExperimentView(
                name=exp.name,
                salt_version=state.table.versions[exp.name],
                variants=variants,
                fallback=list(exp.fallback),
                shadow_sample_rate=exp.shadow.sample_rate if exp.shadow else None,
                categories=list(exp.taxonomy.categories),
                urgencies=list(exp.taxonomy.urgencies),
            )
        )
    return RoutesView(default_experiment=state.routes.default.name, experiments=views)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, state: State) -> Response:
    if state.settings.metrics_auth:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or None
        if not key_matches(token, request.app.state.api_keys):
            raise AuthError("missing or invalid API key")
    from gateway.infra.metrics import scrape_registry

    return Response(generate_latest(scrape_registry(state.metrics)), media_type=CONTENT_TYPE_LATEST)
