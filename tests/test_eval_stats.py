"""Eval statistics against figures worked out by hand (or published), plus the cascade sweep,
the gates and the training split and calibration helpers on small hand-made inputs."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from eval import stats
from eval.cascade import sweep_cascade
from eval.data import DataError, load_labelled, sample
from eval.gates import DEFAULT_GATES, check_gates, merge_gates
from eval.report import render_report
from gateway.experiments.config import Gates
from training.data import Example, stratified_split
from training.local import fit_temperature

# Ten reviews, B = Bug Report, F = Feature Request, O = Other, None = invalid answer.
GOLD = ["B", "B", "B", "B", "F", "F", "F", "O", "O", "O"]
PRED = ["B", "B", "B", "F", "F", "F", "B", "O", "F", None]


def test_accuracy_per_class_macro_f1_and_confusion_by_hand() -> None:
    # right: B,B,B (items 1-3), F,F (5-6), O (8) = 6 of 10
    assert stats.accuracy(GOLD, PRED) == pytest.approx(0.6)
    table = stats.per_class(GOLD, PRED, ["B", "F", "O"])
    # B: tp 3, predicted B at items 1,2,3,7 (4) -> P 3/4; support 4 -> R 3/4; F1 3/4
    assert table["B"] == pytest.approx(
        {"precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4}
    )
    # F: tp 2, predicted F at items 4,5,6,9 (4) -> P 1/2; support 3 -> R 2/3;
    # F1 = 2 * 1/2 * 2/3 / (1/2 + 2/3) = 4/7
    assert table["F"]["precision"] == pytest.approx(0.5)
    assert table["F"]["recall"] == pytest.approx(2 / 3)
    assert table["F"]["f1"] == pytest.approx(4 / 7)
    # O: tp 1, predicted O once -> P 1; support 3 -> R 1/3; F1 = 2 * 1/3 / (4/3) = 1/2
    assert table["O"] == pytest.approx({"precision": 1.0, "recall": 1 / 3, "f1": 0.5, "support": 3})
    # macro-F1 = (3/4 + 4/7 + 1/2) / 3 = (21/28 + 16/28 + 14/28) / 3 = 17/28
    assert stats.macro_f1(GOLD, PRED) == pytest.approx(17 / 28)
    # rows gold, columns answers; the invalid answer of item 10 gets its own column
    assert stats.confusion(GOLD, PRED, ["B", "F", "O"]) == {
        "rows": ["B", "F", "O"],
        "columns": ["B", "F", "O", stats.INVALID],
        "matrix": [[3, 1, 0, 0], [1, 2, 0, 0], [0, 1, 1, 1]],
    }


def test_macro_f1_ignores_classes_missing_from_gold_but_not_their_cost() -> None:
    # predicting "O" (absent from gold) costs B its recall: B has P 1, R 1/2 -> F1 2/3
    gold, pred = ["B", "B", "F"], ["B", "O", "F"]
    assert stats.macro_f1(gold, pred) == pytest.approx((2 / 3 + 1.0) / 2)


def test_mcnemar_exact() -> None:
    # b=1, c=8: two-sided binomial P = 2 * (C(9,0) + C(9,1)) / 2^9 = 2 * 10 / 512
    assert stats.mcnemar_exact(1, 8) == pytest.approx(0.0390625)
    assert stats.mcnemar_exact(8, 1) == pytest.approx(0.0390625)
    # b=0, c=5: 2 * 1/32
    assert stats.mcnemar_exact(0, 5) == pytest.approx(0.0625)
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.discordant([True, True, False, False], [True, False, True, True]) == (1, 2)


def test_wilson_newcombe_and_sample_size_against_known_values() -> None:
    # Wilson 95% for 8/10: 0.4902 .. 0.9433 (e.g. Newcombe 1998, Table I style tables)
    lo, hi = stats.wilson(8, 10)
    assert (lo, hi) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert stats.wilson(0, 0) == (0.0, 1.0)
    # Newcombe 1998 (Stat Med 17:873), example 56/70 vs 48/80: 0.0524 .. 0.3339
    assert stats.newcombe(56, 70, 48, 80) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    # 0.5 vs 0.6, alpha 0.05 two-sided, power 0.8: (1.96*sqrt(2*.55*.45) + 0.8416*sqrt(.49))^2
    # / 0.01 = 387.3 -> 388 per group
    assert stats.sample_size(0.5, 0.6) == 388
    assert stats.sample_size_for_mde(0.8, 0.02) == stats.sample_size(0.8, 0.78) == 6510


def test_bootstrap_interval_contains_the_difference_and_is_seeded() -> None:
    control = [True] * 50 + [False] * 50
    candidate = [True] * 60 + [False] * 40  # +10 pp, all ten gains on the same items
    first = stats.paired_bootstrap_diff(control, candidate)
    assert first == stats.paired_bootstrap_diff(control, candidate)
    assert first[0] <= 0.10 <= first[1]
    assert stats.latency_percentiles([1.0, 2.0, 3.0, 4.0]) == pytest.approx(
        {"p50": 2.5, "p95": 3.85, "p99": 3.97}
    )


def test_stratified_split_keeps_class_shares_is_disjoint_and_seeded() -> None:
    examples = [
        Example(text=f"review {i}", category=cat)
        for i, cat in enumerate(["Bug Report"] * 50 + ["Feature Request"] * 30 + ["Praise"] * 20)
    ]
    examples.append(Example(text="the only one", category="Other"))
    train, test = stratified_split(examples, 0.2, 7)
    assert {e.text for e in train}.isdisjoint(e.text for e in test)
    assert len(train) + len(test) == len(examples)
    held = Counter(e.category for e in test)
    assert held == {"Bug Report": 10, "Feature Request": 6, "Praise": 4}  # a singleton stays
    assert [examples.index(e) for e in test] == sorted(examples.index(e) for e in test)
    assert stratified_split(examples, 0.2, 7) == (train, test)
    assert stratified_split(examples, 0.2, 8) != (train, test)


def test_fit_temperature_recovers_the_temperature_of_the_data() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(4000, 4))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    assert fit_temperature(logits * 3.0, y) == pytest.approx(3.0, rel=0.1)


@dataclass(frozen=True)
class Call:
    index: int
    category: str | None
    confidence: float | None
    cost_usd: float
    latency_ms: float


def test_cascade_sweep_by_hand() -> None:
    gold = ["B", "F", "B", "F"]
    cheap = [
        Call(0, "B", 0.95, 0.0, 1.0),  # right, confident
        Call(1, "B", 0.40, 0.0, 1.0),  # wrong, unsure
        Call(2, "F", 0.70, 0.0, 1.0),  # wrong, fairly sure
        Call(3, None, None, 0.0, 1.0),  # invalid: always escalates
    ]
    strong = [Call(i, g, None, 0.01, 100.0) for i, g in enumerate(gold)]  # always right
    out = sweep_cascade(gold, cheap, strong)
    by_t = {p["threshold"]: p for p in out["curve"]}
    assert len(out["curve"]) == 21
    assert by_t[0.0]["escalation_share"] == 0.25 and by_t[0.0]["accuracy"] == 0.5
    assert by_t[0.5]["escalation_share"] == 0.5 and by_t[0.5]["accuracy"] == 0.75
    assert by_t[0.75]["escalation_share"] == 0.75 and by_t[0.75]["accuracy"] == 1.0
    assert by_t[0.75]["cost_per_review_usd"] == pytest.approx(0.03 / 4)
    assert by_t[0.75]["mean_latency_ms"] == pytest.approx((4 * 1 + 3 * 100) / 4)
    assert by_t[1.0]["escalation_share"] == 1.0
    shares = [p["escalation_share"] for p in out["curve"]]
    assert shares == sorted(shares)
    # target = strong's accuracy (1.0): the cheapest threshold reaching it is 0.75
    assert out["best"]["threshold"] == 0.75 and out["target_accuracy"] == 1.0


def test_gates_merge_and_name_what_failed() -> None:
    assert merge_gates(None) == DEFAULT_GATES
    merged = merge_gates(Gates(max_p95_ms=100), min_validity=0.9)
    assert (merged.accuracy_margin, merged.min_validity, merged.max_p95_ms) == (0.02, 0.9, 100)
    figures = {"validity_rate": 0.98, "latency_ms": {"p95": 50.0}, "cost_per_review_usd": 0.0}
    summary = {
        "meta": {"control": "control"},
        "variants": {
            "control": {**figures, "accuracy": 0.80},
            "local": {**figures, "accuracy": 0.77},
        },
        "comparisons": {"local": {"accuracy_diff": -0.03}},
    }
    result = check_gates(summary, merged)
    assert not result["passed"]
    assert [c["gate"] for c in result["results"]["local"] if not c["passed"]] == ["accuracy"]
    assert "local: accuracy 0.7700 vs control 0.8000" in result["failed"][0]
    assert check_gates(summary, merge_gates(None, accuracy_margin=0.05, min_validity=0.9))["passed"]


def test_labelled_formats(tmp_path: Path) -> None:
    chat = {
        "messages": [
            {"role": "system", "content": "You are ..."},
            {"role": "user", "content": "App: Notes\nRating: 2/5\nReview:\nIt crashes on save"},
            {
                "role": "assistant",
                "content": json.dumps({"category": "bug report", "urgency": "high"}),
            },
        ]
    }
    (tmp_path / "val.jsonl").write_text(json.dumps(chat) + "\n")
    [row] = load_labelled(tmp_path / "val.jsonl")
    assert (row.text, row.app, row.rating) == ("It crashes on save", "Notes", 2)
    assert (row.category, row.urgency) == ("Bug Report", "High")
    (tmp_path / "set.csv").write_text('text,category,urgency\n"Add dark mode, please",feature,\n')
    [row] = load_labelled(tmp_path / "set.csv")
    assert (row.text, row.category, row.urgency) == (
        "Add dark mode, please",
        "Feature Request",
        None,
    )
    arff = "@relation x\n@attribute text string\n@data\n'cant log in',BugReport\n'nice',Other\n"
    (tmp_path / "t.arff").write_text(arff)
    assert [r.category for r in load_labelled(tmp_path / "t.arff")] == ["Bug Report", "Other"]
    (tmp_path / "bad.jsonl").write_text(json.dumps({"text": "x", "category": "Spam"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:1: category 'Spam'"):
        load_labelled(tmp_path / "bad.jsonl")
    rows = load_labelled(tmp_path / "t.arff") * 5
    assert sample(rows, 3) == sample(rows, 3) and len(sample(rows, 3)) == 3


def test_report_escapes_everything_from_the_data() -> None:
    evil = '<script>alert("x")</script>'
    figures = {
        "n": 1,
        "accuracy": 1.0,
        "accuracy_ci95": [0.2, 1.0],
        "macro_f1": 1.0,
        "per_class": {evil: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}},
        "confusion": {"rows": [evil], "columns": [evil], "matrix": [[1]]},
        "urgency_accuracy": None,
        "validity_rate": 1.0,
        "reask_rate": 0.0,
        "fallback_rate": 0.0,
        "latency_ms": {"p50": 1.0, "p95": 1.0, "p99": 1.0},
        "cost_per_review_usd": 0.0,
        "cost_per_1000_usd": 0.0,
    }
    summary = {
        "meta": {"data": evil, "rows": 1, "mode": "in_process", "experiment": evil,
                 "control": "a", "created_at": "now"},
        "variants": {"a": figures},
        "comparisons": {},
        "gates": {"passed": False, "results": {"a": [{"gate": "x", "passed": False,
                                                      "detail": evil}]}},
    }  # fmt: skip
    html = render_report(summary, {"a": [1.0, 2.0]})
    assert "<script" not in html and "&lt;script&gt;" in html
