"""The one bind/auth check shared by every entry point (`serve`, the uvicorn factory
`gateway.api.asgi:app_factory`, any caller of `gateway.api.app.create_app`), and the loopback
test the keyless request guard uses too.

Without API keys (keyless mode) the gateway serves loopback only: `check_bind` refuses a
non-loopback bind address before anything starts, and `gateway.api.middleware.KeylessGuard`
refuses requests that arrive on a non-loopback server address (a factory cannot see the
`--host` uvicorn was given) or carry a foreign Host or Origin header.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.infra.settings import Settings

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class InsecureBindError(ValueError):
    """Keyless serving was asked for on an address other hosts can reach."""


def is_loopback_host(host: str) -> bool:
    """True for `localhost` (and `*.localhost`), 127.0.0.0/8 and ::1 (brackets allowed)."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings, host: str | None = None) -> None:
    """Refuse keyless serving on a non-loopback address (`host`, else `settings.host`)."""
    bind = settings.host if host is None else host
    if not settings.api_keys and not is_loopback_host(bind):
        raise InsecureBindError(
            f"refusing to serve on {bind} with no GATEWAY_API_KEYS: anyone could call it"
        )
