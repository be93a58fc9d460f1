"""Online A/B figures of one experiment, from the pair log and reviewer corrections in Redis.

A reviewer correction judges the served answer: `changed: false` (the reviewer kept the model's
category and urgency) counts as right, `changed: true` as wrong; the last correction of a pair
wins. Pairs are read with `gateway.pairs.pairstore`, corrections in the shape
`gateway.pairs.corrections` stores. Per variant this gives
the online accuracy with a Wilson 95% interval, its difference to the control with a Newcombe
(hybrid score) interval, and the corrected sample each arm still needs to detect a difference
of `mde` (two-sided two-proportion test, alpha 0.05, power 0.8). Cost and p95 latency come from
the pair records themselves.

Plain functions, no web framework: the API route, the CLI and the promotion controller call
them, and `eval.stats` re-uses the statistics below instead of repeating them.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

import orjson
import redis.asyncio as aioredis

from gateway.infra import redis_keys
from gateway.pairs import pairstore
from gateway.pairs.corrections import Correction
from gateway.pairs.record import PairRecord

if TYPE_CHECKING:
    from gateway.experiments.sequential import Comparison

ALPHA = 0.05
POWER = 0.8
_PAGE = 1000


def wilson(k: int, n: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n ((0, 1) when n is 0)."""
    if n <= 0:
        return 0.0, 1.0
    # imported here: statsmodels (with scipy and pandas) takes about a second to import, which
    # only the report pays, not every gateway start
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, n, alpha=alpha, method="wilson")
    return max(0.0, float(lo)), min(1.0, float(hi))


def newcombe(k1: int, n1: int, k2: int, n2: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10) of p1 - p2 for independent samples."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    lo, hi = confint_proportions_2indep(
        k1, n1, k2, n2, method="newcomb", compare="diff", alpha=alpha
    )
    return float(lo), float(hi)


