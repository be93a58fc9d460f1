"""Anytime-valid comparisons of a candidate with its control, for gates checked at every look.

Used by the online report and the promotion controller; statsmodels and scipy are heavy
imports, so the server imports this module only when a report is asked for.

A promotion looks at the live figures every `--interval`. A fixed-horizon test (a Wilson or
Newcombe interval, a z-test) is valid for ONE look at a sample size fixed in advance: checked
again and again as data arrive, each look is another chance of a false decision, and the
chance that at least one look crosses the line grows without bound (see `simulate_aa`).

The gates here use confidence sequences instead: a sequence of intervals that covers the true
value at every sample size at once, with probability at least 1 - alpha, however often it is
looked at and whenever the looking stops (time-uniform coverage). Per arm, for a Bernoulli
rate (an error, an invalid answer, a correct answer, a request slower than a latency line),
the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas,
"Time-uniform central limit theory and asymptotic confidence sequences" (Annals of Statistics,
2024), Theorem 2.2, with the normal-mixture boundary of Howard, Ramdas, McAuliffe and Sekhon,
"Time-uniform, nonparametric, nonasymptotic confidence sequences" (Annals of Statistics, 2021):

    mean_t +/- sqrt( 2 (t s^2 rho^2 + 1) / (t^2 rho^2) * log( sqrt(t s^2 rho^2 + 1) / alpha ) )

where s^2 is the running variance and rho tunes where the sequence is tightest (`rho_for`,
Waudby-Smith et al., eq. 2.6, for a planned sample size and rate). The difference of two arms
uses one sequence per arm: the difference bounds are [lo_c - hi_0, hi_c - lo_0], and each
one-sided statement about them (the only kind a gate makes) errs with probability at most
alpha at any look (`difference_cs`).

Decisions (`compare`):
* harm test (error rate, invalid answers, slow requests): a breach once the whole difference
  interval lies above `margin` (the candidate is worse than allowed); otherwise keep going;
* non-inferiority (accuracy from corrections, validity): shown once the whole interval lies
  above -margin; a breach once it lies wholly below -margin.
scipy and statsmodels give the fixed-horizon intervals shown beside them and the power
calculation for the evidence a step needs (`required_per_arm`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
)

DEFAULT_ALPHA = 0.05
DEFAULT_PLANNED_N = 500
"""The sample size per arm where a confidence sequence is tuned to be tightest."""
_MIN_VARIANCE = 0.01
"""Variance floor for a Bernoulli rate estimated from few draws (0 errors in 20 requests gives
s^2 = 0, which would make the interval collapse): p(1-p) at p ~ 1%."""


class Decision(StrEnum):
    CONTINUE = "continue"
    """Not enough evidence either way yet."""
    PASS = "pass"
    """Non-inferiority shown (or, for a harm test, nothing to stop at the end)."""
    BREACH = "breach"
    """The candidate is worse than its margin."""


class Kind(StrEnum):
    HARM = "harm"
    """Higher is worse (error rate, invalid answers, slow requests)."""
    NON_INFERIORITY = "non_inferiority"
    """Higher is better (accuracy, validity)."""


@dataclass(frozen=True, slots=True)
class Interval:
    lo: float
    hi: float


@dataclass(frozen=True, slots=True)
class Comparison:
    """One gate's view of candidate vs control at this look."""

    kind: Kind
    margin: float
    candidate: tuple[int, int]
    """(events, trials) of the candidate."""
    control: tuple[int, int]
    difference: float | None
    """Candidate rate minus control rate (None while an arm has no trials)."""
    anytime: Interval | None
    """Confidence-sequence interval of the difference: valid at every look."""
    fixed: Interval | None
    """Fixed-horizon (Newcombe score) interval of the difference: valid for one look only."""
    decision: Decision
    needed_per_arm: int
    """Trials per arm the power calculation asks for before the decision is expected."""

    def text(self, name: str) -> str:
        (k1, n1), (k0, n0) = self.candidate, self.control
        if self.difference is None or self.anytime is None:
            return f"{name}: no data yet ({n1} vs {n0} trials)"
        return (
            f"{name} {self.difference:+.3f} vs control ({k1}/{n1} vs {k0}/{n0}; anytime-valid "
            f"{self.anytime.lo:+.3f}..{self.anytime.hi:+.3f}, margin "
            f"{'+' if self.kind is Kind.HARM else '-'}{self.margin:g}): {self.decision}"
        )


