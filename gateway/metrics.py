"""Prometheus metrics, all prefixed `triage_gateway_`.

Labels are bounded: experiment, variant and model come from the routes file, outcome and
reason from fixed sets in the code. Never a review id, a text or a key.

With several worker processes set PROMETHEUS_MULTIPROC_DIR (an empty directory) before start:
prometheus-client then writes per-process files and `/metrics` aggregates them (see README).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

PREFIX = "triage_gateway"
# End-to-end and upstream latency: the local model answers in ~1-5 ms, LLMs in 0.2-5 s.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
# Gateway overhead (end to end minus upstream): sub-millisecond is the goal.
OVERHEAD_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class GatewayMetrics:
    """Every metric the gateway exports, registered on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        ev = ["experiment", "variant"]
        evm = ["experiment", "variant", "model"]
        self.requests = Counter(
            f"{PREFIX}_requests",
            "Classify requests by the variant that answered.",
            [*evm, "outcome"],
            registry=r,
        )
        self.request_duration = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "End-to-end classify latency.",
            evm,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_duration = Histogram(
            f"{PREFIX}_upstream_duration_seconds",
            "Latency of each upstream or local model call.",
            evm,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead_duration = Histogram(
            f"{PREFIX}_overhead_duration_seconds",
            "End-to-end latency minus time spent in model calls.",
            ["experiment"],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.cost = Counter(f"{PREFIX}_cost_usd", "Model spend in USD.", evm, registry=r)
        self.tokens = Counter(f"{PREFIX}_tokens", "Tokens by kind.", [*evm, "kind"], registry=r)
        self.validation_failures = Counter(
            f"{PREFIX}_validation_failures",
            "Answers that failed triage validation.",
            [*ev, "reason"],
            registry=r,
        )
        self.reasks = Counter(
            f"{PREFIX}_reasks", "Re-asks after an invalid answer.", ev, registry=r
        )
        self.fallbacks = Counter(
            f"{PREFIX}_fallbacks",
            "Requests moved to the next variant.",
            ["experiment", "from_variant", "to_variant", "reason"],
            registry=r,
        )
        self.shadow = Counter(
            f"{PREFIX}_shadow_comparisons",
            "Shadow answers compared with the served answer.",
            ["experiment", "variant", "result"],
            registry=r,
        )
        self.route_weight = Gauge(
            f"{PREFIX}_route_weight",
            "Configured traffic weight (normalised share).",
            ev,
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.pairs_logged = Counter(
            f"{PREFIX}_pairs_logged", "Pairs written to the Redis stream.", registry=r
        )
        self.pair_spool_records = Gauge(
            f"{PREFIX}_pair_spool_records",
            "Pairs waiting in the local spool file.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pair_queue_depth = Gauge(
            f"{PREFIX}_pair_queue_depth",
            "Pairs waiting in the in-process queue.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.corrections = Counter(
            f"{PREFIX}_corrections",
            "Reviewer corrections by variant and whether the category changed.",
            ["variant", "changed"],
            registry=r,
        )
        self.build_info = Gauge(
            f"{PREFIX}_build_info",
            "Build information.",
            ["version", "python"],
            registry=r,
            multiprocess_mode="max",
        )

    def set_weights(self, experiment: str, weights: dict[str, float]) -> None:
        total = sum(weights.values()) or 1.0
        for variant, w in weights.items():
            self.route_weight.labels(experiment, variant).set(w / total)


def scrape_registry(metrics: GatewayMetrics) -> CollectorRegistry:
    """The registry `/metrics` renders: the process's own, or all workers' files."""
    if not multiprocess_enabled():
        return metrics.registry
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
