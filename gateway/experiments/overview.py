"""What the experiments page shows of one experiment, as plain data: live counts per variant
from the gateway's metrics registry, and the ramp in progress from the weights history.

`live_counts` reads the registry `/metrics` renders (`gateway.infra.metrics.scrape_registry`:
every worker's series under PROMETHEUS_MULTIPROC_DIR), so its figures cover the time since the
gateway started: served requests (`requests_total`, outcome ok or error), errors, model calls
(`upstream_duration_seconds_count`, re-asks and shadow calls included) and answers that failed
validation (`validation_failures_total`); validity is the share of model calls whose answer
passed validation.

`ramp_in_progress` reads `RouteStore.history` (newest first): when the newest change is a
`ramp_step`, the ramp is the run of `ramp_step` entries with the same `baseline_version`
back from it, oldest step first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from gateway.experiments.store import ChangeKind
from gateway.experiments.table import shares_of
from gateway.infra.metrics import PREFIX


@dataclass
class LiveCounts:
    """One variant's served traffic since the gateway started."""

    ok: int = 0
    errors: int = 0
    model_calls: int = 0
    invalid: int = 0

    @property
    def requests(self) -> int:
        return self.ok + self.errors

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def validity(self) -> float | None:
        """Share of model calls whose answer passed validation (None before the first)."""
        if not self.model_calls:
            return None
        return max(0.0, 1.0 - self.invalid / self.model_calls)


def live_counts(
    registry: CollectorRegistry, experiment: str, variants: Sequence[str] = ()
) -> dict[str, LiveCounts]:
    """Per variant of `experiment` (each of `variants` at least, zeros when unseen)."""
    out = {name: LiveCounts() for name in variants}
    requests = f"{PREFIX}_requests_total"
    calls = f"{PREFIX}_upstream_duration_seconds_count"
    invalid = f"{PREFIX}_validation_failures_total"
    for family in registry.collect():
        for sample in family.samples:
            if sample.name not in (requests, calls, invalid):
                continue
            labels = sample.labels
            if labels.get("experiment") != experiment or "variant" not in labels:
                continue
            row = out.setdefault(labels["variant"], LiveCounts())
            value = int(sample.value)
            if sample.name == requests:
                outcome = labels.get("outcome")
                if outcome == "ok":
                    row.ok += value
                elif outcome == "error":
                    row.errors += value
            elif sample.name == calls:
                row.model_calls += value
            else:
                row.invalid += value
    return out


@dataclass(frozen=True, slots=True)
class RampStep:
    version: int
    ts: float
    actor: str
    reason: str
    shares: dict[str, float]


@dataclass(frozen=True, slots=True)
class Ramp:
    """A promotion's ramp: its steps since the known-good baseline, oldest first."""

    baseline_version: int
    baseline_shares: dict[str, float]
    steps: list[RampStep]

    @property
    def candidate(self) -> str | None:
        """The variant whose share grew the most since the baseline."""
        latest = self.steps[-1].shares
        gains = {n: s - self.baseline_shares.get(n, 0.0) for n, s in latest.items()}
        best = max(gains, key=lambda n: gains[n], default=None)
        return best if best is not None and gains[best] > 0 else None


def _shares(weights: object) -> dict[str, float]:
    if not isinstance(weights, Mapping):
        return {}
    clean = {str(n): float(w) for n, w in weights.items() if isinstance(w, int | float)}
    return shares_of(clean)


def ramp_in_progress(history: Sequence[Mapping[str, Any]]) -> Ramp | None:
    """The ramp the newest change belongs to, or None when the newest change is not a ramp
    step (a rollback, a manual change, no change at all)."""
    if not history or history[0].get("kind") != ChangeKind.RAMP_STEP.value:
        return None
    baseline = int(history[0].get("baseline_version", -1))
    run: list[Mapping[str, Any]] = []
    for entry in history:
        if entry.get("kind") != ChangeKind.RAMP_STEP.value:
            break
        if int(entry.get("baseline_version", -1)) != baseline:
            break
        run.append(entry)
    run.reverse()
    steps = [
        RampStep(
            version=int(e.get("to_version", e.get("version", 0))),
            ts=float(e.get("ts", 0.0)),
            actor=str(e.get("actor", "")),
            reason=str(e.get("reason", "")),
            shares=_shares(e.get("weights")),
        )
        for e in run
    ]
    return Ramp(baseline, _shares(run[0].get("previous")), steps)


def history_rows(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """History entries (newest first) with each change's resulting shares."""
    return [
        {
            "version": int(e.get("to_version", e.get("version", 0))),
            "kind": str(e.get("kind", "")),
            "baseline_version": e.get("baseline_version"),
            "actor": str(e.get("actor", "")),
            "reason": str(e.get("reason", "")),
            "ts": float(e.get("ts", 0.0)),
            "shares": _shares(e.get("weights")),
        }
        for e in history
    ]
