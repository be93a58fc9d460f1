"""`report.html`: one self-contained page (inline CSS and SVG, no scripts, no external files)
with the eval's tables and charts. Jinja2 autoescapes every value from the data; the charts are
built by `eval.plots`, which escapes its labels itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from eval import plots

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Eval report: {{ meta.data }}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;
 padding:0 16px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0 16px}
td,th{padding:4px 8px;border-bottom:1px solid #eee}
th{text-align:left;background:#f6f6f6} td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1b5e20;font-weight:600} .fail{color:#b71c1c;font-weight:600} .muted{color:#666}
.grid{display:flex;flex-wrap:wrap;gap:16px} figure{margin:0}
</style></head><body>
<h1>Offline eval: {{ meta.data }}</h1>
<p class="muted">{{ meta.rows }} reviews · mode {{ meta.mode }} · experiment {{ meta.experiment }}
 · control <b>{{ meta.control }}</b> · {{ meta.created_at }}</p>

<h2>Gates</h2>
<p id="gates" class="{{ 'pass' if gates.passed else 'fail' }}">
{{ 'All gates passed' if gates.passed else 'Gates failed' }}</p>
<table><tr><th>variant</th><th>gate</th><th>result</th><th>detail</th></tr>
{% for name, checks in gates.results.items() %}{% for c in checks %}
<tr><td>{{ name }}</td><td>{{ c.gate }}</td>
<td class="{{ 'pass' if c.passed else 'fail' }}">{{ 'pass' if c.passed else 'FAIL' }}</td>
<td>{{ c.detail }}</td></tr>{% endfor %}{% endfor %}
</table>

<h2>Variants</h2>
<table id="variants"><tr><th>variant</th><th>n</th><th>accuracy</th><th>95% CI</th>
<th>macro-F1</th><th>urgency acc.</th><th>validity</th><th>re-ask</th><th>fallback</th>
<th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>$ / review</th><th>$ / 1000</th></tr>
{% for name, v in variants.items() %}
<tr><td>{{ name }}</td><td class="num">{{ v.n }}</td>
<td class="num accuracy" data-variant="{{ name }}" data-value="{{ v.accuracy }}">
{{- pct(v.accuracy) -}}
</td>
<td class="num">{{ pct(v.accuracy_ci95[0]) }} – {{ pct(v.accuracy_ci95[1]) }}</td>
<td class="num">{{ num(v.macro_f1, 4) }}</td>
<td class="num">{{ pct(v.urgency_accuracy) if v.urgency_accuracy is not none else '–' }}</td>
<td class="num">{{ pct(v.validity_rate) }}</td><td class="num">{{ pct(v.reask_rate) }}</td>
<td class="num">{{ pct(v.fallback_rate) }}</td>
<td class="num">{{ num(v.latency_ms.p50, 1) }}</td>
<td class="num">{{ num(v.latency_ms.p95, 1) }}</td>
<td class="num">{{ num(v.latency_ms.p99, 1) }}</td>
<td class="num">{{ usd(v.cost_per_review_usd) }}</td>
<td class="num">{{ usd(v.cost_per_1000_usd) }}</td></tr>
{% endfor %}</table>

{% if comparisons %}<h2>Candidates vs control</h2>
<table id="comparisons"><tr><th>candidate</th><th>control</th><th>n</th><th>accuracy diff</th>
<th>95% CI</th><th>method</th><th>McNemar b / c</th><th>p</th><th>significant</th></tr>
{% for name, c in comparisons.items() %}
<tr><td>{{ name }}</td><td>{{ c.control }}</td><td class="num">{{ c.n }}</td>
<td class="num">{{ signed(c.accuracy_diff) }}</td>
<td class="num">{{ signed(c.ci95[0]) }} … {{ signed(c.ci95[1]) }}</td><td>{{ c.method }}</td>
<td class="num">{{ c.mcnemar.b ~ ' / ' ~ c.mcnemar.c if c.mcnemar else '–' }}</td>
<td class="num">{{ num(c.mcnemar.p_value, 4) if c.mcnemar else '–' }}</td>
<td>{{ 'yes' if c.significant else 'no' }}</td></tr>{% endfor %}</table>{% endif %}

<h2>Cost vs accuracy</h2>
<figure>{{ charts.cost }}</figure>

<h2>Latency</h2>
<figure>{{ charts.latency }}</figure>

{% if cascade %}<h2>Cascade sweep: {{ cascade.cheap }} → {{ cascade.strong }}</h2>
<p>Target accuracy {{ pct(cascade.target_accuracy) }} ({{ cascade.target_source }}).
{% if cascade.best %}Cheapest threshold reaching it:
<b id="cascade-best">{{ cascade.best.threshold }}</b>
 (accuracy {{ pct(cascade.best.accuracy) }}, {{ usd(cascade.best.cost_per_review_usd) }} per review,
 {{ pct(cascade.best.escalation_share) }} escalated).
{% else %}<b id="cascade-best">No threshold reaches it.</b>{% endif %}</p>
<figure>{{ charts.cascade }}</figure>
<table><tr><th>threshold</th><th>accuracy</th><th>$ / review</th><th>mean ms</th>
<th>escalated</th></tr>
{% for p in cascade.curve %}<tr><td class="num">{{ p.threshold }}</td>
<td class="num">{{ pct(p.accuracy) }}</td>
<td class="num">{{ usd(p.cost_per_review_usd) }}</td>
<td class="num">{{ num(p.mean_latency_ms, 1) }}</td>
<td class="num">{{ pct(p.escalation_share) }}</td></tr>{% endfor %}</table>{% endif %}

<h2>Per class</h2>
<div class="grid">{% for name, v in variants.items() %}
<table><tr><th colspan="5">{{ name }}</th></tr>
<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>
{% for label, c in v.per_class.items() %}<tr><td>{{ label }}</td>
<td class="num">{{ num(c.precision, 3) }}</td>
<td class="num">{{ num(c.recall, 3) }}</td><td class="num">{{ num(c.f1, 3) }}</td>
<td class="num">{{ c.support }}</td></tr>{% endfor %}</table>{% endfor %}</div>

<h2>Confusion matrices</h2>
<div class="grid">{% for name, svg in charts.confusion.items() %}
<figure>{{ svg }}</figure>{% endfor %}</div>
</body></html>
"""


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f}%"


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _usd(value: float | None) -> str:
    return "–" if value is None else f"${value:.6f}"


