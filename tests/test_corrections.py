"""Corrections, pair listings and erasure through the real gateway (uvicorn subprocess), a real
Redis and the upstream simulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from gateway.infra import redis_keys
from gateway.pairs.record import PairRecord
from gateway.request.triage import DEFAULT_TAXONOMY
from tests.servers import Gateway, Simulator, ab_routes, correction, run_gateway
from training.importer import write_records

STREAM = "triage:pairs"
REVIEWER_KEY = "reviewer-key-0123"
ADMIN_KEY = "admin-key-0123"
KEYS_ENV = {"GATEWAY_REVIEWER_KEYS": REVIEWER_KEY, "GATEWAY_ADMIN_KEYS": ADMIN_KEY}
T0 = 1_750_000_000.0


@pytest.fixture
def gw(tmp: Path, sim: Simulator, redis_url: str) -> Iterator[Gateway]:
    with run_gateway(
        tmp, routes=ab_routes(sim.base_url), redis_url=redis_url, env=KEYS_ENV
    ) as gateway:
        yield gateway


def wait_pair(client: httpx.Client, request_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The pair log writes in the background: poll until the pair is readable."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = client.get(f"/v1/pairs/{request_id}")
        if r.status_code == 200:
            data: dict[str, Any] = r.json()
            return data
        time.sleep(0.05)
    raise AssertionError(f"pair {request_id} was not logged within {timeout_s}s")


def record(i: int, category: str, **extra: Any) -> dict[str, Any]:
    """A served pair record as the classifier logs it."""
    rec: dict[str, Any] = {
        "request_id": f"req-{i:03d}",
        "served_request_id": None,
        "shadow": False,
        "review_id": f"rev-{i:03d}",
        "text": f"Review number {i}: something about the app",
        "app": "Alpha" if i < 15 else "Beta",
        "rating": 1 + i % 5,
        "experiment": "triage",
        "variant": "control" if i % 2 == 0 else "candidate",
        "model": "openrouter/openai/gpt-4o",
        "triage": {
            "category": category,
            "urgency": "Medium",
            "topic": f"Topic {i}",
            "summary": f"Summary of review {i}.",
        },
        "raw_output": None,
        "attempts": 1,
        "fallback_from": None,
        "latency_ms": 12.0,
        "cost_usd": 0.0,
        "prompt_tokens": 10,
        "completion_tokens": 10,
        "confidence": 0.9,
        "ts": T0 + i,
    }
    rec.update(extra)
    return rec


def shadow_of(rec: dict[str, Any], category: str) -> dict[str, Any]:
    out = dict(rec)
    out.update(
        request_id=f"{rec['request_id']}:shadow",
        served_request_id=rec["request_id"],
        shadow=True,
        variant="candidate",
        triage={**rec["triage"], "category": category},
        ts=rec["ts"] + 0.5,
    )
    return out


DISAGREE = (2, 9, 20)
LOW_CONFIDENCE = {8: 0.2, 3: 0.5, 11: 0.55}
RARE = (5, 17)


def seed_records() -> list[dict[str, Any]]:
    """30 served pairs: 3 shadow disagreements, 1 agreement, 3 low-confidence answers and a
    rare class (Question, 2 of 30)."""
    cats = ("Bug Report", "Feature Request", "Complaint")
    out: list[dict[str, Any]] = []
    for i in range(30):
        category = "Question" if i in RARE else cats[i % 3]
        rec = record(i, category, confidence=LOW_CONFIDENCE.get(i, 0.9))
        out.append(rec)
        if i in DISAGREE:
            out.append(shadow_of(rec, "Praise" if category != "Praise" else "Other"))
        if i == 4:
            out.append(shadow_of(rec, category))
    return out


async def seed(redis_url: str, records: list[dict[str, Any]]) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        await write_records(client, STREAM, [PairRecord.from_dict(r) for r in records])
    finally:
        await client.aclose()


def all_pages(client: httpx.Client, limit: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = client.get("/v1/pairs", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def test_corrections_api(gw: Gateway) -> None:
    with gw.client() as client:
        served = [
            client.post(
                "/v1/classify",
                json={"text": text, "review_id": f"live-{i}", "app": "Shop", "rating": 2},
            ).json()
            for i, text in enumerate(
                [
                    "The app crashes every time I open the cart",
                    "Please add a dark mode",
                    "How do I reset my password?",
                ]
            )
        ]
        pair = wait_pair(client, served[0]["request_id"])
        assert pair["text"].startswith("The app crashes") and pair["corrections"] == []
        model = pair["triage"]
        new_category = next(c for c in DEFAULT_TAXONOMY.categories if c != model["category"])

        body = {
            "request_id": pair["request_id"],
            "category": new_category.upper(),  # labels are matched case-insensitively
            "urgency": "high",
            "corrected_by": "alice@example.com",
            "note": "n" * 2000,
        }
        r = client.post("/v1/corrections", json=body)
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["category"] == new_category and first["urgency"] == "High"
        assert first["original_category"] == model["category"]
        assert first["original_urgency"] == model["urgency"]
        assert first["changed"] is True and first["variant"] == pair["variant"]
        assert first["summary"] == model["summary"] and first["topic"] == model["topic"]
        assert first["review_id"] == "live-0" and first["corrected_by"] == "alice@example.com"
        assert first["id"] and first["created_at"]

        # by review_id: the latest served pair of that review; a confirmation is changed=false
        wait_pair(client, served[1]["request_id"])
        answer = served[1]["triage"]
        r = client.post(
            "/v1/corrections",
            json={
                "review_id": "live-1",
                "category": answer["category"],
                "urgency": answer["urgency"],
                "corrected_by": "bob",
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["request_id"] == served[1]["request_id"]
        assert r.json()["changed"] is False

        # re-correcting appends: history kept, the last one is the current label
        again = {
            "request_id": pair["request_id"],
            "category": model["category"],
            "urgency": "Low",
            "topic": "Cart Crash",
            "summary": "The cart crashes on open.",
            "corrected_by": "carol",
        }
        assert client.post("/v1/corrections", json=again).status_code == 201
        detail = client.get(f"/v1/pairs/{pair['request_id']}").json()
        history = detail["corrections"]
        assert [c["corrected_by"] for c in history] == ["alice@example.com", "carol"]
        assert history[-1]["topic"] == "Cart Crash" and history[-1]["changed"] is True

        # errors, each in the one JSON shape
        r = client.post("/v1/corrections", json={**body, "request_id": "no-such-request"})
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        r = client.post(
            "/v1/corrections",
            json={**again, "request_id": None, "review_id": "no-such-review"},
        )
        assert r.status_code == 404 and "no-such-review" in r.json()["detail"]
        r = client.post("/v1/corrections", json={**again, "category": "Spam"})
        assert r.status_code == 422 and r.json()["error"] == "invalid_request"
        for name in DEFAULT_TAXONOMY.categories:
            assert name in r.json()["detail"]
        r = client.post("/v1/corrections", json={**again, "urgency": "Whenever"})
        assert r.status_code == 422
        assert all(u in r.json()["detail"] for u in DEFAULT_TAXONOMY.urgencies)
        r = client.post("/v1/corrections", json={**body, "note": "n" * 2001})
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
        assert "note" in r.json()["detail"]
        r = client.post("/v1/corrections", json={**again, "review_id": "live-0"})
        assert r.status_code == 422 and "exactly one" in r.json()["detail"]
        r = client.post("/v1/corrections", json={**again, "request_id": None})
        assert r.status_code == 422
        r = client.post("/v1/corrections", json={**again, "topic": "x" * 61})
        assert r.status_code == 422 and "topic" in r.json()["detail"]
        assert len(client.get(f"/v1/pairs/{pair['request_id']}").json()["corrections"]) == 2
        assert client.get("/v1/pairs/no-such-request").status_code == 404

        lines = client.get("/metrics").text.splitlines()
        counted = [ln for ln in lines if ln.startswith("triage_gateway_corrections_total{")]
        assert sum(float(ln.split()[-1]) for ln in counted if 'changed="true"' in ln) == 2
        assert sum(float(ln.split()[-1]) for ln in counted if 'changed="false"' in ln) == 1

    no_key = httpx.post(f"{gw.url}/v1/corrections", json=again, timeout=5)
    assert no_key.status_code == 401
    assert httpx.get(f"{gw.url}/v1/pairs", timeout=5).status_code == 401


async def test_listing_queue_order_filters_and_cursor(gw: Gateway, redis_url: str) -> None:
    await seed(redis_url, seed_records())
    with gw.client() as client:
        everything = all_pages(client, 7)
        ids = [p["request_id"] for p in everything]
        assert ids == [f"req-{i:03d}" for i in reversed(range(30))]  # newest first, no shadows
        assert all(not p["corrected"] and p["correction"] is None for p in everything)

        # the review queue: disagreements, low confidence (lowest first), rare class, the rest
        queue = [p["request_id"] for p in all_pages(client, 4, status="uncorrected")]
        first = [*(f"req-{i:03d}" for i in (20, 9, 2)), "req-008", "req-003", "req-011"]
        rare = ["req-017", "req-005"]
        taken = {*first, *rare}
        rest = [f"req-{i:03d}" for i in reversed(range(30)) if f"req-{i:03d}" not in taken]
        assert queue == [*first, *rare, *rest]
        page = client.get("/v1/pairs", params={"status": "uncorrected", "limit": 9}).json()
        reasons = [p["queue_reason"] for p in page["items"]]
        assert reasons == ["shadow_disagreement"] * 3 + ["low_confidence"] * 3 + [
            "rare_class"
        ] * 2 + ["recent"]

        disagreements = client.get("/v1/pairs", params={"status": "disagreement"}).json()
        assert [p["request_id"] for p in disagreements["items"]] == [
            "req-020",
            "req-009",
            "req-002",
        ]
        assert disagreements["items"][0]["shadow_answer"]["triage"]["category"] == "Praise"

        for rid in ("req-029", "req-009", "req-004"):
            r = client.post("/v1/corrections", json=correction("Other", request_id=rid))
            assert r.status_code == 201, r.text
        corrected = all_pages(client, 2, status="corrected")
        assert [p["request_id"] for p in corrected] == ["req-029", "req-009", "req-004"]
        assert all(p["correction"]["category"] == "Other" for p in corrected)
        queue_after = [p["request_id"] for p in all_pages(client, 50, status="uncorrected")]
        assert queue_after == [q for q in queue if q not in {"req-029", "req-009", "req-004"}]

        beta_candidates = all_pages(client, 3, variant="candidate", app="Beta")
        assert [p["request_id"] for p in beta_candidates] == [
            f"req-{i:03d}" for i in reversed(range(15, 30)) if i % 2 == 1
        ]
        questions = all_pages(client, 50, category="Question", status="uncorrected")
        assert [p["request_id"] for p in questions] == rare

        for bad in ({"limit": 0}, {"limit": 201}, {"cursor": "garbage"}, {"status": "nope"}):
            r = client.get("/v1/pairs", params=bad)
            assert r.status_code == 422, (bad, r.text)
            assert set(r.json()) == {"error", "detail"}
        r = client.get("/v1/pairs", params={"status": "uncorrected", "cursor": "1-0"})
        assert r.status_code == 422


async def test_erasure_removes_pairs_and_corrections(gw: Gateway, redis_url: str) -> None:
    records = seed_records()
    await seed(redis_url, records)
    # a second, later pair of review rev-002 (a re-classification)
    await seed(redis_url, [record(99, "Bug Report", review_id="rev-002", ts=T0 + 99)])
    with gw.client() as client:
        r = client.post("/v1/corrections", json=correction("Praise", review_id="rev-002"))
        assert r.status_code == 201 and r.json()["request_id"] == "req-099"  # the latest
        for target in ("req-002", "req-002:shadow"):  # a shadow pair is judged via its served one
            body = correction("Other", request_id=target)
            r = client.post("/v1/corrections", json=body)
            assert r.status_code == 201 and r.json()["request_id"] == "req-002"

        assert client.delete("/v1/reviews/rev-002").status_code == 401  # API key is not admin
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        r = client.delete("/v1/reviews/rev-002", headers=admin)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "review_id": "rev-002",
            "request_ids": ["req-002", "req-002:shadow", "req-099"],
            "pairs_deleted": 3,
            "corrections_deleted": 3,
        }
        for rid in ("req-002", "req-002:shadow", "req-099"):
            assert client.get(f"/v1/pairs/{rid}").status_code == 404
        listed = {p["request_id"] for p in all_pages(client, 200)}
        assert "req-002" not in listed and "req-099" not in listed and len(listed) == 29
        assert client.get("/v1/pairs/req-003").status_code == 200
        queue = {p["request_id"] for p in all_pages(client, 200, status="uncorrected")}
        assert "req-002" not in queue and "req-099" not in queue
        r = client.post("/v1/corrections", json=body)
        assert r.status_code == 404
        again = client.delete("/v1/reviews/rev-002", headers=admin).json()
        assert again["pairs_deleted"] == 0 and again["corrections_deleted"] == 0

    sync = redis.Redis.from_url(redis_url)
    for rid in ("req-002", "req-002:shadow", "req-099"):
        assert not sync.exists(redis_keys.corrections(rid))
        assert sync.hget(redis_keys.pair_index(), rid) is None
        assert sync.zscore(redis_keys.corrected_set(), rid) is None
    assert not sync.exists(redis_keys.review_pairs("rev-002"))
    entries: Any = sync.xrange(STREAM)
    texts = [f[b"data"] for _, f in entries]
    assert not any(b"Review number 2:" in t or b"Review number 99:" in t for t in texts)
    sync.close()
