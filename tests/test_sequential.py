"""The anytime-valid gates without servers: A/A experiments looked at every interval keep the
false-breach rate at or below alpha where the fixed-horizon test checked as often inflates it;
the decisions of `compare`; the docs' figures are the command's output."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.live import LiveFigures
from eval.promotion import Limits, Plan, judge
from gateway.experiments import sequential as seq
from tools import experiments_aa

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.2])
def test_aa_false_breach_at_every_look_stays_within_alpha(rate: float) -> None:
    r = seq.simulate_aa(experiments=2000, looks=20, per_look=50, rate=rate, alpha=0.05)
    assert r.experiments == 2000 and r.looks == 20
    assert r.sequential_false_breach <= 0.05
    # the fixed-horizon test is right at its one planned look ...
    assert 0.035 <= r.fixed_single_look <= 0.065
    # ... and inflated when checked at every look
    assert r.fixed_false_breach > 0.1


def test_a_clearly_worse_candidate_is_caught() -> None:
    r = seq.simulate_aa(experiments=500, rate=0.05, candidate_rate=0.15)
    assert r.sequential_false_breach > 0.99


def test_compare_decisions() -> None:
    harm = seq.compare(seq.Kind.HARM, (60, 200), (5, 200), 0.02, planned_n=200)
    assert harm.decision is seq.Decision.BREACH and harm.anytime is not None
    assert harm.anytime.lo > 0.02 and harm.fixed is not None and harm.fixed.lo > harm.anytime.lo
    equal = seq.compare(seq.Kind.HARM, (0, 800), (0, 800), 0.05, planned_n=200)
    assert equal.decision is seq.Decision.PASS
    few = seq.compare(seq.Kind.HARM, (0, 10), (0, 10), 0.05, planned_n=200)
    assert few.decision is seq.Decision.CONTINUE
    none = seq.compare(seq.Kind.HARM, (0, 0), (0, 10), 0.05)
    assert none.decision is seq.Decision.CONTINUE and none.anytime is None
    worse_acc = seq.compare(seq.Kind.NON_INFERIORITY, (100, 400), (360, 400), 0.02)
    assert worse_acc.decision is seq.Decision.BREACH
    same_acc = seq.compare(seq.Kind.NON_INFERIORITY, (3600, 4000), (3600, 4000), 0.05)
    assert same_acc.decision is seq.Decision.PASS
    # the power calculation grows as the margin shrinks
    assert seq.required_per_arm(0.01, 0.05) > seq.required_per_arm(0.02, 0.05) > 1


def test_judge_names_the_accuracy_gate_from_corrections() -> None:
    lim = Limits(min_accuracy_delta=-0.05, min_corrected=20)
    plan = Plan(20, 20, 0.01, 0.01, 0.8, "assumed")
    figs = LiveFigures(requests=100, calls=100, latency_n=100)
    acc = {"candidate": (10, 60), "control": (55, 60)}
    look = judge((figs, figs), figs, acc, ("candidate", "control"), lim, plan, None)
    assert look.breach is not None and look.breach.startswith("accuracy -0.750 vs control")
    assert look.guardrail is None
    fine = judge((figs, figs), figs, {}, ("candidate", "control"), lim, plan, None)
    assert fine.breach is None and "accuracy" in fine.waiting_for()


def test_judge_guardrail_on_the_step() -> None:
    lim = Limits(max_error_rate=0.02, min_corrected=0)
    plan = Plan(50, 0, 0.01, 0.01, 0.8, "assumed")
    ok = LiveFigures(requests=100, calls=100, latency_n=100)
    bad = LiveFigures(requests=100, errors=40, calls=60, latency_n=100)
    look = judge((ok, ok), bad, {}, ("candidate", "control"), lim, plan, None)
    assert look.guardrail is not None and look.guardrail.startswith("error rate 0.400 > max 0.02")
    assert "accuracy" not in look.comparisons


def test_docs_hold_the_commands_figures() -> None:
    docs = (ROOT / "docs" / "experiments.md").read_text()
    block = experiments_aa.figures()
    assert f"{experiments_aa.START}\n{block}\n{experiments_aa.END}" in docs
