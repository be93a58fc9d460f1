"""The gateway on a real Redis Cluster (three masters with a replica each, started here on
loopback): every key layout works (the pair script, corrections and route-store transactions
share slots through hash tags), the pair log is sharded, and a master killed with SIGKILL
under load is replaced by its replica with no failed classify and every 200 stored once."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from devtools.redis_cluster import Cluster, run_cluster
from tests.servers import Gateway, Simulator, ab_routes, correction, run_gateway

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason="redis-server and redis-cli are needed (apt install redis-server redis-tools)",
)

SHARDS = 6
STREAM = "triage:pairs"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with run_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


def stream_ids(cluster: Cluster) -> list[str]:
    """Every request_id in the pair streams of every shard (one per entry)."""
    port = cluster.alive_ports()[0]
    client = RedisCluster(host="127.0.0.1", port=port)
    try:
        out: list[str] = []
        for shard in range(SHARDS):
            entries: Any = client.xrange(f"{STREAM}:{{{shard}}}")
            out.extend(fields[b"request_id"].decode() for _, fields in entries)
        return out
    finally:
        client.close()


async def until(check: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.2)


async def load(gw: Gateway, n: int, done: list[int], deadline_s: float) -> list[int | str]:
    """POST up to n classify calls (16 at a time, stopping at the deadline); the request_id
    of each 200, the status (or -1 for a transport error) otherwise."""
    sem = asyncio.Semaphore(16)
    stop_at = time.monotonic() + deadline_s
    async with gw.async_client() as client:

        async def one(i: int) -> int | str | None:
            async with sem:
                if time.monotonic() > stop_at:
                    return None
                body = {"text": f"The app crashes on screen {i}", "review_id": f"c-{i}"}
                try:
                    r = await client.post("/v1/classify", json=body)
                except httpx.HTTPError:
                    return -1
                finally:
                    done[0] += 1
            return str(r.json()["request_id"]) if r.status_code == 200 else r.status_code

        found = await asyncio.gather(*(one(i) for i in range(n)))
    return [x for x in found if x is not None]


async def test_gateway_on_a_cluster_survives_a_master_killed_under_load(
    cluster: Cluster, sim: Simulator, tmp: Path
) -> None:
    env = {
        "GATEWAY_REDIS_CLUSTER": "true",
        "GATEWAY_PAIR_SHARDS": str(SHARDS),
        "GATEWAY_ADMIN_KEYS": "admin-key",
    }
    victim = cluster.master_of_slot(key_slot(b"{0}"))  # holds shard 0's stream
    done = [0]
    with run_gateway(tmp, routes=ab_routes(sim.base_url), redis_url=cluster.url, env=env) as gw:

        async def chaos() -> None:
            await until(lambda: done[0] >= 300, 30)
            await asyncio.to_thread(cluster.kill, victim)  # kill -9 of a master

        chaos_task = asyncio.create_task(chaos())
        results = await load(gw, 3000, done, deadline_s=40)
        await chaos_task
        failed = [r for r in results if not isinstance(r, str)]
        assert not failed, f"{len(failed)} classify calls failed: {failed[:5]}"
        assert len(results) >= 500  # served before and after the kill
        await asyncio.to_thread(cluster.wait_ok, 30)  # the replica took over
        assert victim not in {cluster.master_of_slot(key_slot(b"{0}"))}
        want = set(results)  # all str here

        await until(lambda: want <= set(stream_ids(cluster)), 30)
        stored = stream_ids(cluster)
        assert len(stored) == len(set(stored)), f"{len(stored) - len(set(stored))} duplicates"
        counts = [stored.count(str(r)) for r in list(want)[:50]]
        assert counts == [1] * len(counts)  # every 200 exactly once

        # the keys of one transaction or script share a slot: corrections, the review queue
        # listing, erasure and a weights change all work on the cluster
        rid = str(results[0])
        admin = {"Authorization": "Bearer admin-key"}
        async with gw.async_client() as client:
            r = await client.post("/v1/corrections", json=correction("Praise", request_id=rid))
            assert r.status_code == 201, r.text
            r = await client.get(f"/v1/pairs/{rid}")
            assert r.status_code == 200 and r.json()["corrections"][0]["category"] == "Praise"
            r = await client.get("/v1/pairs", params={"status": "uncorrected"})
            assert r.status_code == 200 and r.json()["items"]
            r = await client.get("/v1/pairs", params={"status": "corrected"})
            assert [i["request_id"] for i in r.json()["items"]] == [rid]
            r = await client.put(
                "/admin/experiments/triage/weights",
                json={"weights": {"control": 0.5, "candidate": 0.5}, "reason": "cluster test"},
                headers=admin,
            )
            assert r.status_code == 200, r.text
            pair = (await client.get(f"/v1/pairs/{rid}")).json()
            r = await client.delete(f"/v1/reviews/{pair['review_id']}", headers=admin)
            assert r.status_code == 200, r.text
            assert r.json()["pairs_deleted"] >= 1
            r = await client.get(f"/v1/pairs/{rid}")
            assert r.status_code == 404
