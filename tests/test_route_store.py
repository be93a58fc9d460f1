"""Weights in Redis: a change through the admin API reaches every replica within 5 s."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.servers import Simulator, ab_routes, run_gateway


def shares(url: str, headers: dict[str, str]) -> dict[str, float]:
    routes = httpx.get(f"{url}/v1/routes", headers=headers, timeout=5).json()
    return {v["name"]: v["share"] for v in routes["experiments"][0]["variants"]}


def test_weight_change_reaches_three_replicas_and_stickiness_agrees(
    tmp: Path, sim: Simulator, redis_url: str
) -> None:
    env = {"GATEWAY_ADMIN_KEYS": "admin-key"}
    routes = ab_routes(sim.base_url)
    with (
        run_gateway(tmp / "a", routes=routes, redis_url=redis_url, env=env) as a,
        run_gateway(tmp / "b", routes=routes, redis_url=redis_url, env=env) as b,
        run_gateway(tmp / "c", routes=routes, redis_url=redis_url, env=env) as c,
    ):
        admin = {"Authorization": "Bearer admin-key"}
        r = httpx.put(
            f"{a.url}/admin/experiments/triage/weights",
            headers=admin,
            json={"weights": {"candidate": 0.5, "control": 0.5}, "reason": "ramp"},
            timeout=5,
        )
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 1 and r.json()["previous"] == {
            "control": 0.9,
            "candidate": 0.1,
        }
        changed_at = time.monotonic()
        pending = {b.url, c.url}
        while pending and time.monotonic() - changed_at < 5:
            pending = {u for u in pending if shares(u, a.headers)["candidate"] != 0.5}
            time.sleep(0.1)
        assert not pending, f"replicas without the change after 5 s: {pending}"
        seen: dict[int, str] = {}
        for gw in (a, b, c):
            with gw.client() as client:
                for i in range(60):
                    body = client.post(
                        "/v1/classify", json={"text": "crash", "review_id": f"s-{i}"}
                    ).json()
                    assert seen.setdefault(i, body["variant"]) == body["variant"]
        history = httpx.get(
            f"{c.url}/admin/experiments/triage/history", headers=admin, timeout=5
        ).json()
        assert history["history"][0]["reason"] == "ramp"
        assert history["history"][0]["actor"].startswith("admin:") and "admin-key" not in str(
            history
        )
        bad = httpx.put(
            f"{a.url}/admin/experiments/triage/weights",
            headers=admin,
            json={"weights": {"nope": 1}, "reason": "x"},
            timeout=5,
        )
        assert bad.status_code == 422 and "nope" in bad.json()["detail"]
        denied = httpx.put(
            f"{a.url}/admin/experiments/triage/weights",
            headers=a.headers,
            json={"weights": {"control": 1}, "reason": "x"},
            timeout=5,
        )
        assert denied.status_code == 401
