"""The online A/B report of an experiment, read straight from Redis (the same computation as
`GET /v1/experiments/{name}/report`, in `gateway.pairs.online_report`); `triage-gateway report`
prints it."""

from __future__ import annotations

import asyncio

from redis.exceptions import RedisError

from gateway.experiments.config import RoutesFileError, load_routes
from gateway.infra import redis_keys
from gateway.infra.redis_client import async_connect
from gateway.infra.settings import Settings
from gateway.pairs import online_report


def variant_names(settings: Settings, experiment: str) -> list[str]:
    """The experiment's variants from the routes file ([] when it is not there)."""
    try:
        routes = load_routes(settings.routes)
        return [v.name for v in routes.experiment(experiment).variants]
    except (RoutesFileError, KeyError):
        return []


async def load_online_report(
    settings: Settings, experiment: str, *, control: str | None = None, mde: float = 0.02
) -> online_report.OnlineReport:
    async with async_connect(settings) as client:
        return await online_report.experiment_report(
            client,
            redis_keys.pairs_stream(settings.pairs_stream),
            experiment,
            variant_names(settings, experiment),
            control=control,
            mde=mde,
            with_archive=True,
        )


class ReportError(ValueError):
    """The report cannot be made (Redis unreachable, unknown control)."""


def read_online_report(
    settings: Settings, experiment: str, *, control: str | None = None, mde: float = 0.02
) -> online_report.OnlineReport:
    """`load_online_report` to completion, with its arguments checked: a ReportError when
    `mde` is not in (0, 1), `control` is not a variant, or Redis cannot be read."""
    if not 0 < mde < 1:
        raise ReportError("--mde must be between 0 and 1")
    names = variant_names(settings, experiment)
    if control is not None and names and control not in names:
        raise ReportError(f"control {control!r} is not a variant of {experiment!r} ({names})")
    try:
        return asyncio.run(load_online_report(settings, experiment, control=control, mde=mde))
    except (RedisError, OSError, RuntimeError) as exc:
        raise ReportError(f"cannot read Redis: {exc}") from None
