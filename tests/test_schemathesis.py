"""Property-based API testing from the OpenAPI schema: no input makes the gateway answer 5xx."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.servers import Simulator, ab_routes, run_gateway


def test_no_input_from_the_schema_causes_a_server_error(
    tmp: Path, sim: Simulator, redis_url: str
) -> None:
    env = {"GATEWAY_ADMIN_KEYS": "admin-key", "GATEWAY_REVIEWER_KEYS": "reviewer-key"}
    with run_gateway(tmp, routes=ab_routes(sim.base_url), redis_url=redis_url, env=env) as gw:
        out = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{gw.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--header",
                "Authorization: Bearer test-key",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--generation-deterministic",
                "--request-timeout",
                "20",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp,
        )
        log = gw.log_text()
    errors = [line[-1500:] for line in log.splitlines() if '"exc"' in line]
    assert out.returncode == 0, out.stdout[-6000:] + "\n".join(errors[:3])
    counts = re.search(r"(\d+) generated, (\d+) passed", out.stdout)
    assert counts and counts[1] == counts[2] and int(counts[1]) > 200, out.stdout[-3000:]
    assert '"status":500' not in log.replace(" ", "")
