"""`eval` and `report`: the offline eval of variants over a labelled set, and the online A/B
report of an experiment, printed on the console."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.app import ExperimentOption, RoutesOption, fail, get_settings, parse_names, store_settings

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from gateway.pairs.online_report import OnlineReport


def eval_(
    data: Annotated[Path, typer.Option(help="Labelled set: JSONL, CSV, chat val.jsonl or .arff.")],
    out: Annotated[Path, typer.Option(help="Directory for summary.json and report.html.")],
    variants: Annotated[
        str, typer.Option(help="Variants to evaluate, comma-separated (gateway mode: filter).")
    ] = "",
    control: Annotated[str | None, typer.Option(help="Control variant (default: control).")] = None,
    routes: RoutesOption = None,
    experiment: Annotated[str | None, typer.Option(help="Experiment of the variants.")] = None,
    gateway: Annotated[
        str | None, typer.Option(help="Evaluate a running gateway at this URL instead.")
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="API key for --gateway.")] = None,
    admin_key: Annotated[
        str | None,
        typer.Option(help="--gateway with --variants: admin key [first of GATEWAY_ADMIN_KEYS]."),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Calls in flight.")] = 8,
    limit: Annotated[int | None, typer.Option(min=1, help="Seeded sample of N rows.")] = None,
    gate_margin: Annotated[
        float | None, typer.Option(help="Max accuracy loss vs control [0.02].")
    ] = None,
    gate_validity: Annotated[float | None, typer.Option(help="Min validity rate [0.995].")] = None,
    gate_p95_ms: Annotated[float | None, typer.Option(help="Max p95 latency (ms).")] = None,
    gate_cost_per_review: Annotated[
        float | None, typer.Option(help="Max cost per review (USD).")
    ] = None,
    sweep_cascade: Annotated[
        str | None, typer.Option(help="CHEAP,STRONG: sweep the cascade threshold.")
    ] = None,
    target_accuracy: Annotated[
        float | None, typer.Option(help="Cascade target (default: strong's accuracy).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Run variants over a labelled set; exit 1 when a gate fails."""
    from dataclasses import replace

    from rich.console import Console

    from eval.gates import merge_gates
    from eval.offline import EvalOptions, configured_gates, evaluate

    try:
        config = get_settings()
        if gateway is None and _needs_store(config, routes, experiment, variants, sweep_cascade):
            config = store_settings()
        if admin_key is None and config.admin_keys:
            admin_key = config.admin_keys[0].get_secret_value()
        opts = EvalOptions(
            data=data, out=out, variants=parse_names(variants), control=control, routes=routes,
            experiment=experiment, gateway_url=gateway, api_key=api_key, admin_key=admin_key,
            concurrency=concurrency, limit=limit, sweep=_cascade_pair(sweep_cascade),
            target_accuracy=target_accuracy, progress=progress,
        )  # fmt: skip
        gates = merge_gates(
            configured_gates(opts, config),
            accuracy_margin=gate_margin,
            min_validity=gate_validity,
            max_p95_ms=gate_p95_ms,
            max_cost_per_review_usd=gate_cost_per_review,
        )
        run = evaluate(replace(opts, gates=gates), config)
    except ValueError as exc:
        raise fail(str(exc)) from None
    print_summary(run.summary, Console(width=120))
    Console().print(f"wrote {out / 'summary.json'} and {out / 'report.html'}", highlight=False)
    raise typer.Exit(0 if run.summary["gates"]["passed"] else 1)


def _needs_store(
    config: Any, routes: Path | None, experiment: str | None, variants: str, sweep: str | None
) -> bool:
    """An in-process eval reads the store unless a routes file is given (--routes,
    GATEWAY_ROUTES) that has every variant: the gateway's routes, runtime variants and the
    model registry live there."""
    from eval.offline import pick_experiment
    from gateway.experiments.config import RoutesFileError, load_routes

    path = routes or config.routes
    if path is None:
        return True
    names = [*parse_names(variants), *parse_names(sweep or "")]
    try:
        pick_experiment(load_routes(path), experiment, names)
    except (RoutesFileError, ValueError):
        return True
    return False


