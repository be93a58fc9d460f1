"""The upstream simulator, driven through the official OpenAI SDK and raw aiohttp."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import openai
import pytest
import pytest_asyncio
from openai import AsyncOpenAI

from devtools.simulator.server import (
    INVALID_VARIANTS,
    REPAIRABLE_VARIANTS,
    RunningSimulator,
    SimulatorConfig,
    start_simulator,
)
from devtools.simulator.triage import SYNONYMS
from gateway.request.triage import DEFAULT_CATEGORIES, DEFAULT_URGENCIES, Triage, system_prompt

StartSim = Callable[..., Awaitable[RunningSimulator]]
MODEL = "openai/gpt-4o-mini"
KEYS = {"category", "urgency", "topic", "summary"}


@pytest_asyncio.fixture(loop_scope="session")
async def start_sim() -> AsyncIterator[StartSim]:
    """Start simulators on 127.0.0.1 with a free port; all are closed after the test."""
    running: list[RunningSimulator] = []

    async def start(**config: Any) -> RunningSimulator:
        config.setdefault("latency_ms", 0.0)
        sim = await start_simulator(SimulatorConfig(**config), "127.0.0.1", 0)
        running.append(sim)
        return sim

    yield start
    for sim in running:
        await sim.close()


def client(sim: RunningSimulator, **kwargs: Any) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=sim.base_url, api_key="test", max_retries=0, **kwargs)


def messages(review: str) -> list[Any]:
    return [
        {"role": "system", "content": system_prompt()},
        {"role": "user", "content": review},
    ]


async def ask(c: AsyncOpenAI, review: str, model: str = MODEL, **kwargs: Any) -> Any:
    return await c.chat.completions.create(model=model, messages=messages(review), **kwargs)


def strictly_valid(content: str) -> bool:
    try:
        data = json.loads(content)
    except ValueError:
        return False
    return (
        isinstance(data, dict)
        and set(data) == KEYS
        and data["category"] in DEFAULT_CATEGORIES
        and data["urgency"] in DEFAULT_URGENCIES
    )


async def test_normal_answer_is_a_valid_triage_with_usage_and_cost(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with client(sim) as c:
        completion = await ask(
            c, "Love the new widgets, great job!", response_format={"type": "json_object"}
        )
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    content = choice.message.content
    assert content is not None and strictly_valid(content)
    triage = Triage.model_validate_json(content)
    assert triage.category == "Praise"
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 50  # the system prompt counts, ~chars/4
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.model_extra is not None
    expected = (usage.prompt_tokens * 2.5 + usage.completion_tokens * 10.0) / 1e6
    assert usage.model_extra["cost"] == pytest.approx(expected)


async def test_price_table_and_report_cost_off(start_sim: StartSim) -> None:
    sim = await start_sim(prices={"cheap": (0.1, 0.2)})
    async with client(sim) as c:
        usage = (await ask(c, "ok", model="cheap")).usage
        assert usage is not None and usage.model_extra is not None
        expected = (usage.prompt_tokens * 0.1 + usage.completion_tokens * 0.2) / 1e6
        assert usage.model_extra["cost"] == pytest.approx(expected)
    sim = await start_sim(report_cost=False)
    async with client(sim) as c:
        usage = (await ask(c, "ok")).usage
        assert usage is not None and "cost" not in (usage.model_extra or {})


@pytest.mark.parametrize(
    ("review", "category", "urgencies"),
    [
        ("The app crashes every time I open the camera", "Bug Report", {"High", "Critical"}),
        ("Payment failed with an error and I was charged twice", "Bug Report", {"Critical"}),
        ("Please add dark mode, it would be nice", "Feature Request", {"Low"}),
        ("How do I export my notes?", "Question", {"Low", "Medium"}),
        ("Worst app ever, a waste of money and too expensive", "Complaint", {"Medium", "High"}),
        ("Hmm.", "Other", set(DEFAULT_URGENCIES)),
    ],
)
async def test_keyword_heuristics(
    start_sim: StartSim, review: str, category: str, urgencies: set[str]
) -> None:
    sim = await start_sim()
    async with client(sim) as c:
        content = (await ask(c, review)).choices[0].message.content
    assert content is not None
    triage = Triage.model_validate_json(content)
    assert triage.category == category
    assert triage.urgency in urgencies
    assert 1 <= len(triage.topic.split()) <= 3
    assert triage.topic == triage.topic.title()


async def test_invalid_rate_one_yields_only_broken_answers(start_sim: StartSim) -> None:
    sim = await start_sim(invalid_rate=1.0, seed=7)
    seen: set[str] = set()
    async with client(sim) as c:
        for i in range(60):
            raw = await c.chat.completions.with_raw_response.create(
                model=MODEL, messages=messages(f"The app crashes on screen {i}")
            )
            variant = raw.headers["x-simulator-fault"].removeprefix("invalid:")
            content = raw.parse().choices[0].message.content
            assert content is not None
            assert not strictly_valid(content), (variant, content)
            seen.add(variant)
            if variant == "fenced":  # repairable: the JSON inside the fences is fine
                match = re.search(r"```json\n(.*)\n```", content, re.S)
                assert match is not None and strictly_valid(match.group(1))
            if variant == "synonym":  # repairable: a known synonym or the lower-cased label
                category = json.loads(content)["category"]
                assert category in {c.lower() for c in DEFAULT_CATEGORIES} | set(SYNONYMS.values())
            if variant == "bad_category":
                assert json.loads(content)["category"] == "Banana"
            if variant == "missing_urgency":
                assert set(json.loads(content)) == KEYS - {"urgency"}
    assert seen == set(INVALID_VARIANTS)
    assert set(REPAIRABLE_VARIANTS) <= seen
    async with aiohttp.ClientSession() as http, http.get(f"{sim.url}/_stats") as resp:
        stats = await resp.json()
    assert stats["faults"] == {"invalid": 60}
    assert sum(stats["invalid_variants"].values()) == 60


async def test_error_rate_one_gives_internal_server_error(start_sim: StartSim) -> None:
    sim = await start_sim(error_rate=1.0)
    async with client(sim) as c:
        with pytest.raises(openai.InternalServerError) as info:
            await ask(c, "hello")
    assert info.value.status_code == 500
    assert info.value.body is not None


async def test_rate_limit_gives_429_with_retry_after(start_sim: StartSim) -> None:
    sim = await start_sim(rate_limit_rate=1.0)
    async with client(sim) as c:
        with pytest.raises(openai.RateLimitError) as info:
            await ask(c, "hello")
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "1"


async def test_hang_exceeds_client_timeout(start_sim: StartSim) -> None:
    sim = await start_sim(timeout_rate=1.0, hang_s=2.0)
    start = time.perf_counter()
    async with client(sim, timeout=0.5) as c:
        with pytest.raises(openai.APITimeoutError):
            await ask(c, "hello")
    assert time.perf_counter() - start < 1.5
    async with aiohttp.ClientSession() as http, http.get(f"{sim.url}/_stats") as resp:
        assert (await resp.json())["faults"] == {"timeout": 1}


async def test_latency_is_applied(start_sim: StartSim) -> None:
    sim = await start_sim(latency_ms=100.0)
    async with client(sim) as c:
        await ask(c, "warm up the connection")
        start = time.perf_counter()
        await ask(c, "hello")
        assert time.perf_counter() - start >= 0.099


async def test_control_switches_faults_for_one_model_only(start_sim: StartSim) -> None:
    sim = await start_sim(seed=1)
    async with client(sim) as c, aiohttp.ClientSession(base_url=sim.url) as http:
        await ask(c, "hello", model="baseline")
        await ask(c, "hello", model="candidate")
        patch = {"model_overrides": {"candidate": {"error_rate": 1.0}}}
        async with http.post("/_control", json=patch) as resp:
            assert resp.status == 200
            body = await resp.json()
            assert body["model_overrides"]["candidate"]["error_rate"] == 1.0
        for _ in range(5):
            await ask(c, "hello", model="baseline")
            with pytest.raises(openai.InternalServerError):
                await ask(c, "hello", model="candidate")
        async with http.get("/_stats") as resp:
            stats = await resp.json()
        assert stats["requests"] == 12
        assert stats["by_model"] == {"baseline": 6, "candidate": 6}
        assert stats["faults"] == {"error": 5}
        async with http.post("/_control", json={"model_overrides": {"candidate": None}}) as resp:
            assert resp.status == 200
        await ask(c, "hello", model="candidate")
        async with http.post("/_control", json={"error_rate": 2.0}) as resp:
            assert resp.status == 400
            assert "error_rate" in (await resp.json())["error"]["message"]
        async with http.post("/_control", json={"nonsense": 1}) as resp:
            assert resp.status == 400
        await ask(c, "still healthy")  # a rejected patch changes nothing
        async with http.post("/_reset") as resp:
            assert resp.status == 200
        async with http.get("/_stats") as resp:
            assert (await resp.json())["requests"] == 0
        async with http.get("/v1/models") as resp:
            ids = [m["id"] for m in (await resp.json())["data"]]
        assert {"baseline", "candidate", MODEL} <= set(ids)
        async with http.get("/healthz") as resp:
            assert resp.status == 200


async def test_auth_and_malformed_requests(start_sim: StartSim) -> None:
    sim = await start_sim(require_key=True)
    url = f"{sim.url}/v1/chat/completions"
    body = {"model": MODEL, "messages": messages("hi")}
    auth = {"Authorization": "Bearer test"}
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
            async with http.post(url, json=body, headers=headers) as resp:
                assert resp.status == 401
                assert set((await resp.json())["error"]) >= {"message", "type", "code"}
        bad_bodies: list[Any] = [b"{not json", b"[]", b'{"model": "x"}', b'{"messages": []}']
        for raw in bad_bodies:
            async with http.post(url, data=raw, headers=auth) as resp:
                assert resp.status == 400
                assert set((await resp.json())["error"]) >= {"message", "type", "code"}
    async with client(sim) as c:
        with pytest.raises(openai.BadRequestError, match="streaming not supported by simulator"):
            await ask(c, "hi", stream=True)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        SimulatorConfig(error_rate=1.5)
    with pytest.raises(ValueError, match="latency_ms"):
        SimulatorConfig(latency_ms=-1)
    with pytest.raises(ValueError, match="sum"):
        SimulatorConfig(error_rate=0.6, invalid_rate=0.6)


async def test_throughput(start_sim: StartSim) -> None:
    """Not a timing assertion: prints req/s for 2,000 requests at concurrency 64."""
    sim = await start_sim(latency_ms=0.0)
    url = f"{sim.url}/v1/chat/completions"
    body = json.dumps({"model": MODEL, "messages": messages("The app crashes on login")})
    headers = {"Authorization": "Bearer test", "Content-Type": "application/json"}
    total, concurrency = 2000, 64
    todo = iter(range(total))
    ok = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal ok
        for _ in todo:
            async with http.post(url, data=body, headers=headers) as resp:
                await resp.read()
                ok += resp.status == 200

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    assert ok == total
    rate = total / elapsed
    print(f"\nsimulator: {rate:,.0f} req/s ({total} requests, concurrency {concurrency})")
