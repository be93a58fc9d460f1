"""What the experiments page shows of one experiment, as plain data: live counts per variant
from the gateway's metrics registry, and the ramp in progress from the weights history.

`live_counts` reads the registry `/metrics` renders (`gateway.infra.metrics.scrape_registry`:
every worker's series under PROMETHEUS_MULTIPROC_DIR), so its figures cover the time since the
gateway started: served requests (`requests_total`, outcome ok or error), errors, model calls
(`upstream_duration_seconds_count`, re-asks and shadow calls included) and answers that failed
validation (`validation_failures_total`); validity is the share of model calls whose answer
passed validation. `VariantCounters` sums those series; `eval.live` sums a scrape or a
Prometheus query with it too.

`history_rows` reads `RouteStore.history` (newest first) into `Change`s; `ramp_in_progress`
takes them: when the newest change is a `ramp_step`, the ramp is the run of `ramp_step`
changes with the same `baseline_version` back from it, oldest step first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from gateway.experiments.store import ChangeKind
from gateway.experiments.table import shares_of
from gateway.infra.metrics import PREFIX


@dataclass
class VariantCounters:
    """One variant's gateway counters in one experiment, summed from metric samples (the
    registry here, a scraped exposition or Prometheus for `eval.live`), so the page and the
    promotion controller read the series the same way. Fallbacks count on both ends
    (`from_variant`, `to_variant`); the latency buckets are cumulative counts keyed by `le`."""

    ok: float = 0.0
    errors: float = 0.0
    fallbacks_out: float = 0.0
    fallbacks_in: float = 0.0
    model_calls: float = 0.0
    invalid: float = 0.0
    cost_usd: float = 0.0
    buckets: dict[float, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, name: str, labels: Mapping[str, str], value: float, variant: str) -> None:
        """Count one sample of an experiment's series toward `variant` (others are ignored)."""
        if name == f"{PREFIX}_fallbacks_total":
            self.fallbacks_out += value if labels.get("from_variant") == variant else 0.0
            self.fallbacks_in += value if labels.get("to_variant") == variant else 0.0
            return
        if labels.get("variant") != variant:
            return
        if name == f"{PREFIX}_requests_total":
            outcome = labels.get("outcome")
            self.ok += value if outcome == "ok" else 0.0
            self.errors += value if outcome == "error" else 0.0
        elif name == f"{PREFIX}_upstream_duration_seconds_count":
            self.model_calls += value
        elif name == f"{PREFIX}_validation_failures_total":
            self.invalid += value
        elif name == f"{PREFIX}_cost_usd_total":
            self.cost_usd += value
        elif name == f"{PREFIX}_request_duration_seconds_bucket":
            self.buckets[float(labels["le"])] += value

    @property
    def requests(self) -> int:
        """Requests the variant answered or failed (fallbacks not netted out)."""
        return round(self.ok + self.errors)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def validity(self) -> float | None:
        """Share of model calls whose answer passed validation (None before the first)."""
        if not self.model_calls:
            return None
        return max(0.0, 1.0 - self.invalid / self.model_calls)


_PAGE_SERIES = frozenset(
    f"{PREFIX}_{name}"
    for name in ("requests_total", "upstream_duration_seconds_count", "validation_failures_total")
)
"""The series the page counts (a variant seen only elsewhere gets no row)."""


def live_counts(
    registry: CollectorRegistry, experiment: str, variants: Sequence[str] = ()
) -> dict[str, VariantCounters]:
    """Per variant of `experiment` (each of `variants` at least, zeros when unseen)."""
    out = {name: VariantCounters() for name in variants}
    for family in registry.collect():
        for sample in family.samples:
            labels = sample.labels
            variant = labels.get("variant")
            if sample.name not in _PAGE_SERIES or variant is None:
                continue
            if labels.get("experiment") == experiment:
                out.setdefault(variant, VariantCounters()).add(
                    sample.name, labels, sample.value, variant
                )
    return out


def _shares(weights: object) -> dict[str, float]:
    if not isinstance(weights, Mapping):
        return {}
    clean = {str(n): float(w) for n, w in weights.items() if isinstance(w, int | float)}
    return shares_of(clean)


@dataclass(frozen=True, slots=True)
class Change:
    """One weights change, read once from its `RouteStore.history` entry."""

    version: int
    kind: str
    baseline_version: int
    """The known-good version a rollback after this change restores."""
    actor: str
    reason: str
    ts: float
    shares: dict[str, float]
    """The shares the change put in force."""
    previous_shares: dict[str, float]
    """The shares in force before it."""

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> Change:
        return cls(
            version=int(entry.get("to_version", entry.get("version", 0))),
            kind=str(entry.get("kind", "")),
            baseline_version=int(entry.get("baseline_version", -1)),
            actor=str(entry.get("actor", "")),
            reason=str(entry.get("reason", "")),
            ts=float(entry.get("ts", 0.0)),
            shares=_shares(entry.get("weights")),
            previous_shares=_shares(entry.get("previous")),
        )


def history_rows(history: Sequence[Mapping[str, Any]]) -> list[Change]:
    """`RouteStore.history` entries (newest first) as changes, in the same order."""
    return [Change.of(entry) for entry in history]


@dataclass(frozen=True, slots=True)
class Ramp:
    """A promotion's ramp: its steps since the known-good baseline, oldest first."""

    baseline_version: int
    baseline_shares: dict[str, float]
    steps: list[Change]

    @property
    def candidate(self) -> str | None:
        """The variant whose share grew the most since the baseline."""
        latest = self.steps[-1].shares
        gains = {n: s - self.baseline_shares.get(n, 0.0) for n, s in latest.items()}
        best = max(gains, key=lambda n: gains[n], default=None)
        return best if best is not None and gains[best] > 0 else None


def ramp_in_progress(changes: Sequence[Change]) -> Ramp | None:
    """The ramp the newest change belongs to, or None when the newest change is not a ramp
    step (a rollback, a manual change, no change at all). `changes`: newest first."""
    if not changes or changes[0].kind != ChangeKind.RAMP_STEP.value:
        return None
    baseline = changes[0].baseline_version
    run: list[Change] = []
    for change in changes:
        if change.kind != ChangeKind.RAMP_STEP.value or change.baseline_version != baseline:
            break
        run.append(change)
    run.reverse()
    return Ramp(baseline, run[0].previous_shares, run)
