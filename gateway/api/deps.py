"""Dependencies: the gateway state and the key checks, as `Annotated` aliases."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from gateway.errors import AuthError
from gateway.infra.state import GatewayState


async def get_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


State = Annotated[GatewayState, Depends(get_state)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def key_matches(token: str | None, keys: list[bytes]) -> bool:
    """Constant-time check of `token` against every configured key."""
    if token is None:
        return False
    given = token.encode()
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key)
    return found


async def require_api_key(request: Request) -> None:
    keys: list[bytes] = request.app.state.api_keys
    if not keys:
        return  # no keys configured: the server only listens on loopback
    if not key_matches(_bearer(request), keys):
        raise AuthError("missing or invalid API key (Authorization: Bearer <key>)")


async def require_admin_key(request: Request) -> None:
    keys: list[bytes] = request.app.state.admin_keys
    if not keys:
        raise AuthError("admin API disabled: set GATEWAY_ADMIN_KEYS")
    if not key_matches(_bearer(request), keys):
        raise AuthError("missing or invalid admin key")


async def require_docs_key(request: Request) -> None:
    """The API description needs an API key unless GATEWAY_PUBLIC_DOCS opens it."""
    if not request.app.state.public_docs:
        await require_api_key(request)


ApiKey = Depends(require_api_key)
AdminKey = Depends(require_admin_key)
DocsKey = Depends(require_docs_key)
