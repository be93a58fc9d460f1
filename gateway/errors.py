"""The gateway's one error tree. Every error a client can see is a `GatewayError`, raised where
the failure happens and carried unchanged to the API; `gateway.api.errors` maps each `code` to
its HTTP status (the only such mapping) and answers `{"error": <code>, "detail": <text>}`.

    GatewayError                  internal_error
    ├── AuthError                 unauthorized
    ├── ForbiddenError            forbidden
    ├── NotFoundError             not_found
    ├── ConflictError             conflict
    ├── PayloadTooLargeError      payload_too_large
    ├── InvalidRequestError       invalid_request
    ├── UnavailableError          unavailable        (Redis down for a call that needs it)
    └── UpstreamError             upstream_error     (a model call failed)
        ├── UpstreamTimeoutError  upstream_timeout
        ├── RateLimitedError      rate_limited       (upstream 429; `retry_after` passed on)
        ├── InvalidOutputError    invalid_output     (no valid triage after the re-ask)
        └── AllVariantsFailed     the code of what decided it (see the class)

An `UpstreamError` is raised by the upstream client, the local model or validation; the
variant pool adds what the call cost and how many attempts it took, and the classifier, once
every variant has failed, raises `AllVariantsFailed` with them all.

Details never carry secrets: upstream error bodies are summarised, not echoed.
"""

from __future__ import annotations

from collections.abc import Sequence


class GatewayError(Exception):
    """Subclasses name their code as a class argument: `class X(GatewayError, code="x")`."""

    code: str = "internal_error"

    def __init_subclass__(cls, code: str | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class AuthError(GatewayError, code="unauthorized"): ...


class ForbiddenError(GatewayError, code="forbidden"): ...


class NotFoundError(GatewayError, code="not_found"): ...


class ConflictError(GatewayError, code="conflict"): ...


class PayloadTooLargeError(GatewayError, code="payload_too_large"): ...


class InvalidRequestError(GatewayError, code="invalid_request"): ...


class UnavailableError(GatewayError, code="unavailable"): ...


class UpstreamError(GatewayError, code="upstream_error"):
    """A model call failed. `reason` is a short metric label (`timeout`, `connection`,
    `http_5xx`, `invalid_output`, ...); `attempts` and `cost_usd` count the calls of the
    variant that failed (answers that were rejected still cost money); `variant` is set by
    the classifier."""

    default_reason: str | None = None
    """The `reason` when none is given; None: the code."""

    def __init__(
        self,
        detail: str,
        *,
        reason: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
        attempts: int = 1,
        cost_usd: float = 0.0,
    ) -> None:
        super().__init__(detail)
        self.reason = reason or self.default_reason or self.code
        self.retry_after = retry_after
        self.status = status
        self.attempts = attempts
        self.cost_usd = cost_usd
        self.variant: str | None = None


class UpstreamTimeoutError(UpstreamError, code="upstream_timeout"):
    default_reason = "timeout"


class RateLimitedError(UpstreamError, code="rate_limited"): ...


class InvalidOutputError(UpstreamError, code="invalid_output"): ...


class AllVariantsFailed(UpstreamError):
    """Every variant tried failed (`failures`, in order), or all were cooling down after
    upstream rate limits (no failures). The code is `rate_limited` when every failure was
    a rate limit (`retry_after`: the longest wait asked for, at least 1 s), else that of the
    last failure (`upstream_timeout`, `invalid_output` or `upstream_error`)."""

    def __init__(self, failures: Sequence[UpstreamError]) -> None:
        self.failures = tuple(failures)
        tried = ", ".join(f"{f.variant}: {f.reason}" for f in failures)
        retry_after = None
        last = failures[-1] if failures else None
        if last is None:
            code, detail = (
                "upstream_error",
                "every variant is cooling down after upstream rate limits",
            )
        elif all(isinstance(f, RateLimitedError) for f in failures):
            retry_after = max((f.retry_after or 1.0) for f in failures)
            code, detail = "rate_limited", f"upstream rate limited ({tried})"
        elif isinstance(last, UpstreamTimeoutError):
            code, detail = "upstream_timeout", f"no variant answered in time ({tried})"
        elif isinstance(last, InvalidOutputError):
            code, detail = "invalid_output", f"no valid triage after re-ask and fallbacks ({tried})"
        else:
            code, detail = "upstream_error", f"every variant failed ({tried})"
        super().__init__(
            detail,
            reason=last.reason if last is not None else None,
            retry_after=retry_after,
            attempts=sum(f.attempts for f in failures),
            cost_usd=sum(f.cost_usd for f in failures),
        )
        self.code = code
