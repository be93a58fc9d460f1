"""The minimal passthrough of `make bench`: FastAPI + uvicorn + one aiohttp ClientSession,
no logging, no metrics, no validation. It answers `POST /v1/chat/completions` by sending the
request body on to the upstream unchanged, picking one of two deployments 0.9/0.1 as the
gateway does, and returning the upstream's answer. The yardstick the gateway must beat.

    python -m loadtest.passthrough --port 18300 --upstream http://127.0.0.1:18001/v1 --key sk
"""

from __future__ import annotations

import argparse
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import uvicorn
from fastapi import FastAPI, Request, Response

MODELS = (("openrouter/openai/gpt-4o", 0.9), ("openrouter/acme/llama-3-8b-triage-ft", 0.1))


def create_app(upstream: str, key: str) -> FastAPI:
    sessions: list[aiohttp.ClientSession] = []
    url = f"{upstream}/chat/completions"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sessions.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
        try:
            yield
        finally:
            await sessions[0].close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.body()
        model = MODELS[0][0] if random.random() < MODELS[0][1] else MODELS[1][0]
        extra = {**headers, "x-deployment": model}
        async with sessions[0].post(url, data=body, headers=extra) as resp:
            payload = await resp.read()
            return Response(payload, status_code=resp.status, media_type="application/json")

    return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Minimal FastAPI + aiohttp passthrough.")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True, help="upstream base URL (…/v1)")
    p.add_argument("--key", default="sk-simulator")
    a = p.parse_args(argv)
    assert a.upstream.startswith("http://127.0.0.1:"), "loopback only"
    uvicorn.run(
        create_app(a.upstream, a.key),
        host="127.0.0.1",
        port=a.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
