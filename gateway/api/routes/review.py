"""The review page: reviewers sign in with a reviewer key, work through the review queue and
correct (or confirm) the model's answers. Server-rendered Jinja2 (autoescape on), one small
static script for keyboard shortcuts and the topic/summary check, no build step. When a
reviewer changes category or urgency, topic and summary must be edited or ticked as still
right before the correction is stored (the script asks first; the server refuses otherwise).

Sessions: signing in with a key from GATEWAY_REVIEWER_KEYS (role `reviewer`) or
GATEWAY_ADMIN_KEYS (role `admin`: the experiments page's rollback too) sets an HttpOnly,
SameSite=Strict cookie (path `/`: the review queue and `/experiments`) holding
`sid.role.fingerprint.expiry.signature`: a random session id, the role, the first 8 hex chars
of sha256(key) (the reviewer's name in corrections; never the key), an expiry and an HMAC of
those under a server secret. The secret is random, made on first use and shared by all workers
through Redis (`redis_keys.review_session_secret()`), so a session works on every worker.
Removing a key from its list ends its sessions. Each session id is also stored in
Redis with the session's TTL (`redis_keys.review_session`); logout deletes it, so a copied
cookie stops working at once on every worker. The cookie is `Secure` when the request came
over TLS: directly, or through a proxy in GATEWAY_TRUSTED_PROXIES that says so in
X-Forwarded-Proto.

Sign-in: the form carries a CSRF token equal to a random value the form page set in its own
HttpOnly, SameSite=Strict cookie (double submit), so another site cannot sign a browser in.
Wrong keys are throttled per client address: after MAX_LOGIN_FAILURES within LOGIN_WINDOW_S
the sign-in answers 429 with Retry-After, right key or not, until the window ends.

CSRF: every form carries a hidden `csrf` field equal to an HMAC of the session id; a POST
without the matching value is refused with 403. Every page is sent with a Content-Security-
Policy that forbids inline and foreign scripts, so a review text that slipped past escaping
still could not run.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader

from gateway.api.deps import State, key_matches
from gateway.errors import ForbiddenError, GatewayError, UnavailableError
from gateway.infra import redis_keys
from gateway.infra.state import GatewayState
from gateway.pairs.corrections import (
    FIELDS,
    TextNotReviewedError,
    add_correction,
    confirm_answer,
    last_corrections,
    taxonomy_lookup,
)
from gateway.pairs.review_queue import list_pairs

router = APIRouter(prefix="/review", tags=["review"], include_in_schema=False)

COOKIE = "triage_review"
LOGIN_COOKIE = "triage_login_csrf"
SESSION_TTL_S = 12 * 3600
MAX_LOGIN_FAILURES = 5
LOGIN_WINDOW_S = 300
PAGE_SIZE = 50
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
ERRORS = {
    "invalid_request": "That label is not in this experiment's taxonomy; nothing was saved.",
    "not_found": "That pair no longer exists (erased or trimmed); nothing was saved.",
    "payload_too_large": "The note is over 2000 characters; nothing was saved.",
    "recheck": (
        "Category or urgency changed: edit the topic and summary, or tick them as still right; "
        "nothing was saved."
    ),
}
NEXT_PAGES = ("/review", "/experiments")
"""Where the sign-in form may send a reviewer afterwards (nowhere else: no open redirect)."""
_templates = Environment(
    loader=PackageLoader("gateway", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    reviewer: str
    """`reviewer:<fingerprint>` or `admin:<fingerprint>`: the name stored in corrections."""
    csrf: str
    role: str = "reviewer"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def fingerprint(key: str) -> str:
    """The reviewer's name in corrections: 8 hex chars of sha256(key), never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


async def _secret(request: Request, state: GatewayState) -> bytes:
    cached: bytes | None = getattr(request.app.state, "review_secret", None)
    if cached is None:
        key = redis_keys.review_session_secret()
        await state.redis.set(key, secrets.token_bytes(32), nx=True)
        stored = await state.redis.get(key)
        if stored is None:
            raise UnavailableError("review session secret missing from Redis")
        cached = stored if isinstance(stored, bytes) else stored.encode()
        request.app.state.review_secret = cached
    return cached


