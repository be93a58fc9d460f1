"""The routes file a running gateway serves, recorded in Redis at its start, so that a command
run elsewhere (`eval`, `promote`, `rollback`, `report`, `models deploy`, ...) uses the same
experiments without being told GATEWAY_ROUTES.

One hash, `redis_keys.served_routes()`: `path` (absolute), `sha256` and `yaml` (the file's
bytes), `pid`, `ts`. The last gateway to start wins: replicas of one deployment share one
routes file. A reader uses the recorded path when the file there still has the recorded hash,
else a copy of the recorded bytes written under its data directory (`routes_path`).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from gateway.infra import redis_keys


@dataclass(frozen=True)
class ServedRoutes:
    path: Path
    sha256: str
    yaml: bytes
    pid: int | None
    ts: float | None


def read_file(path: Path) -> tuple[str, bytes]:
    """The absolute path and the bytes of a routes file, for `record`."""
    return str(path.resolve()), path.read_bytes()


async def record(redis: aioredis.Redis, path: str, data: bytes) -> None:
    """Record the routes file at `path` (holding `data`) as the one this gateway serves."""
    await redis.hset(
        redis_keys.served_routes(),
        mapping={
            "path": path,
            "sha256": hashlib.sha256(data).hexdigest(),
            "yaml": data,
            "pid": os.getpid(),
            "ts": time.time(),
        },
    )


def _number(raw: bytes | None) -> float | None:
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


async def read(redis: aioredis.Redis) -> ServedRoutes | None:
    """The routes the last gateway started on this Redis recorded, or None."""
    row: list[Any] = await redis.hmget(
        redis_keys.served_routes(), ["path", "sha256", "yaml", "pid", "ts"]
    )
    path, digest, data, pid, ts = row
    if path is None or digest is None or data is None:
        return None
    found = _number(pid)
    return ServedRoutes(
        path=Path(path.decode()),
        sha256=digest.decode(),
        yaml=bytes(data),
        pid=int(found) if found is not None else None,
        ts=_number(ts),
    )


def routes_path(served: ServedRoutes, data_dir: Path) -> tuple[Path, bool]:
    """A file holding the served routes: the recorded path when it still holds them, else a
    copy under `data_dir` (written when missing). The flag says whether it is the copy."""
    try:
        if hashlib.sha256(served.path.read_bytes()).hexdigest() == served.sha256:
            return served.path, False
    except OSError:
        pass
    copy = data_dir / "served-routes" / f"{served.sha256[:16]}.yaml"
    if not copy.is_file():
        copy.parent.mkdir(parents=True, exist_ok=True)
        tmp = copy.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(served.yaml)
        tmp.replace(copy)
    return copy, True
