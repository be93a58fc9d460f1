"""Property-based API testing over the whole OpenAPI schema (examples, coverage, fuzzing and
stateful phases, links inferred from the schema): with Redis up no input makes the gateway
answer 5xx; with Redis down the only 5xx is 503 `unavailable` naming Redis (the check is
tests/schemathesis_checks.py). Bounded: 200 examples per operation, one worker, a timeout
per request and per run; the case count is printed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.infra.embedded_redis import EmbeddedRedis
from tests.servers import Gateway, Simulator, ab_routes, free_port, run_gateway

CHECKS = Path(__file__).with_name("schemathesis_checks.py")
MAX_EXAMPLES = 200
RUN_TIMEOUT_S = 400


def _env() -> dict[str, str]:
    # the admin API under the same key, so the fuzzer gets past auth everywhere
    return {"GATEWAY_ADMIN_KEYS": "test-key", "GATEWAY_REVIEWER_KEYS": "reviewer-key"}


def _schemathesis(gw: Gateway, tmp: Path, *, redis_down: bool) -> tuple[int, str]:
    """Run the CLI on the gateway's schema (fetched with the key); (cases, output)."""
    schema = httpx.get(f"{gw.url}/openapi.json", headers=gw.headers, timeout=10)
    schema.raise_for_status()
    path = tmp / "openapi.json"
    path.write_text(json.dumps(schema.json()))
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(CHECKS),
        "TRIAGE_REDIS_DOWN": "1" if redis_down else "0",
    }
    started = time.monotonic()
    out = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            str(path),
            "--url",
            gw.url,
            "--checks",
            "no_server_error_but_redis_outage",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--header",
            f"Authorization: Bearer {gw.api_key}",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--seed",
            "1",
            "--request-timeout",
            "20",
            "--no-color",
            "--generation-database",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=tmp,
        env=env,
    )
    took = time.monotonic() - started
    log = gw.log_text()
    errors = [line[-1500:] for line in log.splitlines() if '"exc"' in line]
    assert out.returncode == 0, out.stdout[-8000:] + "\n".join(errors[:3])
    counts = re.search(r"(\d+) generated, (\d+) passed", out.stdout)
    assert counts and counts[1] == counts[2], out.stdout[-3000:]
    cases = int(counts[1])
    compact = log.replace(" ", "")
    unavailable = compact.count('"status":503')
    print(
        f"schemathesis (redis {'down' if redis_down else 'up'}): {cases} cases in {took:.0f} s,"
        f" {unavailable} answered 503"
    )
    print(out.stdout[-2500:])
    assert "Stateful" in out.stdout, out.stdout[-3000:]  # the stateful phase ran
    assert '"status":500' not in compact
    # with Redis down the Redis routes were reached (and answered 503), else none was
    assert unavailable > 100 if redis_down else unavailable == 0, unavailable
    return cases, out.stdout


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_no_input_from_the_schema_causes_a_server_error(
    tmp: Path, sim: Simulator, redis_url: str
) -> None:
    with run_gateway(tmp, routes=ab_routes(sim.base_url), redis_url=redis_url, env=_env()) as gw:
        cases, _ = _schemathesis(gw, tmp, redis_down=False)
    assert cases > 10 * MAX_EXAMPLES


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_with_redis_down_the_only_server_error_is_503_unavailable(
    tmp: Path, sim: Simulator
) -> None:
    redis = EmbeddedRedis(tmp / "own-redis", port=free_port()).start()
    try:
        with run_gateway(
            tmp, routes=ab_routes(sim.base_url), redis_url=redis.url, env=_env()
        ) as gw:
            redis.stop(kill=True)
            deadline = time.monotonic() + 10
            while httpx.get(f"{gw.url}/readyz", timeout=5).status_code != 503:
                assert time.monotonic() < deadline, "readyz still 200 with Redis stopped"
                time.sleep(0.1)
            cases, _ = _schemathesis(gw, tmp, redis_down=True)
    finally:
        redis.stop(kill=True)
    assert cases > 10 * MAX_EXAMPLES
