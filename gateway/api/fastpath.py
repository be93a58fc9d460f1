"""The direct path of the classify traffic: `POST /v1/classify` and `/v1/chat/completions`
called without FastAPI's router, dependency solver and exception middlewares.

`FastRoutes` is the innermost middleware (inside `GatewayMiddleware` and `KeylessGuard`, so
the request id, the body rules, the access log and the keyless guard hold as for any route).
For a route registered here it runs the route's own dependencies and endpoint, the same
functions FastAPI would call, and maps an exception with the app's own handlers
(`gateway.api.errors`); everything else goes on to FastAPI. The routes stay registered in
FastAPI, so the OpenAPI document still describes them.

A route is taken only when the direct call is the whole of what FastAPI would do: an endpoint
that takes just the `Request` and returns a `Response`, and dependencies that are coroutine
functions of the `Request` alone. Any other route is left to FastAPI.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
Dependency = Callable[[Request], Awaitable[None]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


def _takes_request_only(fn: Callable[..., Any]) -> bool:
    if not inspect.iscoroutinefunction(fn):
        return False
    try:
        params = list(inspect.signature(fn, eval_str=True).parameters.values())
    except (NameError, TypeError, ValueError):
        return False
    return len(params) == 1 and params[0].annotation is Request


def _returns_response(fn: Callable[..., Any]) -> bool:
    try:
        returned = inspect.signature(fn, eval_str=True).return_annotation
    except (NameError, TypeError, ValueError):
        return False
    return isinstance(returned, type) and issubclass(returned, Response)


def direct_route(route: APIRoute) -> tuple[Endpoint, tuple[Dependency, ...]] | None:
    """The endpoint and dependencies of `route` when a direct call is all FastAPI would do."""
    deps = tuple(d.dependency for d in route.dependencies)
    if route.methods != {"POST"} or not all(d is not None for d in deps):
        return None
    if not (_takes_request_only(route.endpoint) and _returns_response(route.endpoint)):
        return None
    if not all(_takes_request_only(d) for d in deps if d is not None):
        return None
    return route.endpoint, tuple(d for d in deps if d is not None)


class FastRoutes:
    """POST to a registered path: dependencies, endpoint, response, here; the rest: `app`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Iterable[APIRoute],
        handlers: Mapping[Any, Callable[..., Any]],
    ) -> None:
        self.app = app
        self.handlers = handlers  # the app's dict: handlers added later are seen too
        self.table: dict[str, tuple[Endpoint, tuple[Dependency, ...]]] = {}
        for route in routes:
            direct = direct_route(route)
            if direct is not None:
                self.table[route.path] = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            entry = self.table.get(scope["path"])
        if entry is None:
            await self.app(scope, receive, send)
            return
        endpoint, deps = entry
        request = Request(scope, receive, send)
        try:
            for dep in deps:
                await dep(request)
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler | None:
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                found: Handler = handler
                return found
        return None
