"""Live figures of one variant since a point in time, for the promotion controller.

Both sources read the gateway's counters twice, at the start of a step and at each
evaluation, and subtract them series by series (a series that appeared meanwhile counts from
0; one that went down was reset by a restart and counts from its new value):

* `MetricsScrape`: the text exposition of one gateway's `/metrics` (one replica's view: point
  it at a single gateway, or use Prometheus);
* `PrometheusQuery`: instant queries to Prometheus's HTTP API, which hold every replica it
  scrapes (each value is as old as its last scrape). Raw counters rather than `increase()`:
  `increase()` drops the first value of a series born inside the window, and the fallback
  series of a failing candidate is born exactly when the trouble starts.

Counted for the candidate: requests it took (served, failed, or moved on to a fallback),
failures among them (outcome `error` plus fallbacks away from it), model calls that returned
and how many of those failed validation, and the end-to-end latency histogram.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gateway.infra.metrics import PREFIX

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Series = dict[SeriesKey, float]
_WANTED = (
    "requests_total",
    "fallbacks_total",
    "upstream_duration_seconds_count",
    "validation_failures_total",
    "request_duration_seconds_bucket",
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


class FigureSource(Protocol):
    async def start(self) -> None:
        """Remember the counters now, as the start of the window."""

    async def figures(self) -> LiveFigures:
        """The candidate's figures since `start`."""


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


@dataclass
class _Counts:
    ok: float = 0.0
    error: float = 0.0
    fallbacks: float = 0.0
    calls: float = 0.0
    invalid: float = 0.0
    buckets: dict[float, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, name: str, labels: Mapping[str, str], value: float, variant: str) -> None:
        if name == f"{PREFIX}_fallbacks_total":
            self.fallbacks += value if labels.get("from_variant") == variant else 0.0
            return
        if labels.get("variant") != variant:
            return
        if name == f"{PREFIX}_requests_total":
            outcome = labels.get("outcome")
            self.ok += value if outcome == "ok" else 0.0
            self.error += value if outcome == "error" else 0.0
        elif name == f"{PREFIX}_upstream_duration_seconds_count":
            self.calls += value
        elif name == f"{PREFIX}_validation_failures_total":
            self.invalid += value
        elif name == f"{PREFIX}_request_duration_seconds_bucket":
            self.buckets[float(labels["le"])] += value


def figures_of(series: Series, experiment: str, variant: str) -> LiveFigures:
    """Sum the series of `variant` in `experiment` into figures."""
    c = _Counts()
    for (name, pairs), value in series.items():
        labels = dict(pairs)
        if labels.get("experiment") == experiment:
            c.add(name, labels, value, variant)
    p95 = histogram_quantile(0.95, c.buckets)
    errors = c.error + c.fallbacks
    return LiveFigures(
        requests=round(c.ok + errors),
        errors=round(errors),
        calls=round(c.calls),
        validation_failures=round(c.invalid),
        latency_n=round(max(c.buckets.values(), default=0.0)),
        p95_ms=None if p95 is None else p95 * 1000,
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


class _Differ:
    """Shared by both sources: read series, keep the base, hand out figures of the delta."""

    def __init__(self, experiment: str, variant: str) -> None:
        self.experiment = experiment
        self.variant = variant
        self._base: Series = {}

    async def read(self) -> Series:
        raise NotImplementedError

    async def start(self) -> None:
        self._base = await self.read()

    async def figures(self) -> LiveFigures:
        return figures_of(delta(await self.read(), self._base), self.experiment, self.variant)


class MetricsScrape(_Differ):
    """Deltas of one gateway's `/metrics` since `start()`."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, experiment: str, variant: str
    ) -> None:
        super().__init__(experiment, variant)
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


class PrometheusQuery(_Differ):
    """Deltas of the counters of every replica Prometheus scrapes, since `start()`."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, experiment: str, variant: str
    ) -> None:
        super().__init__(experiment, variant)
        self.session = session
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