def _cascade_pair(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError("--sweep-cascade takes CHEAP,STRONG")
    return parts[0], parts[1]


def print_summary(summary: dict[str, Any], console: Console) -> None:
    """The figures that decide a release, as tables, and every failed gate by name."""
    from rich.table import Table

    table = Table(title=f"eval: {summary['meta']['data']} ({summary['meta']['rows']} reviews)")
    for col in ("variant", "n", "accuracy", "macro-F1", "validity", "p95 ms", "$ / review"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, v in summary["variants"].items():
        p95 = v["latency_ms"]["p95"]
        table.add_row(
            name + (" (control)" if name == summary["meta"]["control"] else ""),
            str(v["n"]),
            f"{v['accuracy'] * 100:.2f}%",
            f"{v['macro_f1']:.4f}",
            f"{v['validity_rate'] * 100:.2f}%",
            "-" if p95 is None else f"{p95:.1f}",
            f"{v['cost_per_review_usd']:.6f}",
        )
    console.print(table)
    for name, c in summary["comparisons"].items():
        p = f", McNemar p={c['mcnemar']['p_value']:.4f}" if c["mcnemar"] else ""
        console.print(
            f"{name} vs {c['control']}: {c['accuracy_diff'] * 100:+.2f} pp "
            f"(95% CI {c['ci95'][0] * 100:+.2f} .. {c['ci95'][1] * 100:+.2f}{p})",
            highlight=False,
        )
    cascade = summary.get("cascade")
    if cascade:
        best = cascade["best"]
        where = "none reaches it" if best is None else f"threshold {best['threshold']:g}"
        console.print(
            f"cascade {cascade['cheap']}->{cascade['strong']}: target "
            f"{cascade['target_accuracy'] * 100:.2f}%: {where}",
            highlight=False,
        )
    gates = summary["gates"]
    for failure in gates["failed"]:
        console.print(f"GATE FAILED: {failure}", style="bold red", highlight=False)
    if gates["passed"]:
        console.print("all gates passed", style="green")


def report(
    experiment: ExperimentOption,
    mde: Annotated[float, typer.Option(help="Difference to detect (accuracy, 0..1).")] = 0.02,
    control: Annotated[str | None, typer.Option(help="Control variant.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """Online A/B report of an experiment from pairs and corrections in Redis."""
    from rich.console import Console

    from eval.online import read_online_report

    try:
        data = read_online_report(store_settings(), experiment, control=control, mde=mde)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if not any(row["traffic"] for row in data["variants"].values()):
        typer.echo(f"error: no served pairs of experiment {experiment!r} in this store", err=True)
        raise typer.Exit(1)
    console = Console(width=160)
    if json_out:
        console.print_json(data=data)
    else:
        console.print(report_table(data))
        for line in gate_lines(data):
            console.print(line, highlight=False)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _interval(pair: list[float] | None, signed: bool = False) -> str:
    if pair is None:
        return "-"
    fmt = "{:+.1f}" if signed else "{:.1f}"
    return f"{fmt.format(pair[0] * 100)} .. {fmt.format(pair[1] * 100)}"


def report_table(report: OnlineReport) -> Table:
    """A rich table of `online_report.build_report`'s result."""
    from rich.table import Table

    table = Table(
        title=f"{report['experiment']}: online accuracy from corrections "
        f"(control {report['control']}, MDE {report['mde'] * 100:g} pp)"
    )
    for col in (
        "variant",
        "traffic",
        "corrected",
        "accuracy",
        "95% CI",
        "vs control (pp)",
        "95% CI (pp)",
        "mean $",
        "p95 ms",
        "still needed",
    ):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, row in report["variants"].items():
        diff = row["diff_vs_control"]
        table.add_row(
            name + (" (control)" if name == report["control"] else ""),
            str(row["traffic"]),
            str(row["corrected"]),
            _pct(row["accuracy"]),
            _interval(row["accuracy_ci95"]),
            "-" if diff is None else f"{diff * 100:+.1f}",
            _interval(row["diff_ci95"], signed=True),
            "-" if row["mean_cost_usd"] is None else f"{row['mean_cost_usd']:.6f}",
            "-" if row["p95_latency_ms"] is None else f"{row['p95_latency_ms']:.0f}",
            str(row["still_needed"]),
        )
    table.caption = (
        f"{report['needed_per_variant']} corrections per variant detect a {report['mde'] * 100:g}"
        f" pp difference (alpha {report['alpha']}, power {report['power']}, baseline "
        f"{report['baseline_accuracy'] * 100:.1f}%: {report['baseline_source']})"
    )
    return table


def gate_lines(report: OnlineReport) -> list[str]:
    """Per candidate and gate: the difference, its fixed-horizon and anytime-valid intervals,
    the decision the gate would take now and the evidence still needed."""
    out = []
    for name, row in report["variants"].items():
        for gate, g in row.get("gates", {}).items():
            diff = "-" if g["difference"] is None else f"{g['difference'] * 100:+.1f} pp"
            out.append(
                f"{name} {gate} ({g['test']}, margin {g['margin'] * 100:g} pp): {diff}; "
                f"fixed 95% {_interval(g['fixed_ci95'], signed=True)}; anytime-valid "
                f"{_interval(g['anytime_ci95'], signed=True)}; decision now {g['decision']}; "
                f"{g['still_needed']} more {g['unit']} per arm planned"
            )
    return out


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("eval")(eval_)
    app.command()(report)
