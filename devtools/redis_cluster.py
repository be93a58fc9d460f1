"""A throwaway Redis Cluster on loopback for tests and benchmarks: `masters` masters with one
replica each, started from the installed redis-server and joined with `redis-cli --cluster
create`. Each node has AOF on and a 1 s node timeout, so a killed master's replica takes over
within a few seconds."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(1000):
        port = random.randint(20_000, 45_000)
        if (
            port not in taken
            and port + 10_000 not in taken
            and _free(port)
            and _free(port + 10_000)
        ):
            taken.update((port, port + 10_000))
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _cli(port: int, *args: str, timeout: float = 10.0) -> str:
    binary = shutil.which("redis-cli") or "redis-cli"
    done = subprocess.run(
        [binary, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout


@dataclass
class Cluster:
    root: Path
    ports: list[int]
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    def alive_ports(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def nodes(self) -> list[dict[str, str]]:
        """`CLUSTER NODES` seen from a live node: port, role, slots of each node."""
        out = _cli(self.alive_ports()[0], "cluster", "nodes")
        rows = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 8:
                continue
            port = parts[1].split("@")[0].rsplit(":", 1)[1]
            role = "master" if "master" in parts[2] else "replica"
            failed = "fail" in parts[2] and "fail?" not in parts[2]
            rows.append(
                {"port": port, "role": role, "failed": str(failed), "slots": " ".join(parts[8:])}
            )
        return rows

    def master_of_slot(self, slot: int) -> int:
        for node in self.nodes():
            if node["role"] != "master" or node["failed"] == "True":
                continue
            for part in node["slots"].split():
                low, _, high = part.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return int(node["port"])
        raise LookupError(f"no master serves slot {slot}")

    def kill(self, port: int) -> None:
        """kill -9 the node on `port`."""
        proc = self.procs[port]
        proc.kill()
        proc.wait(10)

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Until every live node says cluster_state:ok and every slot has a live master."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = [_cli(p, "cluster", "info") for p in self.alive_ports()]
            if all("cluster_state:ok" in s for s in states):
                masters = [n for n in self.nodes() if n["role"] == "master" and n["slots"]]
                if all(int(m["port"]) in self.alive_ports() for m in masters):
                    return
            time.sleep(0.2)
        raise TimeoutError(f"cluster not ok within {timeout_s}s")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@contextlib.contextmanager
def run_cluster(root: Path, masters: int = 3, *, appendonly: bool = True) -> Iterator[Cluster]:
    """Start the nodes, create the cluster, yield it; kill every node at the end."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    taken: set[int] = set()
    ports = [_free_port(taken) for _ in range(masters * 2)]
    cluster = Cluster(root, ports)
    try:
        for port in ports:
            node_dir = root / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            args = [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(node_dir),
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "1000",
                "--cluster-replica-validity-factor", "0",
                "--repl-ping-replica-period", "1",
                "--appendonly", "yes" if appendonly else "no",
                "--save", "",
                "--daemonize", "no",
            ]  # fmt: skip
            with open(node_dir / "redis.log", "wb") as log:  # the child keeps its own copy
                cluster.procs[port] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while any("PONG" not in _cli(p, "ping", timeout=2) for p in ports):
            if time.monotonic() > deadline:
                raise TimeoutError("redis-server nodes did not start")
            time.sleep(0.05)
        create = [f"127.0.0.1:{p}" for p in ports]
        binary_cli = shutil.which("redis-cli") or "redis-cli"
        done = subprocess.run(
            [
                binary_cli,
                "--cluster",
                "create",
                *create,
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout[-2000:]}")
        cluster.wait_ok()
        # every replica attached, so that a killed master has one to take over
        deadline = time.monotonic() + 20
        while sum(n["role"] == "replica" for n in cluster.nodes()) < masters:
            if time.monotonic() > deadline:
                raise TimeoutError("replicas did not attach")
            time.sleep(0.2)
        yield cluster
    finally:
        cluster.stop()
