"""The recommended cascade of `make bench-local-model`: the local model first, the LLM below a
confidence threshold picked by the cascade sweep (`eval.cascade.sweep_cascade`) for a target
accuracy.

Run on the shared data's Huang-20% held-out split with the local model the bench trained on
the rest. What is measured and what is simulated:

* the share escalated at each threshold depends on the local model's confidence alone:
  measured;
* the LLM's answers come from the upstream simulator's GPT-4o profile
  (`devtools.simulator.profiles.GPT4O_LIKE`), given the split's labels: right on 90% of the
  reviews, its errors placed by a hash of the text and so independent of the local model's.
  They go through the real eval path (`eval.offline`: the gateway's `VariantPool`, prompt,
  validation and cost accounting; the simulator on 127.0.0.1). The cascade's accuracy is that
  of a 90%-accurate LLM with independent errors, not a measurement of GPT-4o;
* cost: the simulator's token count (4 characters a token) of the gateway's real prompt and
  answer, at the profile's price, GPT-4o's list price ($2.50 / $10 per 1M input / output
  tokens, as litellm's `gpt-4o` price-map entry that `gateway.request.pricing` reads); the
  local stage costs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from devtools.simulator.profiles import GPT4O_LIKE
from eval.cascade import Answered, sweep_cascade
from eval.offline import EvalOptions, evaluate
from gateway.infra.settings import Settings
from loadtest.procs import start_simulator
from tools.bench.docblock import markers
from training.data import Example

PLAN_TARGET = 0.95
"""The target accuracy of the local-model plan."""
CHEAP, STRONG = "local", "llm"
LLM_MODEL = "openrouter/openai/gpt-4o"
SIM_KEY = "sk-simulator"
LATENCY_SCALE = 0.02
"""The simulator's latencies are not reported; scaled down so the run takes seconds."""
README_BEGIN, README_END = markers("cascade")


def recommend(
    gold: Sequence[str],
    cheap: Sequence[Answered],
    strong: Sequence[Answered],
    target: float = PLAN_TARGET,
) -> dict[str, Any]:
    """The sweep for `target`; when no threshold reaches it, the sweep for the LLM's own
    accuracy (the sweep's default target), so the recommendation costs no accuracy against
    the LLM alone. Adds the figures the docs quote: the target asked, whether it was reached,
    the best accuracy on the curve, costs per 1,000 reviews and the share of cost saved."""
    sweep = sweep_cascade(gold, cheap, strong, target=target)
    reached = sweep["best"] is not None
    if not reached:
        sweep = sweep_cascade(gold, cheap, strong)
    llm = sweep["strong_cost_per_review_usd"]
    best = sweep["best"]
    out = sweep | {
        "asked_target": target,
        "asked_reached": reached,
        "max_accuracy": max(p["accuracy"] for p in sweep["curve"]),
        "llm_cost_per_1k_usd": llm * 1000,
    }
    if best is not None:
        out["best"] = best | {
            "cost_per_1k_usd": best["cost_per_review_usd"] * 1000,
            "cost_saved_share": 1 - best["cost_per_review_usd"] / llm if llm else 0.0,
        }
    return out


def measure(model_dir: Path, test: Sequence[Example], work: Path) -> dict[str, Any]:
    """Both stages answer every held-out review through the eval path (the LLM from the
    simulator on loopback); the recommendation from their answers."""
    data = work / "huang20.jsonl"
    data.write_text(
        "".join(
            json.dumps({"text": e.text, "category": e.category, "review_id": e.review_id}) + "\n"
            for e in test
        ),
        encoding="utf-8",
    )
    sim = start_simulator(
        args=["--latency-scale", str(LATENCY_SCALE), "--labels", str(data)],
        log=work / "simulator.log",
    )
    try:
        routes = work / "cascade-routes.yaml"
        routes.write_text(yaml.safe_dump(_routes(model_dir, sim.url)), encoding="utf-8")
        settings = Settings(
            routes=routes, data_dir=work / "cascade-data", provider_keys={"openrouter": SIM_KEY}
        )
        opts = EvalOptions(
            data=data,
            out=work / "cascade-eval",
            variants=[CHEAP, STRONG],
            control=STRONG,
            sweep=(CHEAP, STRONG),
            target_accuracy=PLAN_TARGET,
            progress=False,
        )
        run = evaluate(opts, settings)
    finally:
        sim.stop()
    gold = [r.category for r in run.rows]
    return recommend(gold, run.outcomes[CHEAP], run.outcomes[STRONG]) | {
        "n": len(run.rows),
        "llm_model": LLM_MODEL,
        "llm_profile": GPT4O_LIKE.name,
        "llm_profile_accuracy": GPT4O_LIKE.accuracy,
        "price_per_1m": _price(),
    }


