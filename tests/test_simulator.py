"""The upstream simulator, driven through the official OpenAI SDK and raw aiohttp."""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
import openai
import pytest
import pytest_asyncio
from openai import AsyncOpenAI

from devtools.simulator.profiles import (
    BUILTIN_PROFILES,
    DEFAULT_PROFILE,
    Latency,
    ModelProfile,
    load_profile_file,
)
from devtools.simulator.server import (
    INVALID_VARIANTS,
    REPAIRABLE_VARIANTS,
    RunningSimulator,
    SimulatorConfig,
    start_simulator,
)
from devtools.simulator.triage import SYNONYMS, heuristic_triage
from gateway.request.triage import (
    DEFAULT_CATEGORIES,
    DEFAULT_URGENCIES,
    Triage,
    system_prompt,
    user_prompt,
)
from tests.servers import clean_env, free_port, run_module, run_simulator

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


@pytest.mark.parametrize(
    ("fault", "error", "status", "retry_after"),
    [
        ({"error_rate": 1.0}, openai.InternalServerError, 500, None),
        ({"rate_limit_rate": 1.0}, openai.RateLimitError, 429, "1"),
    ],
    ids=["error_rate", "rate_limit"],
)
async def test_fault_gives_its_status_with_a_body(
    start_sim: StartSim,
    fault: dict[str, float],
    error: type[openai.APIStatusError],
    status: int,
    retry_after: str | None,
) -> None:
    """An error is a 500 and a rate limit a 429 that says when to retry (Retry-After)."""
    sim = await start_sim(**fault)
    async with client(sim) as c:
        with pytest.raises(error) as info:
            await ask(c, "hello")
    assert info.value.status_code == status
    assert info.value.body is not None
    assert info.value.response.headers.get("retry-after") == retry_after


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


# --- per-model profiles ------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
SEED_ROWS = [
    json.loads(line)
    for line in (REPO / "gateway" / "data" / "seed_reviews.jsonl").read_text().splitlines()
    if line.strip()
]
GPT4O, FT, WEAK_MODEL, PLAIN = (
    "openai/gpt-4o",
    "acme/llama-3-8b-triage-ft",
    "acme/llama-3-1b-triage-weak",
    "openai/gpt-4o-mini",
)


def seed_message(row: dict[str, Any]) -> str:
    return user_prompt(row["text"], row.get("app"), row.get("rating"))


async def answers(sim: RunningSimulator, model: str, rows: list[dict[str, Any]]) -> list[Any]:
    """One completion per row (None for an HTTP 500), at most 16 in flight."""
    sem = asyncio.Semaphore(16)
    async with client(sim) as c:

        async def one(row: dict[str, Any]) -> Any:
            async with sem:
                try:
                    return await c.chat.completions.create(
                        model=model, messages=[{"role": "user", "content": seed_message(row)}]
                    )
                except openai.InternalServerError:
                    return None

        return list(await asyncio.gather(*(one(r) for r in rows)))


def category_of(completion: Any) -> str | None:
    if completion is None:
        return None
    content = completion.choices[0].message.content
    return json.loads(content)["category"] if strictly_valid(content) else None


