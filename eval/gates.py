"""Release gates of offline eval: does each candidate keep up with the control?

Gates come from the experiment's `gates:` block in the routes file, overridden by command-line
flags; what neither sets falls back to `DEFAULT_GATES`. Every variant other than the control is
a candidate (the control alone is checked when it is the only variant).

* `accuracy_margin`: candidate accuracy minus control accuracy >= -margin (point estimate;
  the summary also carries the interval of the difference);
* `min_validity`: share of reviews with a valid answer;
* `max_p95_ms`: p95 latency of the calls;
* `max_cost_per_review_usd`: mean spend per review.
"""

from __future__ import annotations

from typing import Any

from gateway.experiments.config import Gates

DEFAULT_GATES = Gates(accuracy_margin=0.02, min_validity=0.995)
_EPS = 1e-12


def merge_gates(configured: Gates | None, **flags: float | None) -> Gates:
    """Defaults, then the routes file's block, then the flags that were given."""
    merged = DEFAULT_GATES.model_dump()
    if configured is not None:
        merged |= configured.model_dump(exclude_none=True)
    merged |= {k: v for k, v in flags.items() if v is not None}
    return Gates.model_validate(merged)


def check_gates(summary: dict[str, Any], gates: Gates) -> dict[str, Any]:
    """`{"config", "passed", "results": {variant: [check, ...]}, "failed": [text, ...]}`."""
    control = summary["meta"]["control"]
    names = [n for n in summary["variants"] if n != control] or [control]
    results: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        fig = summary["variants"][name]
        checks = []
        comparison = summary["comparisons"].get(name)
        if gates.accuracy_margin is not None and comparison is not None:
            diff, limit = comparison["accuracy_diff"], -gates.accuracy_margin
            text = (
                f"accuracy {fig['accuracy']:.4f} vs control "
                f"{summary['variants'][control]['accuracy']:.4f} (diff {diff:+.4f}, "
                f"allowed down to {limit:+.4f})"
            )
            checks.append(_check("accuracy", diff, limit, diff >= limit - _EPS, text))
        if gates.min_validity is not None:
            value = fig["validity_rate"]
            text = f"validity {value:.4f} (min {gates.min_validity:.4f})"
            checks.append(
                _check("validity", value, gates.min_validity, value >= gates.min_validity, text)
            )
        if gates.max_p95_ms is not None:
            p95 = fig["latency_ms"]["p95"]
            ok = p95 is not None and p95 <= gates.max_p95_ms
            text = f"p95 latency {p95 or 0:.1f} ms (max {gates.max_p95_ms:g} ms)"
            checks.append(_check("p95_latency", p95, gates.max_p95_ms, ok, text))
        if gates.max_cost_per_review_usd is not None:
            cost, limit = fig["cost_per_review_usd"], gates.max_cost_per_review_usd
            text = f"cost per review ${cost:.6f} (max ${limit:.6f})"
            checks.append(_check("cost", cost, limit, cost <= limit + _EPS, text))
        results[name] = checks
    failed = [f"{n}: {c['detail']}" for n, cs in results.items() for c in cs if not c["passed"]]
    return {
        "config": gates.model_dump(),
        "passed": not failed,
        "results": results,
        "failed": failed,
    }


def _check(
    gate: str, value: float | None, limit: float, passed: bool, detail: str
) -> dict[str, Any]:
    return {"gate": gate, "value": value, "limit": limit, "passed": passed, "detail": detail}