def _price() -> dict[str, float]:
    price = GPT4O_LIKE.price
    assert price is not None  # the profile sets GPT-4o's list price
    return {"input": price.input_per_1m, "output": price.output_per_1m}


def _routes(model_dir: Path, sim_url: str) -> dict[str, Any]:
    return {
        "experiments": [
            {
                "name": "cascade-bench",
                "salt": "cascade-bench",
                "variants": [
                    {"name": STRONG, "model": LLM_MODEL, "api_base": f"{sim_url}/v1", "weight": 1},
                    {"name": CHEAP, "model": "local", "model_path": str(model_dir)},
                ],
            }
        ]
    }


# --------------------------------------------------------------------------------------------
# What the docs show
# --------------------------------------------------------------------------------------------


def _target_sentence(c: dict[str, Any]) -> str:
    if c["asked_reached"]:
        return (
            f"The threshold is the cheapest the sweep finds for accuracy >="
            f" {c['asked_target']:.2f}."
        )
    return (
        f"The plan's target accuracy of {c['asked_target']:.2f} is out of reach on this split"
        f" (at best {c['max_accuracy']:.3f}); the threshold is the sweep's default instead: the"
        f" cheapest that matches the LLM alone ({c['target_accuracy']:.3f})."
    )


def _caveat(c: dict[str, Any]) -> str:
    p = c["price_per_1m"]
    return (
        "The share escalated is measured (the local model's confidence); the LLM is the"
        f" upstream simulator's `{c['llm_profile']}` profile ({c['llm_profile_accuracy']:.0%}"
        " right, its errors independent of the local model's), not GPT-4o, so the accuracies"
        " are a simulation (a real LLM tends to miss the same hard reviews, which would lower"
        f" them). Cost: the gateway's prompt at ${p['input']:.2f} / ${p['output']:.2f} per 1M"
        " input / output tokens (GPT-4o's list price), tokens counted as 4 characters each;"
        " an escalated review pays both stages, the local one nothing."
    )


def headline(c: dict[str, Any], approach: str) -> str:
    """One paragraph: the recommended threshold and what it costs and saves."""
    b = c["best"]
    return (
        f"Local `{approach}` first, the LLM (`{c['llm_model']}`) when its confidence is below"
        f" **{b['threshold']:.2f}**: **{b['escalation_share']:.1%}**"
        f" of reviews escalated, accuracy {b['accuracy']:.3f} (LLM alone"
        f" {c['strong_accuracy']:.3f}, local alone {c['cheap_accuracy']:.3f}),"
        f" **${b['cost_per_1k_usd']:.2f}** per 1,000 reviews against"
        f" ${c['llm_cost_per_1k_usd']:.2f} for the LLM alone: **{b['cost_saved_share']:.1%}"
        f" saved**, on the shared Huang-20% held-out split ({c['n']} reviews)."
        f" {_target_sentence(c)}"
    )


def doc_lines(c: dict[str, Any], approach: str) -> list[str]:
    """The section of the bench's block in docs/local-model.md, with the sweep's table."""
    lines = [
        "",
        f"**Recommended cascade** (`eval.cascade` sweep). {headline(c, approach)} {_caveat(c)}",
        "",
        "| threshold | escalated | accuracy | $ per 1,000 reviews | saved vs LLM alone |",
        "| --- | --- | --- | --- | --- |",
    ]
    llm = c["strong_cost_per_review_usd"]
    for p in c["curve"]:
        mark = "**" if c["best"] is not None and p["threshold"] == c["best"]["threshold"] else ""
        saved = 1 - p["cost_per_review_usd"] / llm if llm else 0.0
        lines.append(
            f"| {mark}{p['threshold']:.2f}{mark} | {p['escalation_share']:.1%} |"
            f" {p['accuracy']:.3f} | {p['cost_per_review_usd'] * 1000:.2f} | {saved:.1%} |"
        )
    return lines


def readme_block(c: dict[str, Any] | None, approach: str | None, stamp: str) -> str:
    """The README's cascade block; `stamp` says what measured it, where and when."""
    if c is None or c["best"] is None or approach is None:
        body = "Recommended cascade: not measured (the shared data was not found or left out)."
    else:
        body = (
            f"**Recommended cascade**, measured {stamp}: {headline(c, approach)} {_caveat(c)}"
            " Every threshold: [docs/local-model.md](docs/local-model.md#figures)."
        )
    return f"{README_BEGIN}\n{body}\n{README_END}"