async def test_profiles_give_each_model_its_accuracy_price_and_faults(start_sim: StartSim) -> None:
    rows = SEED_ROWS[:200]
    labels = [r["category"] for r in rows]
    sim = await start_sim(seed=3)
    got = {m: await answers(sim, m, rows) for m in (GPT4O, FT, WEAK_MODEL, PLAIN)}

    def accuracy(model: str) -> float:
        cats = [category_of(c) for c in got[model]]
        valid = [(c, gold) for c, gold in zip(cats, labels, strict=True) if c is not None]
        return float(sum(c == gold for c, gold in valid) / len(valid))

    assert 0.85 <= accuracy(GPT4O) <= 0.95
    assert accuracy(FT) >= 0.94 and accuracy(FT) > accuracy(GPT4O)
    assert 0.65 <= accuracy(WEAK_MODEL) <= 0.85
    errors = sum(c is None for c in got[WEAK_MODEL])
    invalid = sum(category_of(c) is None for c in got[WEAK_MODEL]) - errors
    assert 8 <= invalid <= 40 and errors <= 10  # invalid_rate 0.1, error_rate 0.01 of 200
    assert all(c is not None for m in (GPT4O, FT, PLAIN) for c in got[m])
    wrong = {
        m: {i for i, c in enumerate(got[m]) if category_of(c) != labels[i]} for m in (GPT4O, FT)
    }
    assert wrong[GPT4O] != wrong[FT] and wrong[GPT4O] - wrong[FT]  # they err on other reviews
    for i, row in enumerate(rows):
        answer = json.loads(got[GPT4O][i].choices[0].message.content)
        Triage.model_validate(answer)
        if i in wrong[GPT4O]:
            assert (
                answer["category"] in DEFAULT_CATEGORIES and answer["category"] != row["category"]
            )
        else:  # right: the label, topic and summary included
            assert answer == {k: row[k] for k in KEYS}
        # a model without a profile answers with the keyword heuristics
        assert json.loads(got[PLAIN][i].choices[0].message.content) == heuristic_triage(
            seed_message(row)
        )
    for model, (pin, pout) in {GPT4O: (2.5, 10.0), FT: (0.2, 0.2), PLAIN: (2.5, 10.0)}.items():
        for completion in got[model]:
            usage = completion.usage
            expected = (usage.prompt_tokens * pin + usage.completion_tokens * pout) / 1e6
            assert usage.model_extra["cost"] == pytest.approx(expected)
    async with aiohttp.ClientSession() as http, http.get(f"{sim.url}/_stats") as resp:
        stats = await resp.json()
    assert stats["profiles"] == {
        GPT4O: "gpt-4o-like",
        FT: "fine-tuned",
        WEAK_MODEL: "weak",
        PLAIN: "default",
    }
    assert stats["labelled"][GPT4O] == {
        "correct": 200 - len(wrong[GPT4O]),
        "wrong": len(wrong[GPT4O]),
    }
    assert PLAIN not in stats["labelled"]
    total = sum(c.usage.model_extra["cost"] for c in got[FT])
    assert stats["usage"][FT]["cost_usd"] == pytest.approx(total)

    # Reproducible: another simulator, another seed, the same answers per (model, review).
    again = await start_sim(seed=99)
    for model in (GPT4O, FT):
        repeat = await answers(again, model, rows[:50])
        assert [c.choices[0].message.content for c in repeat] == [
            c.choices[0].message.content for c in got[model][:50]
        ]


def test_profile_latency_is_lognormal_with_the_median_and_p95_given() -> None:
    slow = ModelProfile(name="slow", match=("m",), latency=Latency(median_ms=100, p95_ms=300))
    config = SimulatorConfig(profiles=(slow,), latency_scale=0.5)
    rng = random.Random(1)
    faults = config.faults_for("m")
    draws = np.array([faults.delay(rng) for _ in range(20_000)])
    assert np.median(draws) == pytest.approx(0.050, rel=0.03)
    assert np.quantile(draws, 0.95) == pytest.approx(0.150, rel=0.05)
    # A fixed latency (benchmarks, tests) replaces the profiles' distributions.
    fixed = SimulatorConfig(profiles=(slow,), latency_ms=5.0).faults_for("m")
    assert {fixed.delay(rng) for _ in range(100)} == {0.005}
    assert SimulatorConfig().faults_for("unknown-model").delay(rng) == 0.05


async def test_profile_latency_is_served(start_sim: StartSim) -> None:
    sim = await start_sim(latency_ms=None, latency_scale=0.25)  # GPT-4o-like: median ~100 ms
    start = time.perf_counter()
    replies = await answers(sim, GPT4O, SEED_ROWS[:32])
    assert len(replies) == 32
    assert time.perf_counter() - start >= 0.1  # two rounds of 16, each at least one draw