def _signed(value: float) -> str:
    return f"{value * 100:+.2f} pp"


def _charts(summary: dict[str, Any], latencies: dict[str, list[float]]) -> dict[str, Any]:
    variants = summary["variants"]
    points = [
        plots.Point(name, v["cost_per_1000_usd"], v["accuracy"], *v["accuracy_ci95"])
        for name, v in variants.items()
    ]
    cascade = summary.get("cascade")
    curve = []
    if cascade:
        curve = [
            plots.Point(f"t={p['threshold']}", p["cost_per_review_usd"] * 1000, p["accuracy"])
            for p in cascade["curve"]
        ]
    charts: dict[str, Any] = {
        "cost": plots.scatter_svg(
            points, "Accuracy (95% CI) vs cost", "USD per 1,000 reviews", "accuracy", curve
        ),
        "latency": plots.ecdf_svg(latencies, "Share of calls answered within (ms)"),
        "confusion": {
            name: plots.confusion_svg(v["confusion"], name) for name, v in variants.items()
        },
    }
    if cascade:
        xs = [p["threshold"] for p in cascade["curve"]]
        series = {
            "accuracy": [p["accuracy"] for p in cascade["curve"]],
            "escalated": [p["escalation_share"] for p in cascade["curve"]],
        }
        charts["cascade"] = plots.lines_svg(xs, series, "Cascade: accuracy and escalation share")
    return charts


def render_report(summary: dict[str, Any], latencies: dict[str, list[float]]) -> str:
    """The HTML page for a summary.json body and the raw call latencies per variant."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = env.from_string(TEMPLATE)
    return template.render(
        meta=summary["meta"],
        gates=summary.get("gates") or {"passed": True, "results": {}},
        variants=summary["variants"],
        comparisons=summary.get("comparisons") or {},
        cascade=summary.get("cascade"),
        charts=_charts(summary, latencies),
        pct=_pct,
        num=_num,
        usd=_usd,
        signed=_signed,
    )


def write_report(summary: dict[str, Any], latencies: dict[str, list[float]], path: Path) -> Path:
    path.write_text(render_report(summary, latencies), encoding="utf-8")
    return path
