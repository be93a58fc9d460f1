from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.infra.embedded_redis import EmbeddedRedis
from tests.servers import Simulator, free_port, run_simulator


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A real redis-server on a loopback TCP port, for the whole session."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port()).start()
    yield server
    server.stop(compact=False)  # a temporary data directory


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """The session Redis, flushed before each test."""
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """The upstream simulator (fast answers) for the whole session; reset per use."""
    log = tmp_path_factory.mktemp("sim") / "simulator.log"
    with run_simulator("--latency-ms", "5", "--seed", "7", log=log) as sim:
        yield sim


@pytest.fixture
def sim(simulator: Simulator) -> Simulator:
    simulator.control(
        error_rate=0,
        invalid_rate=0,
        rate_limit_rate=0,
        timeout_rate=0,
        hang_s=30,
        model_overrides=None,
        require_key=False,
    )
    return simulator


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path
