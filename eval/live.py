"""Live figures of a candidate and its control over a window, for the promotion controller.

A source reads the gateway's counters (`read`): the controller keeps the reading at the start
of the ramp and at the start of each step, and subtracts them series by series (`delta`: a
series that appeared meanwhile counts from 0; one that went down was reset by a restart and
counts from its new value):

* `MetricsScrape`: the text exposition of one gateway's `/metrics` (one replica's view: point
  it at a single gateway, or use Prometheus);
* `PrometheusQuery`: instant queries to Prometheus's HTTP API, which hold every replica it
  scrapes (each value is as old as its last scrape). Raw counters rather than `increase()`:
  `increase()` drops the first value of a series born inside the window, and the fallback
  series of a failing candidate is born exactly when the trouble starts.

Counted per variant (`figures_of`): requests assigned to it (answered, failed, or moved on to
a fallback; a request another variant fell back to it is not counted as its own), failures
among them (outcome `error` plus fallbacks away from it), model calls that returned and how
many of those failed validation, spend, and the end-to-end latency histogram (from which
`LiveFigures.slower_than` counts the requests above a latency line, for the p95 gate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gateway.experiments.overview import VariantCounters
from gateway.infra.metrics import PREFIX

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Series = dict[SeriesKey, float]
_WANTED = (
    "requests_total",
    "fallbacks_total",
    "upstream_duration_seconds_count",
    "validation_failures_total",
    "request_duration_seconds_bucket",
    "cost_usd_total",
)
WANTED = frozenset(f"{PREFIX}_{name}" for name in _WANTED)


@dataclass(frozen=True, slots=True)
class LiveFigures:
    requests: int = 0
    errors: int = 0
    calls: int = 0
    validation_failures: int = 0
    latency_n: int = 0
    p95_ms: float | None = None
    cost_usd: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()
    """Cumulative end-to-end latency counts, (upper bound in seconds, count), ascending."""

    @property
    def cost_per_request(self) -> float | None:
        return self.cost_usd / self.requests if self.requests else None

    def slower_than(self, line_s: float) -> tuple[int, int]:
        """(requests slower than the bucket bound `line_s`, requests with a latency)."""
        within = max((count for bound, count in self.buckets if bound <= line_s), default=0.0)
        return round(self.latency_n - within), self.latency_n

    def p95_line(self) -> float | None:
        """The smallest finite bucket bound holding at least 95% of the requests (None when
        there are none, or only the +Inf bucket holds that many)."""
        if self.latency_n <= 0:
            return None
        for bound, count in self.buckets:
            if math.isfinite(bound) and count >= 0.95 * self.latency_n:
                return bound
        return None


class FigureSource(Protocol):
    async def read(self) -> Series:
        """The wanted counter series of the experiment, as they are now."""


def series_key(name: str, labels: Mapping[str, str]) -> SeriesKey:
    return name, tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))


def delta(now: Series, base: Series) -> Series:
    """Per-series increase; a series below its base value was reset and counts from 0."""
    out: Series = {}
    for key, value in now.items():
        before = base.get(key, 0.0)
        out[key] = value - before if value >= before else value
    return out


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus's `histogram_quantile` over cumulative bucket counts keyed by `le`."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def figures_of(series: Series, experiment: str, variant: str) -> LiveFigures:
    """Sum the series of `variant` in `experiment` into figures."""
    c = VariantCounters()
    for (name, pairs), value in series.items():
        labels = dict(pairs)
        if labels.get("experiment") == experiment:
            c.add(name, labels, value, variant)
    p95 = histogram_quantile(0.95, c.buckets)
    errors = c.errors + c.fallbacks_out
    # a request another variant fell back to is counted ok under this one: not its own
    own_ok = max(0.0, c.ok - c.fallbacks_in)
    return LiveFigures(
        requests=round(own_ok + errors),
        errors=round(errors),
        calls=round(c.model_calls),
        validation_failures=round(c.invalid),
        latency_n=round(max(c.buckets.values(), default=0.0)),
        p95_ms=None if p95 is None else p95 * 1000,
        cost_usd=c.cost_usd,
        buckets=tuple(sorted(c.buckets.items())),
    )


def parse_exposition(text: str) -> Series:
    """The wanted gateway series of a Prometheus text exposition."""
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in WANTED:
                key = series_key(s.name, s.labels)
                out[key] = out.get(key, 0.0) + s.value
    return out


class MetricsScrape:
    """One gateway's `/metrics`."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url.rstrip("/") + "/metrics"

    async def read(self) -> Series:
        async with self.session.get(self.url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
            resp.raise_for_status()
            return parse_exposition(await resp.text())


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def prometheus_selector(experiment: str) -> str:
    names = "|".join(sorted(WANTED))
    return f'{{__name__=~"{names}",experiment="{_label(experiment)}"}}'


def parse_vector(result: Iterable[Mapping[str, object]]) -> Series:
    """An instant-query vector (`data.result`) as series."""
    out: Series = {}
    for item in result:
        metric = item["metric"]
        value = item["value"]
        assert isinstance(metric, dict) and isinstance(value, list)
        key = series_key(str(metric["__name__"]), {str(k): str(v) for k, v in metric.items()})
        out[key] = float(value[1])
    return out


class PrometheusQuery:
    """The counters of every replica Prometheus scrapes, for one experiment."""

    def __init__(self, session: aiohttp.ClientSession, url: str, experiment: str) -> None:
        self.session = session
        self.experiment = experiment
        self.url = url.rstrip("/") + "/api/v1/query"

    async def read(self) -> Series:
        params = {"query": prometheus_selector(self.experiment)}
        async with self.session.get(
            self.url, params=params, timeout=aiohttp.ClientTimeout(total=10)
        ) as resp:
            resp.raise_for_status()
            body = await resp.json()
        if body.get("status") != "success":
            raise aiohttp.ClientError(f"prometheus query failed: {body.get('error')}")
        return parse_vector(body["data"]["result"])
