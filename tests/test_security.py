"""Security hardening, each from a reproduction: keyless mode refuses web pages (foreign Origin,
DNS-rebound Host, non-loopback server address), every entry point refuses keyless public
binds, the API description needs a key, review sessions (Secure behind a trusted proxy,
server-side logout, sign-in CSRF token, throttled wrong keys), chat `metadata.review_id`
validated like /v1/classify, and Redis down answers 503 `unavailable` on every route that
needs it, never a 500."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.api.app import create_app
from gateway.infra.embedded_redis import EmbeddedRedis
from gateway.infra.settings import Settings
from tests.servers import Gateway, Simulator, ab_routes, free_port, run_gateway

REVIEWER_KEY = "reviewer-key-sec-0123"
ADMIN_KEY = "admin-key-sec-0123"


# --- keyless mode -----------------------------------------------------------------------------


@pytest.fixture
def keyless(tmp: Path, sim: Simulator, redis_url: str) -> Iterator[Gateway]:
    env = {"GATEWAY_ALLOWED_HOSTS": "gateway.internal"}
    with run_gateway(
        tmp, routes=ab_routes(sim.base_url), redis_url=redis_url, api_key=None, env=env
    ) as gw:
        yield gw


def test_keyless_refuses_cross_origin_pages_and_rebound_hosts(keyless: Gateway) -> None:
    url, port = keyless.url, keyless.port
    # the reproduction: a web page posts a "simple" text/plain request cross-origin
    out = subprocess.run(
        [
            "curl", "-s", "-o", "-", "-w", "\n%{http_code}",
            "-H", "Origin: http://evil.example", "-H", "Content-Type: text/plain",
            "-d", '{"text": "The app crashes on start"}', f"{url}/v1/classify",
        ],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    body, status = out.stdout.rsplit("\n", 1)
    # refused by the first rule it breaks: the JSON-only body rule, else the Origin check
    assert (status, json.loads(body)["error"]) in {
        ("415", "unsupported_media_type"),
        ("403", "forbidden"),
    }, out.stdout

    with httpx.Client(base_url=url, timeout=30) as c:
        text = {"text": "The app crashes on start"}
        refused = {
            "rebound Host": c.get("/v1/pairs", headers={"Host": "evil.example"}),
            "rebound Host with port": c.get("/v1/pairs", headers={"Host": f"evil.example:{port}"}),
            "no Host": c.get("/v1/pairs", headers={"Host": ""}),
            "foreign Origin": c.post(
                "/v1/classify", json=text, headers={"Origin": "http://evil.example"}
            ),
            "Origin null": c.post("/v1/classify", json=text, headers={"Origin": "null"}),
            "other port": c.post(
                "/v1/classify", json=text, headers={"Origin": "http://127.0.0.1:1"}
            ),
            "https origin": c.post(
                "/v1/classify", json=text, headers={"Origin": f"https://127.0.0.1:{port}"}
            ),
            "cross-site fetch": c.get("/v1/pairs", headers={"Sec-Fetch-Site": "cross-site"}),
            "same-site fetch": c.get("/v1/pairs", headers={"Sec-Fetch-Site": "same-site"}),
        }
        for what, r in refused.items():
            assert r.status_code == 403, (what, r.status_code, r.text)
            assert r.json()["error"] == "forbidden", what
            assert r.headers.get("x-request-id"), what
        assert "evil.example" in refused["rebound Host"].json()["detail"]
        assert "Origin" in refused["foreign Origin"].json()["detail"]

        # nothing was classified or stored by the refused requests
        pairs = c.get("/v1/pairs")
        assert pairs.status_code == 200 and pairs.json()["items"] == []

        # the gateway's own origin, loopback names and GATEWAY_ALLOWED_HOSTS are served
        same = c.post("/v1/classify", json=text, headers={"Origin": f"http://127.0.0.1:{port}"})
        assert same.status_code == 200, same.text
        via_localhost = c.post(
            "/v1/classify",
            json=text,
            headers={"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"},
        )
        assert via_localhost.status_code == 200, via_localhost.text
        assert c.get("/v1/pairs", headers={"Host": f"gateway.internal:{port}"}).status_code == 200
        assert c.get("/v1/pairs", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
        # health checks answer any Host (probes), and reveal nothing
        assert c.get("/healthz", headers={"Host": "evil.example"}).status_code == 200


async def _asgi_get(
    app: object, base_url: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        return await client.get(path, headers=headers)


def test_keyless_app_refuses_requests_on_a_non_loopback_server_address() -> None:
    """What a factory under `uvicorn --host 0.0.0.0` would see: scope["server"] is public."""
    app = create_app(Settings(_env_file=None, api_keys=[]))
    loopback_host = {"Host": "127.0.0.1:8080"}
    public = asyncio.run(_asgi_get(app, "http://192.0.2.10:8080", "/openapi.json", loopback_host))
    assert public.status_code == 403 and "192.0.2.10" in public.json()["detail"]
    local = asyncio.run(_asgi_get(app, "http://127.0.0.1:8080", "/openapi.json", loopback_host))
    assert local.status_code == 200 and local.json()["info"]["title"] == "triage-gateway"
    # with API keys the key is the protection: no guard
    keyed = create_app(Settings(_env_file=None, api_keys="k1"))
    r = asyncio.run(_asgi_get(keyed, "http://192.0.2.10:8080", "/openapi.json", {}))
    assert r.status_code == 401


def test_every_entry_point_refuses_keyless_public_binds(tmp: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "GATEWAY_DATA_DIR": str(tmp / "data")}
    # the uvicorn factory cannot see --host; GATEWAY_HOST says where it is meant to serve
    factory = subprocess.run(
        [
            sys.executable, "-m", "uvicorn", "--factory", "gateway.api.asgi:app_factory",
            "--host", "127.0.0.1", "--port", str(free_port()),
        ],
        capture_output=True, text=True, timeout=60, env={**env, "GATEWAY_HOST": "0.0.0.0"},
    )  # fmt: skip
    assert factory.returncode != 0
    assert "refusing to serve on 0.0.0.0 with no GATEWAY_API_KEYS" in factory.stderr
    serve = subprocess.run(
        [sys.executable, "-m", "cli", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert serve.returncode == 2
    assert "refusing to serve on 0.0.0.0 with no GATEWAY_API_KEYS" in serve.stderr


# --- the API description --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
def test_docs_need_a_key_unless_public(path: str) -> None:
    base = "http://127.0.0.1:8080"
    closed = create_app(Settings(_env_file=None, api_keys="doc-key"))
    assert asyncio.run(_asgi_get(closed, base, path, {})).status_code == 401
    wrong = asyncio.run(_asgi_get(closed, base, path, {"Authorization": "Bearer nope"}))
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    ok = asyncio.run(_asgi_get(closed, base, path, {"Authorization": "Bearer doc-key"}))
    assert ok.status_code == 200
    opened = create_app(Settings(_env_file=None, api_keys="doc-key", public_docs=True))
    assert asyncio.run(_asgi_get(opened, base, path, {})).status_code == 200
    if path == "/openapi.json":
        assert "/v1/classify" in ok.json()["paths"]


# --- review sessions and chat review ids (one keyed gateway) ---------------------------------


@pytest.fixture
def keyed(tmp: Path, sim: Simulator, redis_url: str) -> Iterator[Gateway]:
    env = {
        "GATEWAY_REVIEWER_KEYS": REVIEWER_KEY,
        "GATEWAY_ADMIN_KEYS": ADMIN_KEY,
        "GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
    }
    with run_gateway(tmp, routes=ab_routes(sim.base_url), redis_url=redis_url, env=env) as gw:
        yield gw


def _login_form(c: httpx.Client, headers: dict[str, str] | None = None) -> str:
    page = c.get("/review/login", headers=headers or {})
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found[1]


def _sign_in(c: httpx.Client, key: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """The form's token back in the field and in its cookie (sent by hand: a Secure cookie
    set for a request the proxy saw over TLS is not sent back over this plain connection)."""
    csrf = _login_form(c, headers)
    cookie = {"Cookie": f"triage_login_csrf={csrf}"}
    return c.post(
        "/review/login", data={"key": key, "csrf": csrf}, headers={**(headers or {}), **cookie}
    )


def test_review_sign_in_csrf_secure_cookie_logout_and_throttle(keyed: Gateway) -> None:
    with httpx.Client(base_url=keyed.url, timeout=30) as c:
        # no CSRF token (a form posted from another site): refused, nothing signed in
        forged = c.post("/review/login", data={"key": REVIEWER_KEY})
        assert forged.status_code == 403 and "expired" in forged.text
        assert "triage_review" not in forged.headers.get("set-cookie", "")
        c.cookies.clear()
        bad = c.post("/review/login", data={"key": REVIEWER_KEY, "csrf": "guessed"})
        assert bad.status_code == 403

        # plain HTTP: a session cookie without Secure
        c.cookies.clear()
        plain = _sign_in(c, REVIEWER_KEY)
        assert plain.status_code == 303, plain.text
        cookie = plain.headers["set-cookie"]
        assert "triage_review=" in cookie and "httponly" in cookie.lower()
        assert "secure" not in cookie.lower()

    # behind the trusted proxy that saw TLS: Secure
    tls = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.4"}
    with httpx.Client(base_url=keyed.url, timeout=30) as c:
        secure = _sign_in(c, REVIEWER_KEY, tls)
        assert secure.status_code == 303
        assert "; secure" in secure.headers["set-cookie"].lower()

    # logout ends the session on the server: the copied cookie no longer opens the queue
    with httpx.Client(base_url=keyed.url, timeout=30) as c:
        assert _sign_in(c, REVIEWER_KEY).status_code == 303
        stolen = c.cookies["triage_review"]
        queue = c.get("/review")
        assert queue.status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', queue.text)
        assert csrf
        out = c.post("/review/logout", data={"csrf": csrf[1]})
        assert out.status_code == 303 and out.headers["location"] == "/review/login"
    with httpx.Client(base_url=keyed.url, timeout=30) as replay:
        replay.cookies.set("triage_review", stolen, path="/review")
        after = replay.get("/review")
        assert after.status_code == 303 and after.headers["location"] == "/review/login"

    # wrong keys: 5 per client address, then 429 with Retry-After, even for the right key
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    with httpx.Client(base_url=keyed.url, timeout=30) as c:
        for _ in range(5):
            assert _sign_in(c, "wrong-key", attacker).status_code == 401
        locked = _sign_in(c, REVIEWER_KEY, attacker)
        assert locked.status_code == 429, locked.text
        assert 1 <= int(locked.headers["retry-after"]) <= 300
        assert "try again" in locked.text
        # another client address is not locked out
        other = _sign_in(c, REVIEWER_KEY, {"X-Forwarded-For": "203.0.113.10"})
        assert other.status_code == 303


def test_chat_review_id_follows_the_classify_rules(keyed: Gateway) -> None:
    base = {"model": "triage", "messages": [{"role": "user", "content": "Crashes on start"}]}
    with keyed.client() as c:
        for value in ("", "x" * 5000):
            r = c.post("/v1/chat/completions", json={**base, "metadata": {"review_id": value}})
            assert r.status_code == 422, r.text
            assert r.json()["error"] == "invalid_request"
            assert r.json()["detail"].startswith("metadata.review_id:"), r.text
        top = c.post("/v1/chat/completions", json={**base, "review_id": ""})
        assert top.status_code == 422 and top.json()["detail"].startswith("review_id:")
        classify = c.post("/v1/classify", json={"text": "Crashes on start", "review_id": ""})
        assert classify.status_code == 422  # the same rule
        ok = c.post("/v1/chat/completions", json={**base, "metadata": {"review_id": "r-1"}})
        assert ok.status_code == 200, ok.text
    assert '"status": 500' not in keyed.log_text() and '"status":500' not in keyed.log_text()


# --- Redis down ---------------------------------------------------------------------------


def test_redis_down_answers_503_unavailable_on_every_redis_route(tmp: Path, sim: Simulator) -> None:
    redis = EmbeddedRedis(tmp / "own-redis", port=free_port()).start()
    env = {"GATEWAY_REVIEWER_KEYS": REVIEWER_KEY, "GATEWAY_ADMIN_KEYS": ADMIN_KEY}
    try:
        with (
            run_gateway(tmp, routes=ab_routes(sim.base_url), redis_url=redis.url, env=env) as gw,
            httpx.Client(base_url=gw.url, timeout=30) as c,
        ):
            api = {"Authorization": "Bearer test-key"}
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            csrf = _login_form(c)
            redis.stop(kill=True)
            deadline = time.monotonic() + 10
            while c.get("/readyz").status_code != 503 and time.monotonic() < deadline:
                time.sleep(0.1)
            correction = {
                "request_id": "r-1",
                "category": "Bug Report",
                "urgency": "High",
                "corrected_by": "test",
            }
            answers = {
                "GET /v1/pairs": c.get("/v1/pairs", headers=api),
                "GET /v1/pairs/{id}": c.get("/v1/pairs/r-1", headers=api),
                "POST /v1/corrections": c.post("/v1/corrections", json=correction, headers=api),
                "GET report": c.get("/v1/experiments/triage/report", headers=api),
                "GET history": c.get("/admin/experiments/triage/history", headers=admin),
                "PUT weights": c.put(
                    "/admin/experiments/triage/weights",
                    json={"weights": {"control": 1, "candidate": 1}, "reason": "test"},
                    headers=admin,
                ),
                "DELETE /v1/reviews/{id}": c.delete("/v1/reviews/r-1", headers=admin),
                "POST /review/login": c.post(
                    "/review/login", data={"key": REVIEWER_KEY, "csrf": csrf}
                ),
            }
            for route, r in answers.items():
                assert r.status_code == 503, (route, r.status_code, r.text)
                assert r.json()["error"] == "unavailable", route
                assert "redis" in r.json()["detail"].lower(), route
            # classify does not need Redis: pairs go to the spool
            served = c.post("/v1/classify", json={"text": "Crashes on start"}, headers=api)
            assert served.status_code == 200, served.text
            log = gw.log_text()
    finally:
        redis.stop(kill=True)
    assert "Traceback" not in log and "internal_error" not in log
    assert '"status": 500' not in log and '"status":500' not in log


def test_provider_keys_lose_the_newline_a_secret_file_leaves(tmp: Path) -> None:
    settings = Settings(
        data_dir=tmp,
        provider_keys={"together": "tg-key\n"},
        openrouter_api_key="sk-or-key \n",
    )
    assert settings.provider_key_values() == {"together": "tg-key", "openrouter": "sk-or-key"}
