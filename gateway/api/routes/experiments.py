"""GET /v1/experiments/{name}/report: online A/B figures from pairs and corrections."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from redis.exceptions import RedisError

from gateway.api.deps import ApiKey, State
from gateway.api.schemas import AS_IS
from gateway.errors import InvalidRequestError, UnavailableError
from gateway.infra import redis_keys
from gateway.pairs import online_report

router = APIRouter(prefix="/v1/experiments", tags=["experiments"], dependencies=[ApiKey])


# the OpenAPI document keeps describing a JSON object; `OnlineReport` types it in Python
@router.get("/{name}/report", response_model=AS_IS)
async def report(
    name: str,
    state: State,
    control: Annotated[str | None, Query(max_length=64)] = None,
    mde: Annotated[
        float,
        Query(ge=0.001, lt=1, description="Smallest accuracy difference worth detecting (0.001-1)"),
    ] = 0.02,
) -> online_report.OnlineReport:
    """Per variant: traffic, corrected n, online accuracy (Wilson 95%), difference to the
    control (Newcombe 95%), mean cost, p95 latency and the corrections still needed; per
    candidate, `gates`: the anytime-valid interval of each gate's difference beside the
    fixed-horizon one, the decision the gate would take now and the evidence still needed."""
    exp = state.table.experiment(name)
    names = [v.name for v in exp.variants]
    if control is not None and control not in names:
        raise InvalidRequestError(f"control {control!r} is not a variant of {name!r} ({names})")
    stream = redis_keys.pairs_stream(state.settings.pairs_stream)
    try:
        return await online_report.experiment_report(
            state.redis, stream, exp.name, names, control=control, mde=mde
        )
    except (RedisError, OSError) as exc:
        raise UnavailableError(f"report unavailable: redis ({type(exc).__name__})") from None
