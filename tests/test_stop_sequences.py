"""A variant's `stop` sequences: validated in the routes file, sent upstream in the chat request
by the gateway under uvicorn (an upstream on 127.0.0.1 records each body), and left out of
the request of a variant that declares none."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from gateway.experiments.config import RoutesFileError, parse_routes
from tests.servers import run_gateway

ANSWER = {
    "category": "Bug Report",
    "urgency": "High",
    "topic": "Camera crash",
    "summary": "The app crashes when the camera opens.",
}
STOP = ["<|end|>", "\n\n"]


class Recorder:
    """An OpenAI-compatible upstream that answers every chat request with one valid triage and
    records `(path prefix, JSON body)`; served from its own thread and event loop."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        self.url = ""
        self._lock = threading.Lock()

    async def _chat(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        with self._lock:
            self.bodies.append((request.match_info["name"], body))
        reply = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": orjson.dumps(ANSWER).decode()},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30},
        }
        return web.Response(body=orjson.dumps(reply), content_type="application/json")

    def recorded(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self.bodies)


@contextlib.contextmanager
def run_recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/{name}/v1/chat/completions", recorder._chat)
    runner = web.AppRunner(app, access_log=None)

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()

    loop.run_until_complete(start())
    host, port = runner.addresses[0][:2]
    recorder.url = f"http://{host}:{port}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def variant(name: str, base_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": "hosted_vllm/triage",
        "api_base": f"{base_url}/{name}/v1",
        "weight": 1.0,
        "timeout_s": 5,
        "price": {"input_per_1m": 0.1, "output_per_1m": 0.1},
        **extra,
    }


def test_gateway_sends_a_variants_stop_sequences_upstream(tmp: Path, redis_url: str) -> None:
    with run_recorder() as upstream:
        routes = {
            "experiments": [
                {
                    "name": "triage",
                    "salt": "stop-test",
                    "variants": [
                        variant("adapter", upstream.url, stop=STOP),
                        variant("plain", upstream.url),
                    ],
                }
            ]
        }
        served: dict[str, int] = {}
        with run_gateway(tmp, routes=routes, redis_url=redis_url) as gw, gw.client() as c:
            for i in range(40):  # bounded; both variants are drawn long before the end
                r = c.post(
                    "/v1/classify", json={"text": "It crashes on open", "review_id": f"s-{i}"}
                )
                assert r.status_code == 200, r.text
                name = r.json()["variant"]
                served[name] = served.get(name, 0) + 1
                if len(served) == 2 and min(served.values()) >= 3:
                    break
        bodies = upstream.recorded()
    assert set(served) == {"adapter", "plain"}, served
    by_variant: dict[str, list[dict[str, Any]]] = {"adapter": [], "plain": []}
    for name, body in bodies:
        by_variant[name].append(body)
    assert len(by_variant["adapter"]) == served["adapter"], "one upstream call per answer"
    assert len(by_variant["plain"]) == served["plain"]
    for body in by_variant["adapter"]:
        assert body["stop"] == STOP, body
        assert body["model"] == "triage" and body["max_tokens"] == 300
    for body in by_variant["plain"]:
        assert "stop" not in body, body


def routes_with(**fields: Any) -> dict[str, Any]:
    v = {"name": "a", "model": "hosted_vllm/triage", "api_base": "http://127.0.0.1:9/v1"}
    return {"experiments": [{"name": "t", "salt": "s", "variants": [{**v, "weight": 1, **fields}]}]}


def test_stop_accepts_one_string_or_up_to_four() -> None:
    one = parse_routes(routes_with(stop="<|end|>")).default.variants[0]
    assert one.stop == ("<|end|>",)
    four = parse_routes(routes_with(stop=["a", "b", "c", "d"])).default.variants[0]
    assert four.stop == ("a", "b", "c", "d")
    assert parse_routes(routes_with()).default.variants[0].stop is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stop": ["a", "b", "c", "d", "e"]}, r"variants\[0\]\.stop: .*at most 4 items"),
        ({"stop": []}, r"variants\[0\]\.stop: .*at least 1 item"),
        ({"stop": [""]}, r"variants\[0\]\.stop\[0\]: String should have at least 1 character"),
        ({"stop": ["x" * 65]}, r"variants\[0\]\.stop\[0\]: String should have at most 64"),
        ({"stop": [3]}, r"variants\[0\]\.stop\[0\]: Input should be a valid string"),
        ({"model": "local", "stop": ["}"]}, r"`stop` is for upstream models, not `model: local`"),
    ],
)
def test_bad_stop_is_named(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(RoutesFileError, match=message):
        parse_routes(routes_with(**fields))
