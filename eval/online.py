"""`triage-gateway report`: the online A/B report of an experiment, read straight from Redis
(the same computation as `GET /v1/experiments/{name}/report`, in `gateway.pairs.online_report`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table

from gateway.experiments.config import RoutesFileError, load_routes
from gateway.infra import redis_keys
from gateway.infra.settings import Settings
from gateway.infra.state import redis_url
from gateway.pairs import online_report


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """A Redis client on the configured URL (or the embedded server under the data dir)."""
    url, embedded = redis_url(settings)
    client = aioredis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        yield client
    finally:
        await client.aclose()
        if embedded is not None:
            embedded.stop()


def variant_names(settings: Settings, experiment: str) -> list[str]:
    """The experiment's variants from the routes file ([] when it is not there)."""
    try:
        routes = load_routes(settings.routes)
        return [v.name for v in routes.experiment(experiment).variants]
    except (RoutesFileError, KeyError):
        return []


async def load_online_report(
    settings: Settings, experiment: str, *, control: str | None = None, mde: float = 0.02
) -> dict[str, Any]:
    async with connect(settings) as client:
        return await online_report.experiment_report(
            client,
            redis_keys.pairs_stream(settings.pairs_stream),
            experiment,
            variant_names(settings, experiment),
            control=control,
            mde=mde,
        )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _interval(pair: list[float] | None, signed: bool = False) -> str:
    if pair is None:
        return "-"
    fmt = "{:+.1f}" if signed else "{:.1f}"
    return f"{fmt.format(pair[0] * 100)} .. {fmt.format(pair[1] * 100)}"


def report_table(report: dict[str, Any]) -> Table:
    """A rich table of `online_report.build_report`'s result."""
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


class ReportError(ValueError):
    """The report cannot be made (Redis unreachable, unknown control)."""


def main(experiment: str, *, mde: float, control: str | None, as_json: bool) -> None:
    """`triage-gateway report`: print the table (or the JSON) of the online report."""
    if not 0 < mde < 1:
        raise ReportError("--mde must be between 0 and 1")
    settings = Settings()
    names = variant_names(settings, experiment)
    if control is not None and names and control not in names:
        raise ReportError(f"control {control!r} is not a variant of {experiment!r} ({names})")
    try:
        report = asyncio.run(load_online_report(settings, experiment, control=control, mde=mde))
    except (RedisError, OSError, RuntimeError) as exc:
        raise ReportError(f"cannot read Redis: {exc}") from None
    console = Console(width=160)
    if as_json:
        console.print_json(data=report)
    else:
        console.print(report_table(report))
