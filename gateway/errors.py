"""The gateway's one error tree. Every error a client can see is a `GatewayError`; one handler
(in `gateway.api.errors`) turns it into `{"error": <code>, "detail": <text>}` with its status.

    GatewayError
    ├── AuthError                 401  unauthorized
    ├── ForbiddenError            403  forbidden
    ├── NotFoundError             404  not_found
    ├── ConflictError             409  conflict
    ├── PayloadTooLargeError      413  payload_too_large
    ├── InvalidRequestError       422  invalid_request
    ├── RateLimitedError          429  rate_limited         (upstream 429, Retry-After passed on)
    ├── UnavailableError          503  unavailable          (Redis down for a call that needs it)
    └── UpstreamError             502  upstream_error       (every variant failed)
        ├── UpstreamTimeoutError  504  upstream_timeout
        └── InvalidOutputError    502  invalid_output       (no valid triage after re-asks)

Details never carry secrets: upstream error bodies are summarised, not echoed.
"""

from __future__ import annotations


class GatewayError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class AuthError(GatewayError):
    status_code = 401
    code = "unauthorized"


class ForbiddenError(GatewayError):
    status_code = 403
    code = "forbidden"


class NotFoundError(GatewayError):
    status_code = 404
    code = "not_found"


class ConflictError(GatewayError):
    status_code = 409
    code = "conflict"


class PayloadTooLargeError(GatewayError):
    status_code = 413
    code = "payload_too_large"


class InvalidRequestError(GatewayError):
    status_code = 422
    code = "invalid_request"


class RateLimitedError(GatewayError):
    status_code = 429
    code = "rate_limited"


class UnavailableError(GatewayError):
    status_code = 503
    code = "unavailable"


class UpstreamError(GatewayError):
    status_code = 502
    code = "upstream_error"


class UpstreamTimeoutError(UpstreamError):
    status_code = 504
    code = "upstream_timeout"


class InvalidOutputError(UpstreamError):
    status_code = 502
    code = "invalid_output"
