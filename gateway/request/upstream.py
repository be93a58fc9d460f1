"""A lean async client for OpenAI-compatible chat completions (OpenRouter, Together, Fireworks,
vLLM, the simulator): one pooled pyreqwest client (reqwest/hyper in Rust), orjson on both ends.

litellm's request path costs milliseconds of CPU per call, httpx's pool degrades at high
concurrency, and aiohttp's client spends about twice the CPU of pyreqwest per call on this
load (0.12 vs 0.06 ms at 64 concurrent requests on one core, `loadtest.bench`); this client is
the hot path, so it does the minimum: build the body, POST, read
`choices[0].message.content` and `usage`. Failures are raised as `gateway.errors.UpstreamError`
subclasses, the type the API answers with; the cost of a call is computed here, once
(`gateway.request.pricing.call_cost`), and carried along from then on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TypedDict

import orjson
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import RequestError, RequestTimeoutError

from gateway.errors import RateLimitedError, UpstreamError, UpstreamTimeoutError
from gateway.experiments.config import Price
from gateway.request.pricing import Endpoint, call_cost


class ChatMessage(TypedDict):
    role: str
    content: str


ResponseFormat = dict[str, object]
"""The `response_format` of a chat request (`{"type": "json_object"}`, ...)."""


@dataclass(frozen=True, slots=True)
class Completion:
    content: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    """The provider's reported cost, else the configured price (`call_cost`)."""
    latency_s: float


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from LLM APIs, treated as "unknown"


def _parse(payload: bytes, latency_s: float, price: Price | None) -> Completion:
    try:
        body = orjson.loads(payload)
        content = body["choices"][0]["message"]["content"]
        usage: dict[str, object] = body.get("usage") or {}
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise UpstreamError(
            f"unexpected response shape ({type(exc).__name__})", reason="bad_response"
        ) from None
    if not isinstance(content, str) or not isinstance(usage, dict):
        raise UpstreamError("message content is not text", reason="bad_response")
    cost, prompt, completion = (
        usage.get(k) for k in ("cost", "prompt_tokens", "completion_tokens")
    )
    prompt_tokens = int(prompt) if isinstance(prompt, int | float) else 0
    completion_tokens = int(completion) if isinstance(completion, int | float) else 0
    reported = float(cost) if isinstance(cost, int | float) else None
    return Completion(
        content=content,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=call_cost(reported, price, prompt_tokens, completion_tokens),
        latency_s=latency_s,
    )


class UpstreamClient:
    """Owns one pooled HTTP client for every upstream (connections are pooled per host);
    close it on shutdown."""

    def __init__(self, *, max_connections_per_host: int = 512) -> None:
        self._limit = max_connections_per_host
        self._client: Client | None = None

    def _http(self) -> Client:
        if self._client is None:
            # No proxy from the environment (as before), no redirects: an LLM API answers
            # where it was asked; idle keep-alive connections are dropped after 30 s.
            self._client = (
                ClientBuilder()
                .http1_only()
                .no_proxy()
                .follow_redirects(False)
                .pool_max_idle_per_host(self._limit)
                .pool_idle_timeout(timedelta(seconds=30))
                .tcp_nodelay(True)
                .build()
            )
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def chat(
        self,
        endpoint: Endpoint,
        api_key: str | None,
        messages: list[ChatMessage],
        *,
        timeout_s: float,
        max_tokens: int,
        response_format: ResponseFormat | None,
        price: Price | None = None,
        stop: tuple[str, ...] | None = None,
    ) -> Completion:
        """POST one chat completion; raise an `UpstreamError` on any failure. The cost is
        the provider's reported cost, else `price` (`call_cost`). `stop` is sent only when
        set."""
        body: dict[str, object] = {
            "model": endpoint.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
        }
        if response_format is not None:
            body["response_format"] = response_format
        if stop:
            body["stop"] = stop
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        request = (
            self._http()
            .post(f"{endpoint.base_url}/chat/completions")
            .headers(headers)
            .body_bytes(orjson.dumps(body))
            .timeout(timedelta(seconds=timeout_s))
            .build()
        )
        start = time.perf_counter()
        try:
            resp = await request.send()
            payload = (await resp.bytes()).to_bytes()
        except RequestTimeoutError:
            raise UpstreamTimeoutError(f"no answer within {timeout_s:g}s") from None
        except RequestError as exc:
            # The message may hold the URL (never a key: the key travels in a header only).
            raise UpstreamError(
                f"connection failed ({type(exc).__name__})", reason="connection"
            ) from None
        status = resp.status
        retry_after = resp.get_header("Retry-After")
        latency = time.perf_counter() - start
        if status == 429:
            raise RateLimitedError(
                "upstream rate limit", status=429, retry_after=_retry_after(retry_after)
            )
        if status >= 400:
            reason = "http_5xx" if status >= 500 else "http_4xx"
            raise UpstreamError(f"upstream answered HTTP {status}", reason=reason, status=status)
        return _parse(payload, latency, price)
