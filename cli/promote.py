"""`promote` and `rollback`: a candidate's share raised step by step under live gates, and the
manual undo of the latest weight change."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.app import (
    ExperimentOption,
    RoutesOption,
    fail,
    parse_duration,
    parse_names,
    store_settings,
)


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
    experiment: ExperimentOption,
    candidate: Annotated[str, typer.Option(help="Variant to promote.")],
    steps: Annotated[
        str, typer.Option(help="Candidate shares in %, increasing.")
    ] = "1,5,25,50,100",
    hold: Annotated[str, typer.Option(help="Minimum hold per step: 30m, 90s, 2h.")] = "30m",
    interval: Annotated[str, typer.Option(help="Look at the gates this often.")] = "30s",
    gateway: Annotated[
        str | None,
        typer.Option(help="Metrics source: a gateway URL to scrape /metrics from (one replica)."),
    ] = None,
    prometheus: Annotated[
        str | None, typer.Option(help="Metrics source: Prometheus URL (every replica).")
    ] = None,
    routes: RoutesOption = None,
    control: Annotated[str | None, typer.Option(help="Variant to compare with.")] = None,
    max_error_rate: Annotated[
        float, typer.Option(help="Guardrail: max candidate error rate.")
    ] = 0.02,
    max_validation_failure_rate: Annotated[
        float, typer.Option(help="Guardrail: max invalid answers per model call.")
    ] = 0.05,
    max_p95_ms: Annotated[
        float | None, typer.Option(help="Guardrail: max p95 latency (ms).")
    ] = None,
    error_margin: Annotated[
        float, typer.Option(help="Harm margin: error rate above the control's.")
    ] = 0.02,
    validity_margin: Annotated[
        float, typer.Option(help="Harm margin: invalid-answer rate above the control's.")
    ] = 0.02,
    latency_margin: Annotated[
        float, typer.Option(help="Harm margin: extra share slower than the control's p95.")
    ] = 0.05,
    min_accuracy_delta: Annotated[
        float, typer.Option(help="Non-inferiority margin: online accuracy minus control's.")
    ] = -0.02,
    min_requests: Annotated[
        int | None, typer.Option(help="Candidate requests per step [power calculation].")
    ] = None,
    min_corrected: Annotated[
        int | None,
        typer.Option(help="Corrected pairs per arm [power calculation]; 0: no accuracy gate."),
    ] = None,
    max_step_wait: Annotated[
        str | None, typer.Option(help="Stop (exit 3) if a step lacks evidence this long [4x hold].")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Error rate of each anytime-valid gate.")] = 0.05,
) -> None:
    """Raise a candidate's share step by step on evidence. Exit 0 promoted, 1 breach (the
    baseline weights restored), 2 cannot start (e.g. no --gateway / --prometheus), 3 stopped
    for want of evidence (weights left at the current step)."""
    from eval.promotion import PROMOTED, Limits
    from eval.promotion import promote as run_promotion

    try:
        hold_s = parse_duration(hold)
        limits = Limits(
            max_error_rate=max_error_rate,
            max_validation_failure_rate=max_validation_failure_rate,
            max_p95_ms=max_p95_ms,
            error_margin=error_margin,
            validity_margin=validity_margin,
            latency_margin=latency_margin,
            min_accuracy_delta=min_accuracy_delta,
            min_requests=min_requests,
            min_corrected=min_corrected,
            max_step_wait_s=None if max_step_wait is None else parse_duration(max_step_wait),
            alpha=alpha,
        )
        result = run_promotion(
            store_settings(routes=routes),
            experiment=experiment,
            candidate=candidate,
            steps=parse_steps(steps),
            hold_s=hold_s,
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
    experiment: ExperimentOption,
    reason: Annotated[str, typer.Option(help="Why (kept in the history).")] = "manual rollback",
    to_version: Annotated[
        int | None,
        typer.Option(min=0, help="Restore this weights version (default: the last baseline)."),
    ] = None,
    routes: RoutesOption = None,
) -> None:
    """Restore the last known-good weights: the pre-ramp weights after a promotion (finished,
    stopped or rolled back), the version before a manual change, or --to-version N. Nothing
    changes (exit 0) when those weights are already in force."""
    from eval.promotion import rollback as rollback_latest

    try:
        entry = rollback_latest(store_settings(routes=routes), experiment, reason, to_version)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if not entry.get("changed", True):
        same = entry.get("baseline_version")
        note = f" (the weights of version {same})" if same != entry["version"] else ""
        typer.echo(f"nothing to roll back: version {entry['version']} is in force{note}")
        return
    typer.echo(
        f"{experiment}: weights version {entry['version']} = {entry['weights']} "
        f"(restores version {entry.get('restored_version')}; {reason})"
    )


def history(
    experiment: ExperimentOption,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Newest entries to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, newest first.")] = False,
    routes: RoutesOption = None,
) -> None:
    """An experiment's weight changes, newest first: version, kind (ramp_step,
    breach_rollback, manual_rollback, manual_change), baseline, actor, reason, shares."""
    import json
    from datetime import UTC, datetime
    from typing import Any

    from cli.app import with_redis
    from gateway.experiments.config import RoutesFileError, load_routes
    from gateway.experiments.store import HistoryEntry, RouteStore, StoredStateError, entry_weights
    from gateway.experiments.table import RouteTable, shares_of
    from gateway.infra.metrics import GatewayMetrics

    config = store_settings(routes=routes)
    try:
        table = RouteTable(load_routes(config.routes))
    except RoutesFileError as exc:
        raise fail(str(exc)) from None

    async def work(redis: Any) -> list[HistoryEntry]:
        return await RouteStore(redis, table, GatewayMetrics()).history(experiment, limit)

    entries = with_redis(config, work)
    if as_json:
        for e in entries:
            typer.echo(json.dumps(e, sort_keys=True))
        return
    if not entries:
        typer.echo(f"{experiment}: no weight change stored; the routes file is in force")
        return
    for e in entries:
        when = datetime.fromtimestamp(float(e.get("ts", 0)), UTC).strftime("%Y-%m-%d %H:%M:%S")
        try:
            split = ", ".join(f"{n} {s:.1%}" for n, s in shares_of(entry_weights(e)).items())
        except StoredStateError:  # written by an old release that stored out-of-range weights
            split = "weights that do not load"
        typer.echo(
            f"v{e['to_version']} <- v{e['from_version']}  {e['kind']:<15}  "
            f"baseline v{e['baseline_version']}  {when}Z  by {e.get('actor', '?')}  "
            f"{e.get('reason', '')!r}  [{split}]"
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command()(promote)
    app.command()(rollback)
    app.command()(history)
