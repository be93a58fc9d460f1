"""A lean async client for OpenAI-compatible chat completions (OpenRouter, Together, Fireworks,
vLLM, the simulator): keep-alive connections per base URL (`gateway.request.http1`), orjson on
both ends.

litellm's request path costs milliseconds of CPU per call, httpx's pool degrades at high
concurrency, and aiohttp spends about three times the CPU of `http1` per call. pyreqwest
spends about half of aiohttp's, but cancelling its call does not abort the request (a client
that goes away would keep the upstream generating, and paid for, until the timeout). This
client is the hot path, so it does the minimum: build the body, POST, read
`choices[0].message.content` and `usage`. Failures are raised as `gateway.errors.UpstreamError`
subclasses, the type the API answers with; the cost of a call is computed here, once
(`gateway.request.pricing.call_cost`), and carried along from then on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TypedDict

import orjson

from gateway.errors import RateLimitedError, UpstreamError, UpstreamTimeoutError
from gateway.experiments.config import Price
from gateway.request.http1 import HttpError, Origin, encode_headers
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
    """Owns the keep-alive connections to each upstream origin (`gateway.request.http1`);
    close it on shutdown."""

    def __init__(self, *, max_connections_per_host: int = 512) -> None:
        self._origins: dict[str, Origin] = {}
        self._headers: dict[str | None, bytes] = {}
        self._limit = max_connections_per_host

    def _origin(self, base_url: str) -> Origin:
        origin = self._origins.get(base_url)
        if origin is None:
            origin = Origin(base_url, limit=self._limit)
            self._origins[base_url] = origin
        return origin

    def _header_block(self, api_key: str | None) -> bytes:
        block = self._headers.get(api_key)
        if block is None:
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            if api_key:
                headers["Authorization"] = f"Bearer {api_key}"
            block = encode_headers(headers)
            if len(self._headers) > 64:  # keys rotate rarely; never grow without bound
                self._headers.clear()
            self._headers[api_key] = block
        return block

    async def close(self) -> None:
        origins, self._origins = list(self._origins.values()), {}
        for origin in origins:
            origin.close()

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
        start = time.perf_counter()
        try:
            origin = self._origin(endpoint.base_url)
            resp = await origin.post(
                "/chat/completions",
                orjson.dumps(body),
                self._header_block(api_key),
                timeout_s=timeout_s,
            )
        except TimeoutError:
            raise UpstreamTimeoutError(f"no answer within {timeout_s:g}s") from None
        except HttpError as exc:
            raise UpstreamError(f"connection failed ({exc})", reason="connection") from None
        except ValueError as exc:  # a base URL or key that cannot make a request
            raise UpstreamError(
                f"invalid upstream request ({type(exc).__name__})", reason="connection"
            ) from None
        payload, status = resp.body, resp.status
        retry_after = resp.headers.get("retry-after")
        latency = time.perf_counter() - start
        if status == 429:
            raise RateLimitedError(
                "upstream rate limit", status=429, retry_after=_retry_after(retry_after)
            )
        if status >= 400:
            reason = "http_5xx" if status >= 500 else "http_4xx"
            raise UpstreamError(f"upstream answered HTTP {status}", reason=reason, status=status)
        return _parse(payload, latency, price)