def test_profile_files_and_their_errors(tmp_path: Path) -> None:
    example = load_profile_file(REPO / "examples" / "simulator-profiles.yaml")
    assert example.profiles == BUILTIN_PROFILES and not example.builtin
    assert example.default == DEFAULT_PROFILE
    cases = {
        "profiles: [{name: a, accuracy: 1.5}]": "accuracy must be a fraction",
        "profiles: [{name: a, acuracy: 0.5}]": "profiles.0.acuracy: unknown field",
        "profiles: [{name: a, latency: {median_ms: 300, p95_ms: 100}}]": "median_ms <= p95_ms",
        "latency_scale: -1": "latency_scale must be >= 0",
        "profiles: [": "not valid YAML",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(ValueError, match=re.escape(message)) as info:
            load_profile_file(bad)
        assert str(bad) in str(info.value)


async def test_control_sets_profiles_and_labels(start_sim: StartSim, tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    review = "The quokka filter makes my cat look purple"
    labels.write_text(json.dumps({"text": review, "category": "Other", "urgency": "Low"}) + "\n")
    sim = await start_sim()
    perfect = {
        "name": "perfect",
        "match": ["acme/*"],
        "accuracy": 1.0,
        "price": {"input_per_1m": 1.0, "output_per_1m": 0.0},
    }
    async with client(sim) as c, aiohttp.ClientSession(base_url=sim.url) as http:
        patch = {"profiles": [perfect], "label_files": [str(labels)]}
        async with http.post("/_control", json=patch) as resp:
            assert resp.status == 200, await resp.text()
        completion = await ask(c, f"  {review.upper()} ", model="acme/x")  # matched by text
        assert completion.choices[0].message.content is not None
        answer = json.loads(completion.choices[0].message.content)
        assert (answer["category"], answer["urgency"]) == ("Other", "Low")
        usage = completion.usage
        assert usage is not None and usage.model_extra is not None
        assert usage.model_extra["cost"] == pytest.approx(usage.prompt_tokens / 1e6)
        for bad in (
            {"label_files": [str(tmp_path / "missing.jsonl")]},
            {"profiles": [{"name": "x", "accuracy": 2}]},
        ):
            async with http.post("/_control", json=bad) as resp:
                assert resp.status == 400
                assert "missing.jsonl" in str(bad) or "accuracy" in await resp.text()
        completion = await ask(c, review, model="acme/x")  # the rejected patches changed nothing
        assert completion.choices[0].message.content is not None
        assert json.loads(completion.choices[0].message.content)["category"] == "Other"


# --- the `simulate` and `serve` commands ----------------------------------------------------


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_module("cli", *args, env=clean_env(), timeout=timeout)


def test_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in (
            ("simulate", "--port", str(port)),
            (
                "serve",
                "--port",
                str(port),
                "--routes",
                str(REPO / "examples" / "ab-simulator.yaml"),
            ),
        ):
            proc = cli(*command, "--host", "127.0.0.1")
            assert proc.returncode == 2, proc.stderr
            assert proc.stderr == f"error: port {port} is in use\n"


def test_simulate_reports_bad_options_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "profiles.yaml"
    bad.write_text("profiles: [{name: a, accuracy: 1.5}]\n")
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"text": "no category"}\n')
    for args, message in (
        (("--profiles", str(bad)), "accuracy must be a fraction"),
        (("--labels", str(labels)), "line 1: needs a non-empty 'text' and 'category'"),
        (("--labels", str(tmp_path / "none.jsonl")), "cannot read labels"),
    ):
        proc = cli("simulate", "--port", str(free_port()), *args)
        assert proc.returncode == 2
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert message in proc.stderr


def test_simulate_command_takes_profiles_labels_and_port(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(
        "builtin: false\nlatency_scale: 0\n"
        "profiles:\n  - {name: sure, match: ['acme/*'], accuracy: 1.0,"
        " latency: {median_ms: 5000, p95_ms: 9000}, price: {input_per_1m: 0, output_per_1m: 1}}\n"
    )
    labels = tmp_path / "labels.jsonl"
    review = "Zebra stripes everywhere since the patch"
    labels.write_text(json.dumps({"text": review, "category": "Complaint", "urgency": "High"}))
    with run_simulator(
        "--profiles", str(profiles), "--labels", str(labels), "--no-seed-labels"
    ) as sim:
        body = {"model": "acme/m", "messages": [{"role": "user", "content": review}]}
        reply = httpx.post(f"{sim.base_url}/chat/completions", json=body, timeout=5).json()
        answer = json.loads(reply["choices"][0]["message"]["content"])
        assert (answer["category"], answer["urgency"]) == ("Complaint", "High")
        assert reply["usage"]["cost"] == pytest.approx(reply["usage"]["completion_tokens"] / 1e6)
        # --no-seed-labels: a seed review gets the keyword heuristics; built-ins dropped
        row = SEED_ROWS[0]
        body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": row["text"]}]}
        reply = httpx.post(f"{sim.base_url}/chat/completions", json=body, timeout=5).json()
        content = json.loads(reply["choices"][0]["message"]["content"])
        assert content == heuristic_triage(row["text"])
        assert httpx.get(f"{sim.url}/_stats", timeout=5).json()["profiles"] == {
            "acme/m": "sure",
            "openai/gpt-4o": "default",
        }
