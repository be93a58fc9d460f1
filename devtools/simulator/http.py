"""What the simulator's two APIs (chat completions and fine-tuning) answer alike.

Both stand in for OpenAI-style services, so they share the JSON bodies, the error shape, the
401 a call without a bearer key gets, and the run-time control call that patches a config
dataclass. Keeping these in one place keeps the two APIs answering the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

__all__ = [
    "check_fields",
    "check_non_negative",
    "control_call",
    "error_response",
    "json_response",
    "unauthorized",
]


def json_response(
    obj: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """`obj` serialised with orjson (the simulator must stay cheaper than the gateway)."""
    return web.Response(
        body=orjson.dumps(obj), status=status, content_type="application/json", headers=headers
    )


def error_response(
    status: int,
    message: str,
    kind: str,
    code: str | None,
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An error in OpenAI's shape (`{"error": {message, type, param, code}}`), which the
    clients under test parse."""
    err = {"message": message, "type": kind, "param": param, "code": code}
    return json_response({"error": err}, status, headers)


def unauthorized(request: web.Request, require_key: bool) -> web.Response | None:
    """The real APIs' 401 when a key is required and the call carries no bearer key, else
    None (the call may go on)."""
    auth = request.headers.get("Authorization", "")
    if require_key and (not auth.startswith("Bearer ") or not auth[7:].strip()):
        msg = "No auth credentials found"
        return error_response(401, msg, "authentication_error", "invalid_api_key")
    return None


def check_non_negative(name: str, value: object) -> None:
    """ValueError unless `value` is a number >= 0: a config's timings and rates come from
    JSON at run time, where a bool or a string would otherwise slip through."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def check_fields(config_type: type[Any], patch: Mapping[str, Any], what: str) -> None:
    """ValueError naming the keys of `patch` that are not fields of the `config_type`
    dataclass, so that a misspelt knob is refused rather than ignored."""
    fields = {f.name for f in dataclasses.fields(config_type)}
    if unknown := sorted(set(patch) - fields):
        raise ValueError(f"unknown {what} fields: {unknown}")


async def control_call(
    request: web.Request, apply: Callable[[dict[str, Any]], Any]
) -> web.Response:
    """Answer a control call: its body is a JSON object patching a config, `apply` checks it,
    puts the new config in force and returns what to answer; a bad patch is a 400 and changes
    nothing (`apply` raises before it changes anything)."""
    try:
        patch = orjson.loads(await request.read())
        if not isinstance(patch, dict):
            raise ValueError("the patch must be a JSON object")
        answer = apply(patch)
    except (AttributeError, TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        return error_response(400, str(exc), "invalid_request_error", "invalid_patch")
    return json_response(answer)
