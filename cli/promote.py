"""`promote` and `rollback`: a candidate's share raised step by step under live gates, and the
manual undo of the latest weight change."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import fail, get_settings, parse_duration, parse_names


def parse_steps(text: str) -> list[float]:
    """`1,5,25,50,100`: increasing percentages in (0, 100] (ValueError if not)."""
    message = "--steps must be increasing percentages in (0, 100], e.g. 1,5,25"
    try:
        steps = [float(part) for part in parse_names(text)]
    except ValueError:
        raise ValueError(message) from None
    if not steps or any(not 0 < s <= 100 for s in steps) or steps != sorted(set(steps)):
        raise ValueError(message)
    return steps


def promote(
    experiment: Annotated[str, typer.Option(help="Experiment name.")],
    candidate: Annotated[str, typer.Option(help="Variant to promote.")],
    steps: Annotated[
        str, typer.Option(help="Candidate shares in %, increasing.")
    ] = "1,5,25,50,100",
    hold: Annotated[str, typer.Option(help="Hold per step: 30m, 90s, 2h.")] = "30m",
    interval: Annotated[str, typer.Option(help="Evaluate the gates this often.")] = "30s",
    gateway: Annotated[
        str | None, typer.Option(help="Gateway to scrape /metrics from [host:port].")
    ] = None,
    prometheus: Annotated[
        str | None, typer.Option(help="Prometheus URL (sums every replica).")
    ] = None,
    routes: Annotated[Path | None, typer.Option(help="Routes file [GATEWAY_ROUTES].")] = None,
    control: Annotated[str | None, typer.Option(help="Control for accuracy.")] = None,
    max_error_rate: Annotated[float, typer.Option(help="Max candidate error rate.")] = 0.02,
    max_validation_failure_rate: Annotated[
        float, typer.Option(help="Max invalid answers per model call.")
    ] = 0.05,
    max_p95_ms: Annotated[float | None, typer.Option(help="Max p95 latency (ms).")] = None,
    min_accuracy_delta: Annotated[
        float, typer.Option(help="Min online accuracy minus control's.")
    ] = -0.02,
    min_requests: Annotated[int, typer.Option(help="Requests before rates count.")] = 5,
    min_corrected: Annotated[int, typer.Option(help="Corrections per arm for accuracy.")] = 30,
) -> None:
    """Raise a candidate's share step by step; roll back and exit 1 on a breach."""
    from eval.promotion import PROMOTED, Limits
    from eval.promotion import promote as run_promotion

    limits = Limits(
        max_error_rate=max_error_rate,
        max_validation_failure_rate=max_validation_failure_rate,
        max_p95_ms=max_p95_ms,
        min_accuracy_delta=min_accuracy_delta,
        min_requests=min_requests,
        min_corrected=min_corrected,
    )
    try:
        result = run_promotion(
            get_settings(routes=routes),
            experiment=experiment,
            candidate=candidate,
            steps=parse_steps(steps),
            hold_s=parse_duration(hold),
            interval_s=parse_duration(interval),
            limits=limits,
            control=control,
            gateway=gateway,
            prometheus=prometheus,
            say=typer.echo,
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    typer.echo(("PROMOTED: " if result.code == PROMOTED else "STOPPED: ") + result.message)
    raise typer.Exit(result.code)


def rollback(
    experiment: Annotated[str, typer.Option(help="Experiment name.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "manual rollback",
    routes: Annotated[Path | None, typer.Option(help="Routes file [GATEWAY_ROUTES].")] = None,
) -> None:
    """Restore the weights in force before an experiment's latest weight change."""
    from eval.promotion import rollback as rollback_latest

    try:
        entry = rollback_latest(get_settings(routes=routes), experiment, reason)
    except ValueError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{experiment}: weights version {entry['version']} = {entry['weights']} ({reason})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command()(promote)
    app.command()(rollback)
