"""A lean async client for OpenAI-compatible chat completions (OpenRouter, Together, Fireworks,
vLLM, the simulator): one pooled aiohttp session per base URL, orjson on both ends.

litellm's request path costs milliseconds of CPU per call, and httpx's pool degrades at high
concurrency; this client is the hot path, so it does the minimum: build the body, POST, read
`choices[0].message.content` and `usage`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from gateway.request.pricing import Endpoint


@dataclass(frozen=True, slots=True)
class Completion:
    content: str
    prompt_tokens: int
    completion_tokens: int
    reported_cost: float | None
    latency_s: float


class UpstreamFailure(Exception):
    """One upstream call failed. `reason` is a short metric label."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from LLM APIs, treated as "unknown"


def _parse(payload: bytes, latency_s: float) -> Completion:
    try:
        body = orjson.loads(payload)
        content = body["choices"][0]["message"]["content"]
        usage: dict[str, Any] = body.get("usage") or {}
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise UpstreamFailure(
            "bad_response", f"unexpected response shape ({type(exc).__name__})"
        ) from None
    if not isinstance(content, str):
        raise UpstreamFailure("bad_response", "message content is not text")
    cost = usage.get("cost")
    return Completion(
        content=content,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        reported_cost=float(cost) if isinstance(cost, int | float) else None,
        latency_s=latency_s,
    )


class UpstreamClient:
    """Owns one `aiohttp.ClientSession` per upstream base URL; close it on shutdown."""

    def __init__(self, *, max_connections_per_host: int = 512) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._limit = max_connections_per_host

    def _session(self, base_url: str) -> aiohttp.ClientSession:
        session = self._sessions.get(base_url)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=0, limit_per_host=self._limit, ttl_dns_cache=300, keepalive_timeout=30
            )
            session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
            self._sessions[base_url] = session
        return session

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)

    async def chat(
        self,
        endpoint: Endpoint,
        api_key: str | None,
        messages: list[dict[str, str]],
        *,
        timeout_s: float,
        max_tokens: int,
        response_format: dict[str, Any] | None,
    ) -> Completion:
        """POST one chat completion; raise `UpstreamFailure` on any failure."""
        body: dict[str, Any] = {
            "model": endpoint.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
        }
        if response_format is not None:
            body["response_format"] = response_format
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        url = f"{endpoint.base_url}/chat/completions"
        start = time.perf_counter()
        try:
            async with self._session(endpoint.base_url).post(
                url,
                data=orjson.dumps(body),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                payload = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except TimeoutError:
            raise UpstreamFailure("timeout", f"no answer within {timeout_s:g}s") from None
        except aiohttp.ClientError as exc:
            raise UpstreamFailure(
                "connection", f"connection failed ({type(exc).__name__})"
            ) from None
        latency = time.perf_counter() - start
        if status == 429:
            raise UpstreamFailure(
                "rate_limited",
                "upstream rate limit",
                status=429,
                retry_after=_retry_after(retry_after),
            )
        if status >= 400:
            reason = "http_5xx" if status >= 500 else "http_4xx"
            raise UpstreamFailure(reason, f"upstream answered HTTP {status}", status=status)
        return _parse(payload, latency)
