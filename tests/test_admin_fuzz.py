"""Admin fuzz: the weights and variants endpoints of a real gateway (real Redis) fed NaN, +-inf,
1e400, negatives, huge numbers, wrong types, unknown and empty names. Each answer is a 422
naming the field, nothing reaches Redis, and a gateway restarted afterwards comes up with the
last good weights."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis

from gateway.infra import redis_keys
from tests.servers import Gateway, Simulator, ab_routes, run_gateway, write_routes

ADMIN = {"Authorization": "Bearer admin-key", "Content-Type": "application/json"}
BAD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "-1", "-1e-9", "1000001"]
BAD_NUMBERS += ["1e308", "1.7976931348623157e308", "null", "true", '"1"', "[]", "{}"]
BAD_NAMES = ["nope", "", "x" * 70, "control "]
RANDOM_CASES = 200

# (raw JSON body, a text the 422 detail must contain: the field at fault)
WEIGHTS_CASES: list[tuple[str, str]] = [
    *(
        (f'{{"weights": {{"control": {v}}}, "reason": "x"}}', "weights.control")
        for v in BAD_NUMBERS
    ),
    ('{"weights": {"nope": 1}, "reason": "x"}', "nope"),
    ('{"weights": {"": 1}, "reason": "x"}', "weights"),
    (f'{{"weights": {{"{"x" * 70}": 1}}, "reason": "x"}}', "weights"),
    ('{"weights": {}, "reason": "x"}', "weights"),
    ('{"weights": {"control": 0, "candidate": 0}, "reason": "x"}', "weights"),
    ('{"weights": {"control": 1}, "reason": ""}', "reason"),
    ('{"weights": {"control": 1}}', "reason"),
    ('{"weights": [1, 2], "reason": "x"}', "weights"),
    ('{"weights": {"control": 1}, "shares": {"control": 1}, "reason": "x"}', "shares"),
    ('{"reason": "x"}', "weights"),
    *(
        (f'{{"shares": {{"candidate": {v}}}, "reason": "x"}}', "shares.candidate")
        for v in BAD_NUMBERS
    ),
    ('{"shares": {"candidate": 1.5}, "reason": "x"}', "shares.candidate"),
    ('{"shares": {"control": 0.6, "candidate": 0.6}, "reason": "x"}', "shares"),
    ('{"shares": {"control": 0.5, "candidate": 0.3}, "reason": "x"}', "shares"),
    ('{"shares": {"nope": 0.1}, "reason": "x"}', "nope"),
    ('{"shares": {"": 0.1}, "reason": "x"}', "shares"),
]


def variant_cases(base_url: str) -> list[tuple[dict[str, Any] | str, str]]:
    ok: dict[str, Any] = {"name": "v9", "model": "openrouter/acme/x", "api_base": base_url}
    cases: list[tuple[dict[str, Any] | str, str]] = []
    for field in ("weight", "timeout_s", "shadow_sample_rate"):
        for v in BAD_NUMBERS:
            if v == "null" and field != "weight":
                continue  # an optional field given as null is a field not given
            body = json.dumps(ok)[:-1] + f', "{field}": {v}}}'
            cases.append((body, field))
    for v in BAD_NUMBERS:
        price = f'{{"input_per_1m": {v}, "output_per_1m": 1}}'
        cases.append((json.dumps(ok)[:-1] + f', "price": {price}}}', "price"))
    extras: list[tuple[dict[str, Any], str]] = [
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 601}, "timeout_s"),
        ({"shadow_sample_rate": 1.5}, "shadow_sample_rate"),
        ({"name": ""}, "name"),
        ({"name": "bad name"}, "name"),
        ({"name": "x" * 100}, "name"),
        ({"name": "control"}, "routes file"),
        ({"model": ""}, "model"),
        ({"model": None}, "model"),
        ({"registry_name": "nope", "model": None}, "registry_name"),
        ({"registry_name": "", "model": None}, "registry_name"),
        ({"api_key": "k" * 200}, "api_key"),
    ]
    for extra, field in extras:
        cases.append(({**ok, **extra}, field))
    return cases


def random_weights(rng: random.Random) -> str:
    """A weights or shares body with 1-3 entries, at least one of them bad."""
    names = rng.sample(["control", "candidate", *BAD_NAMES], rng.randint(1, 3))
    values = [rng.choice(["0.5", "1", "0", *BAD_NUMBERS]) for _ in names]
    if not set(names) & set(BAD_NAMES) and not set(values) & set(BAD_NUMBERS):
        values[0] = rng.choice(BAD_NUMBERS)
    entries = ", ".join(f"{json.dumps(n)}: {v}" for n, v in zip(names, values, strict=True))
    return f'{{"{rng.choice(["weights", "shares"])}": {{{entries}}}, "reason": "fuzz"}}'


def snapshot(r: redis.Redis) -> tuple[Any, ...]:
    return (
        r.hgetall(redis_keys.weights("triage")),
        r.xlen(redis_keys.weights_history("triage")),
        r.hgetall(redis_keys.runtime_variants("triage")),
    )


def routes_view(gw: Gateway) -> dict[str, Any]:
    view = httpx.get(f"{gw.url}/v1/routes", headers=gw.headers, timeout=5).json()
    experiment: dict[str, Any] = view["experiments"][0]
    return experiment


def check_refused(resp: httpx.Response, field: str, sent: object) -> None:
    assert resp.status_code == 422, (sent, resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"error", "detail"} and body["error"] == "invalid_request", body
    assert field in body["detail"], (sent, body)


def test_admin_fuzz_refuses_bad_input_stores_nothing_and_a_restart_keeps_good_weights(
    tmp: Path, sim: Simulator, redis_url: str
) -> None:
    routes = write_routes(tmp / "routes.yaml", ab_routes(sim.base_url))
    env = {"GATEWAY_ADMIN_KEYS": "admin-key"}
    r = redis.Redis.from_url(redis_url)
    weights_url = "/admin/experiments/triage/weights"
    with (
        run_gateway(tmp / "a", routes=routes, redis_url=redis_url, env=env) as gw,
        httpx.Client(base_url=gw.url, headers=ADMIN, timeout=10) as admin,
    ):
        good = admin.put(weights_url, json={"weights": {"candidate": 0.3}, "reason": "good"})
        assert good.status_code == 200, good.text
        before = snapshot(r)
        assert before[0][b"version"] == b"1" and before[1] == 1

        for body, field in WEIGHTS_CASES:
            check_refused(admin.put(weights_url, content=body), field, body)
        rng = random.Random(15)
        for _ in range(RANDOM_CASES):
            body = random_weights(rng)
            check_refused(admin.put(weights_url, content=body), "", body)
        for case, field in variant_cases(sim.base_url):
            content = case if isinstance(case, str) else json.dumps(case)
            resp = admin.put("/admin/experiments/triage/variants", content=content)
            check_refused(resp, field, case)
        unknown = admin.put(
            "/admin/experiments/nope/weights", json={"weights": {"control": 1}, "reason": "x"}
        )
        assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"

        assert snapshot(r) == before, "a refused call changed Redis"
        view = routes_view(gw)
        assert view["salt_version"] == 1
        assert {v["name"]: v["weight"] for v in view["variants"]} == {
            "control": 0.9,
            "candidate": 0.3,
        }
        metrics = httpx.get(f"{gw.url}/metrics", timeout=5).text
        weights = [
            line for line in metrics.splitlines() if line.startswith("triage_gateway_route_w")
        ]
        assert weights and not any("nan" in line.lower() for line in weights), weights

    with run_gateway(tmp / "b", routes=routes, redis_url=redis_url, env=env) as restarted:
        view = routes_view(restarted)
        assert view["salt_version"] == 1
        shares = {v["name"]: v["share"] for v in view["variants"]}
        assert shares == {"control": 0.75, "candidate": 0.25}
        stored = orjson.loads(r.hget(redis_keys.weights("triage"), "weights") or b"null")
        assert stored == {"control": 0.9, "candidate": 0.3}
        with restarted.client() as client:
            assert client.post("/v1/classify", json={"text": "it crashes"}).status_code == 200