def sample_size(p1: float, p2: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """Per-group n for a two-sided two-proportion z test to detect p1 vs p2."""
    if p1 == p2:
        raise ValueError("p1 and p2 must differ")
    norm = NormalDist()
    za, zb = norm.inv_cdf(1 - alpha / 2), norm.inv_cdf(power)
    pbar = (p1 + p2) / 2
    top = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(top * top / ((p1 - p2) ** 2))


def sample_size_for_mde(
    baseline: float, mde: float, alpha: float = ALPHA, power: float = POWER
) -> int:
    """Per-group n to detect a drop of `mde` from `baseline` (a rise when a drop is impossible).

    An `mde` that fits neither way inside [0, 1] is answered with the largest possible change.
    """
    if baseline - mde >= 0:
        other = baseline - mde
    elif baseline + mde <= 1:
        other = baseline + mde
    else:
        other = 0.0 if baseline >= 0.5 else 1.0
    if other == baseline:
        other = min(1.0, baseline + 1e-6) if baseline < 1 else baseline - 1e-6
    return sample_size(baseline, other, alpha, power)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation (None when there are no values)."""
    if not values:
        return None
    import numpy as np

    return float(np.percentile(values, q))


class GateView(TypedDict):
    """The decision one gate would take now (`_gates`)."""

    test: str
    margin: float
    difference: float | None
    fixed_ci95: list[float] | None
    anytime_ci95: list[float] | None
    decision: str
    needed_per_arm: int
    still_needed: int
    unit: str
    line_ms: NotRequired[float | None]
    """The latency gate's line: the control's p95."""


class VariantRow(TypedDict):
    """One variant's online figures (`build_report`)."""

    traffic: int
    corrected: int
    right: int
    accuracy: float | None
    accuracy_ci95: list[float] | None
    diff_vs_control: float | None
    diff_ci95: list[float] | None
    mean_cost_usd: float | None
    p95_latency_ms: float | None
    still_needed: int
    gates: NotRequired[dict[str, GateView]]
    """Candidates only: `accuracy` and `p95_latency`."""


class OnlineReport(TypedDict):
    """The online report of one experiment, as the API and `triage-gateway report --json`
    send it."""

    experiment: str
    control: str
    mde: float
    alpha: float
    power: float
    baseline_accuracy: float
    baseline_source: str
    needed_per_variant: int
    variants: dict[str, VariantRow]
    since: float | None
    """The start of the window the pairs were read from (None: all of them)."""


def judged_right(correction: Mapping[str, object]) -> bool:
    """A correction that left the category as it was says the answer was right."""
    changed = correction.get("changed")
    if isinstance(changed, bool):
        return not changed
    return correction.get("category") == correction.get("original_category")


@dataclass
class _Arm:
    traffic: int = 0
    corrected: int = 0
    right: int = 0
    cost: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def add_pair(self, pair: PairRecord) -> None:
        self.traffic += 1
        self.cost += pair.cost_usd
        self.latencies.append(pair.latency_ms)


def build_report(
    pairs: Iterable[PairRecord],
    corrections: Mapping[str, Correction],
    *,
    experiment: str,
    variants: Sequence[str] = (),
    control: str | None = None,
    mde: float = 0.02,
    since: float | None = None,
) -> OnlineReport:
    """Per-variant online figures of `experiment` from its served pairs and their corrections
    (`corrections` maps request_id to the pair's last correction); `since` is reported as the
    start of the window the pairs were read from."""
    arms: dict[str, _Arm] = {name: _Arm() for name in variants}
    for pair in pairs:
        if not _served(pair, experiment):
            continue
        arm = arms.setdefault(pair.variant, _Arm())
        arm.add_pair(pair)
        fix = corrections.get(pair.request_id)
        if fix is not None:
            arm.corrected += 1
            arm.right += judged_right(fix)
    names = list(arms)
    if control is None:
        control = "control" if "control" in arms else (names[0] if names else "control")
    ctrl = arms.get(control, _Arm())
    baseline = ctrl.right / ctrl.corrected if ctrl.corrected else 0.5
    needed = sample_size_for_mde(baseline, mde)
    rows = {name: _row(arm, ctrl, name == control, needed) for name, arm in arms.items()}
    for name, arm in arms.items():
        if name != control:
            rows[name]["gates"] = _gates(arm, ctrl, mde, needed)
    return {
        "experiment": experiment,
        "control": control,
        "mde": mde,
        "alpha": ALPHA,
        "power": POWER,
        "baseline_accuracy": round(baseline, 6),
        "baseline_source": "control" if ctrl.corrected else "assumed 0.5 (control uncorrected)",
        "needed_per_variant": needed,
        "variants": rows,
        "since": since,
    }


def _row(arm: _Arm, ctrl: _Arm, is_control: bool, needed: int) -> VariantRow:
    acc = arm.right / arm.corrected if arm.corrected else None
    row: VariantRow = {
        "traffic": arm.traffic,
        "corrected": arm.corrected,
        "right": arm.right,
        "accuracy": acc,
        "accuracy_ci95": list(wilson(arm.right, arm.corrected)) if arm.corrected else None,
        "diff_vs_control": None,
        "diff_ci95": None,
        "mean_cost_usd": arm.cost / arm.traffic if arm.traffic else None,
        "p95_latency_ms": percentile(arm.latencies, 95),
        "still_needed": max(0, needed - arm.corrected),
    }
    if not is_control and arm.corrected and ctrl.corrected:
        row["diff_vs_control"] = arm.right / arm.corrected - ctrl.right / ctrl.corrected
        row["diff_ci95"] = list(newcombe(arm.right, arm.corrected, ctrl.right, ctrl.corrected))
    return row


LATENCY_MARGIN = 0.05
"""Harm margin of the report's latency gate: the extra share of pairs slower than the
control's p95."""


def _gates(arm: _Arm, ctrl: _Arm, mde: float, needed: int) -> dict[str, GateView]:
    """The decision each gate would take now, from anytime-valid intervals (valid however
    often the report is read), beside the fixed-horizon ones: accuracy from corrections
    (non-inferiority, margin `mde`) and latency (harm: the share of pairs slower than the
    control's p95, margin `LATENCY_MARGIN`)."""
    from gateway.experiments import sequential as seq  # statsmodels: only when asked

    accuracy = seq.compare(
        seq.Kind.NON_INFERIORITY,
        (arm.right, arm.corrected),
        (ctrl.right, ctrl.corrected),
        mde,
        alpha=ALPHA,
        planned_n=needed,
    )
    line = percentile(ctrl.latencies, 95)
    slow = (
        (sum(x > line for x in arm.latencies), len(arm.latencies)) if line is not None else (0, 0)
    )
    slow0 = (
        (sum(x > line for x in ctrl.latencies), len(ctrl.latencies)) if line is not None else (0, 0)
    )
    latency = seq.compare(seq.Kind.HARM, slow, slow0, LATENCY_MARGIN, alpha=ALPHA, base_rate=0.05)
    latency_view = _gate_view(latency, min(slow[1], slow0[1]), "pairs")
    latency_view["line_ms"] = line
    return {
        "accuracy": _gate_view(accuracy, min(arm.corrected, ctrl.corrected), "corrected pairs"),
        "p95_latency": latency_view,
    }


def _gate_view(c: Comparison, have: int, unit: str) -> GateView:
    return {
        "test": str(c.kind),
        "margin": c.margin,
        "difference": c.difference,
        "fixed_ci95": None if c.fixed is None else [c.fixed.lo, c.fixed.hi],
        "anytime_ci95": None if c.anytime is None else [c.anytime.lo, c.anytime.hi],
        "decision": str(c.decision),
        "needed_per_arm": c.needed_per_arm,
        "still_needed": max(0, c.needed_per_arm - have),
        "unit": unit,
    }


def _json_object(raw: bytes) -> Correction | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return cast(Correction, value) if isinstance(value, dict) else None


def _served(pair: PairRecord, experiment: str) -> bool:
    """A production pair of `experiment`: not a shadow answer, not an eval's forced call."""
    return pair.experiment == experiment and not pair.shadow and pair.purpose != "eval"


async def read_pairs(
    redis: aioredis.Redis,
    stream: str,
    *,
    experiment: str,
    since: float | None = None,
    with_archive: bool = False,
) -> list[PairRecord]:
    """Served (non-shadow, non-eval) pairs of `experiment`, oldest first, logged at or after
    `since`."""
    start = "-" if since is None else f"{int(since * 1000)}-0"
    out: list[PairRecord] = []
    async for pair in pairstore.iter_pairs(
        redis, stream, start, count=_PAGE, with_archive=with_archive
    ):
        if not _served(pair, experiment):
            continue
        if since is not None and (pair.ts or since) < since:
            continue
        out.append(pair)
    return out


async def read_corrections(
    redis: aioredis.Redis, request_ids: Iterable[str]
) -> dict[str, Correction]:
    """The last correction of each corrected pair among `request_ids`."""
    members: Any = await redis.zrange(redis_keys.corrected_set(), 0, -1)
    corrected = {m.decode() for m in members}
    wanted = [rid for rid in request_ids if rid in corrected]
    pipe = redis.pipeline(transaction=False)
    for rid in wanted:
        pipe.lindex(redis_keys.corrections(rid), -1)
    found: dict[str, Correction] = {}
    for rid, raw in zip(wanted, await pipe.execute() if wanted else [], strict=True):
        record = _json_object(raw) if raw is not None else None
        if record is not None:
            found[rid] = record
    return found


async def experiment_report(
    redis: aioredis.Redis,
    stream: str,
    experiment: str,
    variants: Sequence[str] = (),
    *,
    control: str | None = None,
    mde: float = 0.02,
    since: float | None = None,
    with_archive: bool = False,
) -> OnlineReport:
    """`build_report` over what Redis holds now (pairs at or after `since` when given), and
    the archive too with `with_archive`."""
    pairs = await read_pairs(
        redis, stream, experiment=experiment, since=since, with_archive=with_archive
    )
    fixes = await read_corrections(redis, (p.request_id for p in pairs))
    # In a worker thread: the figures are O(pairs) in Python and the first report imports
    # statsmodels (about a second); a reviewer opening a page must not stall the event loop.
    return await asyncio.to_thread(
        build_report,
        pairs,
        fixes,
        experiment=experiment,
        variants=variants,
        control=control,
        mde=mde,
        since=since,
    )


async def corrections_since(
    redis: aioredis.Redis, stream: str, experiment: str, variants: Sequence[str], since: float
) -> dict[str, tuple[int, int]]:
    """(right, corrected) per variant over the pairs of `experiment` corrected at or after
    `since` (the corrected set is scored by correction time; the pair index finds each pair's
    experiment; a pair not in the index counts when its variant belongs to the experiment)."""
    members: Any = await redis.zrangebyscore(redis_keys.corrected_set(), since, "+inf")
    ids = [m.decode() for m in members]
    if not ids:
        return {}
    pipe = redis.pipeline(transaction=False)
    for rid in ids:
        pipe.lindex(redis_keys.corrections(rid), -1)
    fixes = await pipe.execute()
    entry_ids = await pairstore.index_entries(redis, ids)  # each shard's index
    pipe = redis.pipeline(transaction=False)
    for rid, eid in zip(ids, entry_ids, strict=True):
        if eid is not None:
            shard = redis_keys.pair_shard(rid)
            pipe.xrange(redis_keys.shard_stream(stream, shard), min=eid, max=eid, count=1)
    found = iter(await pipe.execute() if any(e is not None for e in entry_ids) else [])
    tally: dict[str, tuple[int, int]] = {}
    for raw, eid in zip(fixes, entry_ids, strict=True):
        rows = next(found) if eid is not None else []
        pair = PairRecord.from_fields(*rows[0]) if rows else None
        fix = _json_object(raw) if raw is not None else None
        if fix is None:
            continue
        variant = pair.variant if pair is not None and pair.variant else str(fix.get("variant"))
        if pair is not None and not _served(pair, experiment):
            continue
        if pair is None and variant not in variants:
            continue
        right, n = tally.get(variant, (0, 0))
        tally[variant] = (right + judged_right(fix), n + 1)
    return tally
