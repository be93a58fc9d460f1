"""Schemathesis checks for tests/test_schemathesis.py, loaded by the CLI through
SCHEMATHESIS_HOOKS: no 5xx answer, except, while the test has stopped Redis
(TRIAGE_REDIS_DOWN=1), 503 `unavailable` naming Redis (and /readyz's 503)."""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis


@schemathesis.check
def no_server_error_but_redis_outage(ctx: Any, response: Any, case: Any) -> bool | None:
    status = int(response.status_code)
    if status < 500:
        return None
    redis_down = os.environ.get("TRIAGE_REDIS_DOWN") == "1"
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if redis_down and status == 503 and isinstance(body, dict):
        if body.get("error") == "unavailable" and "redis" in str(body.get("detail")).lower():
            return None
        if case.path == "/readyz" and body.get("status") == "unavailable":
            return None
    raise AssertionError(
        f"server error {status} on {case.method} {case.path}: {response.text[:300]}"
    )
