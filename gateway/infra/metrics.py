"""Prometheus metrics, all prefixed `triage_gateway_`.

Labels are bounded: experiment, variant and model come from the routes file, outcome and
reason from fixed sets in the code. Never a review id, a text or a key.

Exported series (counters get the `_total` suffix from prometheus-client):

- `requests_total{experiment,variant,model,outcome}`: outcome is `ok` or `error` (served
  traffic, labelled with the variant that answered, or the assigned one on error) and
  `shadow` or `shadow_error` (shadow calls, never served)
- `request_duration_seconds{experiment,variant,model}`: end to end, histogram
- `upstream_duration_seconds{experiment,variant,model}`: each model call (re-asks and shadow
  calls included), histogram
- `overhead_duration_seconds{experiment}`: end to end minus model time, histogram
- `cost_usd_total{experiment,variant,model}`, `tokens_total{experiment,variant,model,kind}`
- `validation_failures_total{experiment,variant,reason}`, `reasks_total{experiment,variant}`
- `fallbacks_total{experiment,from_variant,to_variant,reason}`
- `shadow_comparisons_total{experiment,variant,result}`: result is `agree` or `disagree`
- `route_weight{experiment,variant}`: the normalised share in force (gauge)
- `route_store_bad_state{experiment}`: 1 while the stored weights cannot be loaded (gauge)
- `pairs_logged_total`, `pair_spool_records`, `pair_queue_depth` (gauges)
- `corrections_total{variant,changed}`: changed is `true` or `false`
- `build_info{version,python}`: always 1

Several worker processes (`triage-gateway serve --workers N` or `uvicorn --workers N`): set
PROMETHEUS_MULTIPROC_DIR to an empty directory before the workers start (the CLI does it).
prometheus-client then writes per-process files there and `/metrics`, on whichever worker
answers, merges them: counters and histograms are summed, each gauge is merged by its
`multiprocess_mode` below, so no series carries a `pid` label.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from gateway.experiments.config import Experiment

PREFIX = "triage_gateway"
# End-to-end and upstream latency: the local model answers in ~1-5 ms, LLMs in 0.2-5 s.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
# Gateway overhead (end to end minus upstream): sub-millisecond is the goal.
OVERHEAD_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1)
SERVED_OUTCOMES = ("ok", "error")
CHANGED = ("true", "false")
SHADOW_RESULTS = ("agree", "disagree")
_LIVE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


@dataclass(frozen=True, slots=True)
class VariantSeries:
    """The series of one (experiment, variant, model) that every answered request updates,
    looked up once: `labels()` takes a lock and builds a key on each call (a few percent of
    the CPU of a classify call when done per request)."""

    ok: Counter
    duration: Histogram
    upstream: Histogram
    overhead: Histogram
    cost: Counter
    prompt_tokens: Counter
    completion_tokens: Counter


SERIES_CACHE_MAX = 4096  # label sets come from the routes config; a bound all the same


class GatewayMetrics:
    """Every metric the gateway exports, registered on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._series: dict[tuple[str, str, str], VariantSeries] = {}
        r = self.registry
        ev = ["experiment", "variant"]
        evm = ["experiment", "variant", "model"]
        self.requests = Counter(
            f"{PREFIX}_requests",
            "Classify requests by the variant that answered (outcome ok, error, shadow, "
            "shadow_error).",
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
            "Shadow answers compared with the served answer (result agree or disagree).",
            ["experiment", "variant", "result"],
            registry=r,
        )
        # Every worker sets the same value; the most recent write wins.
        self.route_weight = Gauge(
            f"{PREFIX}_route_weight",
            "Configured traffic weight (normalised share).",
            ev,
            registry=r,
            multiprocess_mode="mostrecent",
        )
        # 1 while the weights stored in Redis for an experiment cannot be loaded (the replica
        # keeps the last good version and ignores the bad one); any worker that sees it counts.
        self.route_store_bad_state = Gauge(
            f"{PREFIX}_route_store_bad_state",
            "1 when the stored routing state of an experiment cannot be loaded (last good kept).",
            ["experiment"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.pairs_logged = Counter(
            f"{PREFIX}_pairs_logged", "Pairs written to the Redis stream.", registry=r
        )
        # Per-process spool and queue: summed over the live workers.
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
            "Reviewer corrections by variant and whether the category changed (true/false).",
            ["variant", "changed"],
            registry=r,
        )
        self.build_info = Gauge(
            f"{PREFIX}_build_info",
            "Build information (always 1).",
            ["version", "python"],
            registry=r,
            multiprocess_mode="max",
        )

    def series(self, experiment: str, variant: str, model: str) -> VariantSeries:
        key = (experiment, variant, model)
        found = self._series.get(key)
        if found is None:
            if len(self._series) >= SERIES_CACHE_MAX:
                self._series.clear()
            found = self._series[key] = VariantSeries(
                ok=self.requests.labels(*key, "ok"),
                duration=self.request_duration.labels(*key),
                upstream=self.upstream_duration.labels(*key),
                overhead=self.overhead_duration.labels(experiment),
                cost=self.cost.labels(*key),
                prompt_tokens=self.tokens.labels(*key, "prompt"),
                completion_tokens=self.tokens.labels(*key, "completion"),
            )
        return found

    def set_weights(self, experiment: str, weights: Mapping[str, float]) -> None:
        """Export the weights in force (at start and on every change) as shares of 1."""
        total = sum(weights.values()) or 1.0
        for variant, w in weights.items():
            self.route_weight.labels(experiment, variant).set(w / total)
        self._declare_variants(experiment, weights)

    def init_experiment(self, exp: Experiment) -> None:
        """Create the series of every variant at 0, so that rate() and ratio queries (and the
        alerts built on them) return data before the first request, error or correction."""
        for v in exp.variants:
            for outcome in SERVED_OUTCOMES:
                self.requests.labels(exp.name, v.name, v.model, outcome)
            self.cost.labels(exp.name, v.name, v.model)
        if exp.shadow is not None:
            shadow = exp.shadow.variant
            for result in SHADOW_RESULTS:
                self.shadow.labels(exp.name, shadow, result)
        self._declare_variants(exp.name, (v.name for v in exp.variants))

    def _declare_variants(self, experiment: str, variants: Iterable[str]) -> None:
        for variant in variants:
            self.reasks.labels(experiment, variant)
            for changed in CHANGED:
                self.corrections.labels(variant, changed)

    def count_correction(self, variant: str, *, changed: bool) -> None:
        """One reviewer correction of an answer served by `variant`."""
        self.corrections.labels(variant, "true" if changed else "false").inc()


def _reap_dead_workers(path: str) -> None:
    """Drop the live-gauge files of workers that have exited (a crashed or restarted worker
    would otherwise keep adding its last queue depth to `livesum`)."""
    pids = set()
    for name in os.listdir(path):
        match = _LIVE_FILE.match(name)
        if match:
            pids.add(int(match.group(1)))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
        except PermissionError:
            continue  # alive, owned by someone else


def scrape_registry(metrics: GatewayMetrics) -> CollectorRegistry:
    """The registry `/metrics` renders: the process's own, or all workers' files."""
    if not multiprocess_enabled():
        return metrics.registry
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    with contextlib.suppress(OSError):
        _reap_dead_workers(path)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    return registry


__all__ = ["GatewayMetrics", "multiprocess_enabled", "scrape_registry"]
