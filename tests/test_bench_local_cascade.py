"""The recommended cascade of the local-model bench: the target it asks the sweep for, the
fall-back to the LLM's own accuracy when that target is out of reach, and the cost saved."""

from __future__ import annotations

import pytest

from eval.summary import Outcome
from tools.bench.local_cascade import README_BEGIN, README_END, readme_block, recommend

LLM_COST = 0.001


def answers(
    gold: list[str], right: list[bool], confidence: list[float] | None = None
) -> list[Outcome]:
    """One answer per review: the gold category where `right`, another one elsewhere; the local
    stage (with `confidence`) is free, the LLM costs `LLM_COST` a review."""
    local = confidence is not None
    return [
        Outcome(
            "local" if local else "llm",
            i,
            g if ok else "Other",
            None,
            1.0,
            0.0 if local else LLM_COST,
            1,
            confidence[i] if confidence is not None else None,
        )
        for i, (g, ok) in enumerate(zip(gold, right, strict=True))
    ]


# Ten reviews: the local model is right on its six confident ones and wrong on the four
# unsure ones; the LLM is right on all but review 0 (a confident one).
GOLD = ["Bug Report"] * 10
CHEAP = answers(GOLD, [True] * 6 + [False] * 4, [0.9] * 6 + [0.4] * 4)
STRONG = answers(GOLD, [False] + [True] * 9)


def test_a_reachable_target_takes_the_cheapest_threshold() -> None:
    c = recommend(GOLD, CHEAP, STRONG, target=1.0)
    best = c["best"]
    assert c["asked_reached"] and c["target_accuracy"] == 1.0
    # Any threshold in (0.4, 0.9] keeps the six confident answers and escalates the rest.
    assert best["threshold"] == pytest.approx(0.45)
    assert best["accuracy"] == 1.0 and best["escalation_share"] == pytest.approx(0.4)
    assert best["cost_per_1k_usd"] == pytest.approx(0.4 * LLM_COST * 1000)
    assert c["llm_cost_per_1k_usd"] == pytest.approx(LLM_COST * 1000)
    assert best["cost_saved_share"] == pytest.approx(0.6)
    assert c["cheap_accuracy"] == pytest.approx(0.6) and c["strong_accuracy"] == 0.9


def test_an_unreachable_target_falls_back_to_the_llms_accuracy() -> None:
    # The local model is now wrong on review 1 too, with confidence 0.9: no threshold is right
    # on every review, and matching the LLM alone (0.9) still saves most of the cost.
    cheap = answers(GOLD, [True, False] + [True] * 4 + [False] * 4, [0.9] * 6 + [0.4] * 4)
    c = recommend(GOLD, cheap, STRONG, target=1.0)
    assert not c["asked_reached"] and c["asked_target"] == 1.0
    assert c["max_accuracy"] == pytest.approx(0.9)
    assert c["target_accuracy"] == pytest.approx(0.9)
    assert c["target_source"] == "strong variant accuracy"
    assert c["best"]["accuracy"] == pytest.approx(0.9)
    assert c["best"]["cost_saved_share"] == pytest.approx(0.6)


def test_the_readme_block_without_figures_says_so() -> None:
    block = readme_block(None, None, "by the bench")
    assert block.startswith(README_BEGIN + "\n") and block.endswith("\n" + README_END)
    assert "not measured" in block
