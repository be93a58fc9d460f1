"""Weights in Redis: a change through the admin API reaches every replica within 5 s; rollback
to the last known-good baseline, history kinds, shares, the registry status that follows
traffic, and a stored state that cannot be loaded (it neither stops a start nor the poll)."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
import redis.asyncio as aioredis

from gateway.errors import InvalidRequestError, NotFoundError
from gateway.experiments.config import RoutesConfig, load_routes
from gateway.experiments.store import ChangeKind, RouteStore
from gateway.experiments.table import RouteTable
from gateway.infra import redis_keys
from gateway.infra.metrics import GatewayMetrics
from tests.servers import (
    Simulator,
    ab_routes,
    clean_env,
    put_experiment,
    run_gateway,
    run_module,
    write_routes,
)


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
        r = put_experiment(
            a.url, admin, "weights", weights={"candidate": 0.5, "control": 0.5}, reason="ramp"
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
        bad = put_experiment(a.url, admin, "weights", weights={"nope": 1}, reason="x")
        assert bad.status_code == 422 and "nope" in bad.json()["detail"]
        denied = put_experiment(a.url, a.headers, "weights", weights={"control": 1}, reason="x")
        assert denied.status_code == 401


# --------------------------------------------------------------- baselines and rollback

ADMIN = {"Authorization": "Bearer admin-key"}


def cli(tmp: Path, *args: str, redis_url: str, routes: Path) -> subprocess.CompletedProcess[str]:
    env = clean_env(
        GATEWAY_REDIS_URL=redis_url,
        GATEWAY_ROUTES=str(routes),
        GATEWAY_DATA_DIR=str(tmp / "cli-data"),
        COLUMNS="200",
    )
    return run_module("cli", *args, env=env)


def stored(redis_url: str) -> tuple[int, dict[str, float]]:
    raw = redis.Redis.from_url(redis_url).hmget(redis_keys.weights("triage"), "version", "weights")
    return int(raw[0] or 0), dict(orjson.loads(raw[1])) if raw[1] else {}


def wait_share(url: str, variant: str, share: float, within_s: float = 5.0) -> dict[str, float]:
    deadline = time.monotonic() + within_s
    seen = shares(url, {"Authorization": "Bearer test-key"})
    while abs(seen.get(variant, -1) - share) > 1e-6 and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = shares(url, {"Authorization": "Bearer test-key"})
    assert seen.get(variant) == pytest.approx(share, abs=1e-6), seen
    return seen


def ramp(redis_url: str, routes: Path, percents: list[float], baseline: int) -> None:
    """Ramp cand2 the way the promotion controller does: ramp steps through the route store,
    each recording the version in force when the promotion started."""

    async def run() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            store = RouteStore(client, RouteTable(load_routes(routes)), GatewayMetrics())
            await store.refresh()
            for p in percents:
                weights = store.table.weights_from_shares("triage", {"cand2": p / 100})
                await store.set_weights(
                    "triage",
                    weights,
                    actor="promote:test",
                    reason=f"promote cand2 to {p:g}%",
                    kind=ChangeKind.RAMP_STEP,
                    baseline_version=baseline,
                )
        finally:
            await client.aclose()

    asyncio.run(run())


def status_of(listing: str, name: str) -> str:
    """The status cell of `name` in `models list` (the columns are separated by │)."""
    for line in listing.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 3 and cells[1] == name:
            return cells[3]
    raise AssertionError(f"{name} not in:\n{listing}")


def test_rollback_restores_the_baseline_and_registry_status_follows_traffic(
    tmp: Path, sim: Simulator, redis_url: str
) -> None:
    routes = write_routes(tmp / "routes.yaml", ab_routes(sim.base_url))
    run = functools.partial(cli, tmp, redis_url=redis_url, routes=routes)
    env = {"GATEWAY_ADMIN_KEYS": "admin-key"}
    with run_gateway(tmp / "gw", routes=routes, redis_url=redis_url, env=env) as gw:
        for name in ("ft-1", "ft-2"):
            add = ("models", "add", name, "--kind", "self-hosted", "--endpoint", sim.base_url)
            assert run(*add, "--model", "acme/llama-3-8b-ft").returncode == 0
        deployed = run(
            "models", "deploy", "ft-1", "--experiment", "triage", "--as-variant", "cand2"
        )
        assert deployed.returncode == 0, deployed.stderr
        shadow = ("models", "deploy", "ft-2", "--experiment", "triage", "--as-variant", "shad")
        assert run(*shadow, "--shadow", "0.1").returncode == 0
        listing = run("models", "list").stdout
        assert status_of(listing, "ft-1") == "candidate 0%", listing
        assert status_of(listing, "ft-2") == "shadow", listing
        wait_share(gw.url, "cand2", 0.0)

        # A ramp to 100% from version 0, then `rollback`: the pre-ramp weights, cand2 at 0.
        ramp(redis_url, routes, [25, 50, 100], baseline=0)
        wait_share(gw.url, "cand2", 1.0)
        assert status_of(run("models", "list").stdout, "ft-1") == "serving"
        back = run("rollback", "--experiment", "triage", "--reason", "bad canary")
        assert back.returncode == 0, back.stderr
        assert stored(redis_url) == (
            4,
            {"control": 0.9, "candidate": 0.1, "cand2": 0.0, "shad": 0.0},
        )
        wait_share(gw.url, "cand2", 0.0)
        assert wait_share(gw.url, "control", 0.9)["candidate"] == pytest.approx(0.1)
        assert status_of(run("models", "list").stdout, "ft-1") == "rolled back"

        # A second rollback changes nothing and says which version is in force.
        again = run("rollback", "--experiment", "triage")
        assert again.returncode == 0, again.stderr
        assert "nothing to roll back: version 4 is in force" in again.stdout
        assert stored(redis_url)[0] == 4

        # --to-version restores a named version (the half-ramped one, on purpose).
        named = run("rollback", "--experiment", "triage", "--to-version", "2")
        assert named.returncode == 0, named.stderr
        half = {"control": 0.45, "candidate": 0.05, "cand2": 0.5, "shad": 0.0}
        assert stored(redis_url)[0] == 5 and stored(redis_url)[1] == pytest.approx(half)
        missing = run("rollback", "--experiment", "triage", "--to-version", "99")
        assert missing.returncode == 2 and "no weights version 99" in missing.stderr

        # Shares, said plainly: the "5% canary" call gives 5% whatever the weights were.
        r = put_experiment(gw.url, ADMIN, "weights", shares={"cand2": 0.05}, reason="5% canary")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["shares"]["cand2"] == pytest.approx(0.05)
        assert body["shares"]["control"] == pytest.approx(0.95 * 0.9)  # 0.45 : 0.05 kept
        assert "proportion" in body["how"] and body["kind"] == "manual_change"
        wait_share(gw.url, "cand2", 0.05)
        assert status_of(run("models", "list").stdout, "ft-1") == "candidate 5%"
        # ... and its rollback is the version before it.
        assert run("rollback", "--experiment", "triage").returncode == 0
        assert stored(redis_url)[0] == 7 and stored(redis_url)[1] == pytest.approx(half)

        assert run("models", "retire", "ft-2").returncode == 0
        assert status_of(run("models", "list").stdout, "ft-2") == "retired"

        history = httpx.get(
            f"{gw.url}/admin/experiments/triage/history", headers=ADMIN, timeout=5
        ).json()["history"]
    summary = [
        (e["to_version"], e["from_version"], e["kind"], e["baseline_version"]) for e in history
    ]
    assert summary == [
        (7, 6, "manual_rollback", 5),
        (6, 5, "manual_change", 5),
        (5, 4, "manual_rollback", 2),
        (4, 3, "manual_rollback", 0),
        (3, 2, "ramp_step", 0),
        (2, 1, "ramp_step", 0),
        (1, 0, "ramp_step", 0),
    ]
    assert history[3]["reason"] == "bad canary" and history[3]["actor"].startswith("rollback:")
    assert history[1]["reason"] == "5% canary" and history[1]["actor"].startswith("admin:")
    printed = run("history", "--experiment", "triage")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert len(lines) == 7 and lines[3].startswith("v4 <- v3  manual_rollback")
    assert "baseline v0" in lines[3] and "'bad canary'" in lines[3] and "by rollback:" in lines[3]
    assert lines[-1].startswith("v1 <- v0  ramp_step") and "cand2 25.0%" in lines[-1]


async def test_rollback_semantics_in_the_route_store(redis_url: str) -> None:
    """Breach rollback, manual changes and weights_at, on the store every caller shares."""
    client = aioredis.Redis.from_url(redis_url)
    routes = RoutesConfig.model_validate(ab_routes("http://127.0.0.1:9/v1"))
    store = RouteStore(client, RouteTable(routes), GatewayMetrics())
    try:
        assert await store.rollback("triage", actor="t", reason="r") == {
            "changed": False,
            "experiment": "triage",
            "version": 0,
            "baseline_version": 0,
            "weights": {"control": 0.9, "candidate": 0.1},
            "shares": {"control": 0.9, "candidate": 0.1},
            "detail": "nothing to roll back: version 0 is in force",
        }
        manual = await store.set_weights("triage", {"candidate": 0.3}, actor="a", reason="m")
        assert (manual["kind"], manual["from_version"], manual["baseline_version"]) == (
            "manual_change",
            0,
            0,
        )
        for share in (0.5, 0.8):  # a ramp from version 1, stopped by a breach at 80%
            weights = store.table.weights_from_shares("triage", {"candidate": share})
            await store.set_weights(
                "triage",
                weights,
                actor="p",
                reason="step",
                kind=ChangeKind.RAMP_STEP,
                baseline_version=1,
            )
        breach = await store.restore_version(
            "triage", 1, actor="p", reason="error rate", kind=ChangeKind.BREACH_ROLLBACK
        )
        assert breach["version"] == 4 and breach["weights"] == {"control": 0.9, "candidate": 0.3}
        assert breach["kind"] == "breach_rollback" and breach["restored_version"] == 1
        # After a breach rollback the baseline is in force: nothing to do.
        after = await store.rollback("triage", actor="t", reason="r")
        assert after["changed"] is False and after["version"] == 4
        assert await store.weights_at("triage", 0) == {"control": 0.9, "candidate": 0.1}
        assert await store.weights_at("triage", 3) == pytest.approx(
            {"control": 0.2, "candidate": 0.8}
        )
        with pytest.raises(NotFoundError):
            await store.weights_at("triage", 12)
        # The stored state always loads back; a refused change stores nothing.
        for bad in ({"control": math.nan}, {"control": math.inf}, {"nope": 1.0}, {"control": -1}):
            with pytest.raises(InvalidRequestError):
                await store.set_weights("triage", bad, actor="a", reason="bad")
        assert stored(redis_url) == (4, {"control": 0.9, "candidate": 0.3})
        assert len(await store.history("triage")) == 4
    finally:
        await client.aclose()


# ------------------------------------------------------------------- bad stored state


def metric(url: str, name: str) -> float:
    body = httpx.get(f"{url}/metrics", timeout=5).text
    for line in body.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def write_history(r: redis.Redis, entries: list[tuple[int, Any]]) -> None:
    for version, weights in entries:
        entry = {"version": version, "weights": weights, "previous": {}, "actor": "old"}
        r.xadd(redis_keys.weights_history("triage"), {"entry": json.dumps(entry)})


def test_a_bad_stored_state_neither_stops_a_start_nor_the_weight_poll(
    tmp: Path, sim: Simulator, redis_url: str
) -> None:
    r = redis.Redis.from_url(redis_url)
    key = redis_keys.weights("triage")
    # What the old release stored for `{"control": 1e400}`: null, in the hash and the history.
    write_history(
        r, [(1, {"control": 0.5, "candidate": 0.5}), (2, {"control": 0.2, "candidate": 0.8})]
    )
    write_history(r, [(3, {"control": None, "candidate": 0.8})])
    r.hset(key, mapping={"version": 3, "weights": '{"control": null, "candidate": 0.8}'})
    routes = write_routes(tmp / "routes.yaml", ab_routes(sim.base_url))
    gauge = 'triage_gateway_route_store_bad_state{experiment="triage"}'
    with run_gateway(tmp / "gw", routes=routes, redis_url=redis_url) as gw:
        # Up, on the newest loadable version of the history, and saying so.
        assert httpx.get(f"{gw.url}/readyz", timeout=5).status_code == 200
        assert shares(gw.url, gw.headers) == {"control": 0.2, "candidate": 0.8}
        assert metric(gw.url, gauge) == 1.0
        assert "stored weights cannot be loaded" in gw.log_text()
        with gw.client() as client:
            assert client.post("/v1/classify", json={"text": "it crashes"}).status_code == 200

        async def change(weights: dict[str, float]) -> None:  # another replica, or the CLI
            client = aioredis.Redis.from_url(redis_url)
            try:
                store = RouteStore(client, RouteTable(load_routes(routes)), GatewayMetrics())
                await store.refresh()
                await store.set_weights("triage", weights, actor="other", reason="fix")
            finally:
                await client.aclose()

        asyncio.run(change({"control": 0.6, "candidate": 0.4}))
        wait_share(gw.url, "candidate", 0.4)
        assert metric(gw.url, gauge) == 0.0
        # More bad entries while it runs: bad JSON, an unknown variant, a broken variant;
        # the poll keeps going and applies the next good change.
        version = stored(redis_url)[0]
        for n, bad in enumerate(("not json", '{"nope": 1}', '{"control": -1}'), 1):
            r.hset(key, mapping={"version": version + n, "weights": bad})
            time.sleep(1.5)
            assert metric(gw.url, gauge) == 1.0
            assert shares(gw.url, gw.headers)["candidate"] == pytest.approx(0.4)
        r.hset(redis_keys.runtime_variants("triage"), "junk", b"{not json")
        r.hincrby(key, "variants_version", 1)
        asyncio.run(change({"control": 0.1, "candidate": 0.9}))
        wait_share(gw.url, "candidate", 0.9)
        assert metric(gw.url, gauge) == 0.0
    assert "Traceback" not in gw.log_text()


async def test_a_runtime_local_variant_loads_its_model_once(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin PUT of a local variant loads its model once (the check's load is the one
    installed), adding another variant rebuilds the first without loading it again, and a
    model directory retrained in place (a new model card) is loaded afresh."""
    import shutil

    from gateway.experiments.config import Variant
    from gateway.experiments.table import RuntimeVariant
    from gateway.infra.state import runtime_variant_builder
    from gateway.request import variants
    from gateway.request.pricing import ProviderFacts
    from gateway.request.upstream import UpstreamClient
    from training.baseline_card import PACKAGED_BASELINE

    model_dir = tmp_path / "local-model"
    shutil.copytree(PACKAGED_BASELINE, model_dir)
    loads: list[Path] = []
    from gateway.local.loader import load_local_model as real_load

    def counted_load(path: Path) -> Any:
        loads.append(path)
        return real_load(path)

    monkeypatch.setattr(variants, "load_local_model", counted_load)
    client = aioredis.Redis.from_url(redis_url)
    routes = RoutesConfig.model_validate(ab_routes("http://127.0.0.1:9/v1"))
    metrics = GatewayMetrics()
    pool = variants.VariantPool(UpstreamClient(), metrics)
    builder = runtime_variant_builder(pool, routes, ProviderFacts.from_litellm(), {}, None)
    store = RouteStore(client, RouteTable(routes), metrics, build_variant=builder)

    def runtime(name: str, **fields: Any) -> RuntimeVariant:
        return RuntimeVariant(variant=Variant(name=name, weight=0.0, **fields), actor="t")

    try:
        await store.refresh()
        await store.put_variant("triage", runtime("loc", model="local", model_path=str(model_dir)))
        assert len(loads) == 1
        installed = pool._locals[("triage", "loc")]
        up = runtime("up", model="openrouter/acme/x", api_base="http://127.0.0.1:9/v1")
        await store.put_variant("triage", up)
        assert len(loads) == 1 and pool._locals[("triage", "loc")] is installed
        card = model_dir / "model_card.json"
        card.write_text(card.read_text() + "\n")  # retrained in place
        await store.put_variant("triage", runtime("loc", model="local", model_path=str(model_dir)))
        assert len(loads) == 2 and pool._locals[("triage", "loc")] is not installed
    finally:
        await client.aclose()