def _sign(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def _role_keys(request: Request, role: str) -> list[bytes]:
    keys: list[bytes] = getattr(
        request.app.state, "admin_keys" if role == "admin" else "reviewer_keys"
    )
    return keys


async def _new_token(state: GatewayState, secret: bytes, role: str, reviewer: str) -> str:
    sid = secrets.token_hex(16)
    expires = str(int(time.time()) + SESSION_TTL_S)
    await state.redis.set(redis_keys.review_session(sid), reviewer, ex=SESSION_TTL_S)
    signature = _sign(secret, f"session|{sid}|{role}|{reviewer}|{expires}")
    return ".".join((sid, role, reviewer, expires, signature))


async def current_session(request: Request, state: GatewayState) -> Session | None:
    """The signed-in reviewer or admin of this request (None: sign in first)."""
    token = request.cookies.get(COOKIE)
    parts = token.split(".") if token else []
    if len(parts) != 5 or not parts[3].isdigit() or int(parts[3]) < time.time():
        return None
    sid, role, reviewer, expires, signature = parts
    if role not in ("reviewer", "admin"):
        return None
    secret = await _secret(request, state)
    expected = _sign(secret, f"session|{sid}|{role}|{reviewer}|{expires}")
    if not hmac.compare_digest(signature, expected):
        return None
    if reviewer not in {fingerprint(k.decode()) for k in _role_keys(request, role)}:
        return None  # the key was removed from GATEWAY_REVIEWER_KEYS / GATEWAY_ADMIN_KEYS
    if not await state.redis.exists(redis_keys.review_session(sid)):
        return None  # signed out (or expired) on the server
    return Session(sid, f"{role}:{reviewer}", _sign(secret, f"csrf|{sid}"), role)


_session = current_session


def render_page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A template of `gateway/templates` (autoescaped), sent with the pages' security headers."""
    body = _templates.get_template(name).render(**context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


_html, _redirect = render_page, see_other


def _next_page(value: str | None) -> str:
    return value if value in NEXT_PAGES else "/review"


def _login_page(
    request: Request, status: int = 200, next_page: str | None = None, **context: Any
) -> HTMLResponse:
    """The sign-in form with a fresh CSRF token, also set in its own cookie (double submit)."""
    token = secrets.token_urlsafe(24)
    enabled = bool(request.app.state.reviewer_keys or request.app.state.admin_keys)
    page = _next_page(next_page)
    response = _html("login.html", status, enabled=enabled, csrf=token, next=page, **context)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/review/login",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


def _client(request: Request) -> str:
    """The client address (the real one behind a trusted proxy: see GATEWAY_TRUSTED_PROXIES)."""
    return request.client.host if request.client else "unknown"


@router.get("/login", response_model=None)
async def login_form(
    request: Request, error: str | None = None, next: str | None = None
) -> HTMLResponse:
    return _login_page(request, next_page=next, failed=error is not None)


@router.post("/login", response_model=None)
async def login(
    request: Request,
    state: State,
    key: Annotated[str, Form(max_length=500)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=200)] = "/review",
) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        return _login_page(request, 403, next, expired=True)
    failures = redis_keys.review_login_failures(_client(request))
    count = await state.redis.get(failures)
    if count is not None and int(count) >= MAX_LOGIN_FAILURES:
        wait = max(1, int(await state.redis.ttl(failures)))
        throttled = _login_page(request, 429, next, retry_after=wait)
        throttled.headers["Retry-After"] = str(wait)
        return throttled
    roles = [r for r in ("admin", "reviewer") if key_matches(key, _role_keys(request, r))]
    role = roles[0] if roles else None
    if role is None:
        async with state.redis.pipeline(transaction=True) as pipe:
            pipe.set(failures, 0, ex=LOGIN_WINDOW_S, nx=True)  # the window opens at the first
            pipe.incr(failures)
            await pipe.execute()
        return _login_page(request, 401, next, failed=True)
    await state.redis.delete(failures)
    token = await _new_token(state, await _secret(request, state), role, fingerprint(key))
    response = _redirect(_next_page(next))
    secure = request.url.scheme == "https"
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_TTL_S,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/review/login", httponly=True, samesite="strict")
    return response


@router.post("/logout", response_model=None)
async def logout(
    request: Request, state: State, csrf: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    session = await _session(request, state)
    if session is not None and not hmac.compare_digest(csrf, session.csrf):
        raise ForbiddenError("CSRF token missing or wrong: reload the page and try again")
    if session is not None:
        await state.redis.delete(redis_keys.review_session(session.sid))
    response = _redirect("/review/login")
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("", response_model=None)
async def queue_page(
    request: Request, state: State, saved: str | None = None, error: str | None = None
) -> Response:
    session = await _session(request, state)
    if session is None:
        return _redirect("/review/login")
    stream = redis_keys.pairs_stream(state.settings.pairs_stream)
    page = await list_pairs(state.redis, stream, status="uncorrected", limit=PAGE_SIZE)
    lookup = taxonomy_lookup(state.routes)
    items = [{**i.to_dict(), "taxonomy": lookup(i.pair.experiment)} for i in page.items]
    flash = (await last_corrections(state.redis, [saved[:200]])).get(saved[:200]) if saved else None
    return _html(
        "review.html",
        items=items,
        more=page.next_cursor is not None,
        session=session,
        saved=flash,
        error=ERRORS.get(error or "", "Nothing was saved.") if error else None,
    )


@router.post("/correct", response_model=None)
async def correct(
    request: Request,
    state: State,
    request_id: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    action: Annotated[str, Form(max_length=20)] = "save",
    category: Annotated[str, Form(max_length=100)] = "",
    urgency: Annotated[str, Form(max_length=100)] = "",
    topic: Annotated[str, Form(max_length=200)] = "",
    summary: Annotated[str, Form(max_length=1000)] = "",
    note: Annotated[str, Form(max_length=10_000)] = "",
    topic_ok: Annotated[str, Form(max_length=10)] = "",
    summary_ok: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    session = await _session(request, state)
    if session is None:
        return _redirect("/review/login")
    if not hmac.compare_digest(csrf, session.csrf):
        raise ForbiddenError("CSRF token missing or wrong: reload the page and try again")
    stream = redis_keys.pairs_stream(state.settings.pairs_stream)
    lookup, who = taxonomy_lookup(state.routes), session.reviewer
    form = {
        "request_id": request_id,
        "category": category,
        "urgency": urgency,
        "topic": topic.strip() or None,
        "summary": summary.strip() or None,
        "note": note.strip() or None,
        "corrected_by": who,
        # shown on the page, so category and urgency are reviewed; topic and summary when
        # ticked as still right (or edited: a changed value counts as changed either way)
        "reviewed_fields": [
            *FIELDS[:2],
            *(["topic"] if topic_ok else []),
            *(["summary"] if summary_ok else []),
        ],
    }
    try:
        if action == "confirm":
            await confirm_answer(
                state.redis, stream, lookup, request_id, who, metrics=state.metrics, source="review"
            )
        else:
            await add_correction(
                state.redis,
                stream,
                lookup,
                form,
                metrics=state.metrics,
                source="review",
                review_page=True,
            )
    except TextNotReviewedError:
        return _redirect("/review?" + urlencode({"error": "recheck"}))
    except GatewayError as exc:
        return _redirect("/review?" + urlencode({"error": exc.code}))
    return _redirect("/review?" + urlencode({"saved": request_id}))


@router.get("/static/review.js", response_model=None)
async def review_js() -> Response:
    script = resources.files("gateway").joinpath("static", "review.js").read_bytes()
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return Response(script, media_type="text/javascript; charset=utf-8", headers=headers)
