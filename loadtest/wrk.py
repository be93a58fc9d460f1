"""Closed-loop load from wrk (C, one thread), where it is installed: a Python load generator
spends more CPU per request than the servers it measures, so on a small machine it, not the
server, sets the ceiling (an aiohttp loop tops out near 1,500 req/s on one core, while the
upstream simulator alone answers over 4,000). wrk is the generator the published figures use.

`wrk_load` writes a Lua script that cycles through the request bodies and, when the run ends,
prints one JSON line of totals and latency percentiles; the run is bounded by `duration_s`
(wrk's `-d`) and by a kill after a grace period. Loopback only.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MARK = "WRK-RESULT "
GRACE_S = 15.0

_SCRIPT = """
wrk.method = "POST"
{headers}
local bodies = {{
{bodies}
}}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    """Answers counted by wrk, including non-2xx ones (`status_errors`)."""
    duration_s: float
    socket_errors: int
    status_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def ok(self) -> int:
        return max(0, self.requests - self.status_errors)

    @property
    def errors(self) -> int:
        return self.socket_errors + self.status_errors

    @property
    def rps(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0


def available() -> bool:
    return shutil.which("wrk") is not None


def _long_string(text: str) -> str:
    """A Lua long-bracket literal holding `text` as is."""
    level = 1
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def script(bodies: Sequence[bytes], headers: dict[str, str]) -> str:
    """The Lua script for these bodies (cycled in order) and headers."""
    lines = [
        f"wrk.headers[ {_long_string(k)} ] = {_long_string(v)}"
        for k, v in {"Content-Type": "application/json", **headers}.items()
    ]
    return _SCRIPT.format(
        headers="\n".join(lines),
        bodies=",\n".join(_long_string(b.decode()) for b in bodies),
        mark=MARK,
    )


def parse(stdout: str) -> WrkResult:
    line = next((ln for ln in stdout.splitlines() if ln.startswith(MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {stdout[-500:]!r}")
    r = json.loads(line[len(MARK) :])
    return WrkResult(
        requests=r["requests"],
        duration_s=r["duration_us"] / 1e6,
        socket_errors=r["connect"] + r["read"] + r["write"] + r["timeout"],
        status_errors=r["status"],
        p50_ms=r["p50_us"] / 1000,
        p90_ms=r["p90_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
    )


async def wrk_load(
    url: str,
    bodies: Sequence[bytes],
    headers: dict[str, str],
    *,
    concurrency: int,
    duration_s: float,
) -> WrkResult:
    """One closed-loop run of `concurrency` connections on one wrk thread for `duration_s`
    (on the cores the caller runs on: the benchmark pins itself to the load generator's)."""
    assert url.startswith("http://127.0.0.1:"), url
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "load.lua"
        lua.write_text(script(bodies[:500], headers))
        cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration_s))}s"]
        cmd += ["--timeout", "30s", "-s", str(lua), url]
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), duration_s + GRACE_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError("wrk did not end in time") from None
    return parse(out.decode(errors="replace"))