def rho_for(planned_n: int, alpha: float, planned_variance: float = 0.25) -> float:
    """The mixture parameter that makes the sequence tightest near `planned_n` trials of
    variance `planned_variance` (Waudby-Smith et al. 2024, eq. 2.6). Fixed before the data
    arrive: a rho chosen from the data would void the guarantee."""
    a = -2 * math.log(alpha)
    return math.sqrt((a + math.log(a + 1)) / (planned_n * max(planned_variance, _MIN_VARIANCE)))


def radius(
    n: NDArray[np.float64] | float,
    variance: NDArray[np.float64] | float,
    alpha: float,
    rho: float,
) -> NDArray[np.float64]:
    """Half-width of the asymptotic confidence sequence after `n` draws of variance `variance`."""
    n_arr = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    v = n_arr * np.asarray(variance, dtype=np.float64) * rho**2 + 1.0
    out: NDArray[np.float64] = np.sqrt(2 * v / (n_arr**2 * rho**2) * np.log(np.sqrt(v) / alpha))
    return out


def rate_cs(
    events: NDArray[np.float64] | int,
    n: NDArray[np.float64] | int,
    alpha: float,
    planned_n: int = DEFAULT_PLANNED_N,
    planned_rate: float = 0.5,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Confidence sequence of a Bernoulli rate, clipped to [0, 1] (vectorised)."""
    k = np.asarray(events, dtype=np.float64)
    t = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    p = k / t
    var = np.maximum(p * (1 - p), _MIN_VARIANCE)
    rho = rho_for(planned_n, alpha, planned_rate * (1 - planned_rate))
    r = radius(t, var, alpha, rho)
    return np.clip(p - r, 0.0, 1.0), np.clip(p + r, 0.0, 1.0)


def difference_cs(
    k1: NDArray[np.float64] | int,
    n1: NDArray[np.float64] | int,
    k0: NDArray[np.float64] | int,
    n0: NDArray[np.float64] | int,
    alpha: float,
    planned_n: int = DEFAULT_PLANNED_N,
    planned_rate: float = 0.5,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Bounds on rate1 - rate0 from one two-sided sequence per arm at level alpha. The normal
    mixture boundary is symmetric, so each side of an arm's sequence errs with probability
    alpha/2; a one-sided statement about the difference (`lo > margin`, or `hi < -margin`)
    needs one side of each arm, so it errs with probability at most alpha (a union bound).
    Every decision in `compare` is such a one-sided statement."""
    lo1, hi1 = rate_cs(k1, n1, alpha, planned_n, planned_rate)
    lo0, hi0 = rate_cs(k0, n0, alpha, planned_n, planned_rate)
    return lo1 - hi0, hi1 - lo0


def fixed_difference_ci(k1: int, n1: int, k0: int, n0: int, alpha: float) -> Interval:
    """The fixed-horizon score interval of rate1 - rate0 (Newcombe), via statsmodels."""
    lo, hi = confint_proportions_2indep(k1, n1, k0, n0, method="newcomb", alpha=alpha)
    return Interval(float(lo), float(hi))


def required_per_arm(
    margin: float, base_rate: float, alpha: float = DEFAULT_ALPHA, power: float = 0.8
) -> int:
    """Trials per arm for a one-sided test to tell `base_rate` from `base_rate + margin` with
    the given power (Cohen's h, statsmodels' normal power solver). Printed at the start of a
    ramp as the evidence each step waits for."""
    p0 = min(max(base_rate, 1e-4), 1 - 1e-4)
    p1 = min(max(p0 + margin, 1e-4), 1 - 1e-4)
    h = abs(proportion_effectsize(p1, p0))
    if h == 0:
        return 1
    n = NormalIndPower().solve_power(
        effect_size=h, alpha=alpha, power=power, ratio=1.0, alternative="larger"
    )
    return max(1, math.ceil(float(n)))


def compare(
    kind: Kind,
    candidate: tuple[int, int],
    control: tuple[int, int],
    margin: float,
    *,
    alpha: float = DEFAULT_ALPHA,
    planned_n: int = DEFAULT_PLANNED_N,
    base_rate: float | None = None,
) -> Comparison:
    """Candidate vs control on one Bernoulli figure, decided on the anytime-valid interval."""
    (k1, n1), (k0, n0) = candidate, control
    base = base_rate if base_rate is not None else (k0 / n0 if n0 else 0.05)
    if kind is Kind.NON_INFERIORITY:
        needed = required_per_arm(margin, 1 - base, alpha)
    else:
        needed = required_per_arm(margin, base, alpha)
    if n1 == 0 or n0 == 0:
        return Comparison(
            kind, margin, candidate, control, None, None, None, Decision.CONTINUE, needed
        )
    lo_a, hi_a = difference_cs(k1, n1, k0, n0, alpha, planned_n, base)
    lo, hi = float(lo_a), float(hi_a)
    if kind is Kind.HARM:
        decision = Decision.BREACH if lo > margin else Decision.CONTINUE
        if hi <= margin:
            decision = Decision.PASS
    else:
        if hi < -margin:
            decision = Decision.BREACH
        elif lo > -margin:
            decision = Decision.PASS
        else:
            decision = Decision.CONTINUE
    return Comparison(
        kind,
        margin,
        candidate,
        control,
        k1 / n1 - k0 / n0,
        Interval(lo, hi),
        fixed_difference_ci(k1, n1, k0, n0, alpha),
        decision,
        needed,
    )


@dataclass(frozen=True, slots=True)
class AAResult:
    experiments: int
    looks: int
    per_look: int
    rate: float
    alpha: float
    sequential_false_breach: float
    fixed_false_breach: float
    fixed_single_look: float
    """The fixed-horizon test at its one planned look (the last): near alpha, as designed."""


def simulate_aa(
    experiments: int = 2000,
    looks: int = 20,
    per_look: int = 50,
    rate: float = 0.05,
    alpha: float = DEFAULT_ALPHA,
    margin: float = 0.0,
    seed: int = 0,
    candidate_rate: float | None = None,
) -> AAResult:
    """A/A experiments (candidate = control, both at `rate`), the harm gate checked at every
    look: the share of experiments with at least one false breach, for the confidence sequence
    and for the fixed-horizon one-sided test it replaces (breach when the (1 - 2 alpha)
    two-sided Newcombe-style normal interval of the difference lies above `margin`, i.e. a
    one-sided level-alpha z-test at every look). With `candidate_rate` above `rate + margin`
    the same figures are the power: the share of worse candidates caught."""
    rng = np.random.default_rng(seed)
    shape = (experiments, looks)
    rate1 = rate if candidate_rate is None else candidate_rate
    k1 = np.cumsum(rng.binomial(per_look, rate1, size=shape), axis=1).astype(np.float64)
    k0 = np.cumsum(rng.binomial(per_look, rate, size=shape), axis=1).astype(np.float64)
    n = per_look * np.arange(1, looks + 1, dtype=np.float64)[None, :]
    lo, _ = difference_cs(k1, n, k0, n, alpha, per_look * looks, rate)
    seq = (lo > margin).any(axis=1).mean()
    # Fixed horizon: the one-sided z-test on the pooled rate, at every look.
    p1, p0 = k1 / n, k0 / n
    pooled = (k1 + k0) / (2 * n)
    se = np.sqrt(np.maximum(pooled * (1 - pooled), 1e-12) * 2 / n)
    from scipy.stats import norm

    z = (p1 - p0 - margin) / se
    crossed = z > norm.ppf(1 - alpha)
    return AAResult(
        experiments=experiments,
        looks=looks,
        per_look=per_look,
        rate=rate,
        alpha=alpha,
        sequential_false_breach=float(seq),
        fixed_false_breach=float(crossed.any(axis=1).mean()),
        fixed_single_look=float(crossed[:, -1].mean()),
    )
