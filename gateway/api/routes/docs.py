"""The API description: /openapi.json, /docs (Swagger UI) and /redoc. They need an API key like
every other route but health, unless GATEWAY_PUBLIC_DOCS=true opens them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from gateway.api.deps import DocsKey
from gateway.jsontypes import JsonObject

router = APIRouter(include_in_schema=False, dependencies=[DocsKey])


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    schema: JsonObject = request.app.openapi()
    return JSONResponse(schema)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} - docs")


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title=f"{request.app.title} - ReDoc")
