"""The experiments page: `/experiments` shows, per experiment, the weights and shares in force,
each variant's live traffic (requests, errors, validity since the gateway started: the metrics
registry), its p95 latency, cost per review and online accuracy with a Wilson 95% interval
(the pair log and corrections: `gateway.pairs.online_report`), the ramp in progress and the
weights history. Admins also get a rollback button per experiment.

Sign-in is the review page's (`gateway.api.routes.review`): a reviewer or admin key, the same
session cookie, the same security headers (a CSP without inline scripts; this page has no
script at all, it reloads itself with a meta refresh). Rollback is a form POST to
`/review/experiments/{name}/rollback` (under `/review/`, where form bodies are accepted) carrying
the session's CSRF token, refused with 403 for a reviewer, and calls `RouteStore.rollback` (the
last known-good baseline, as an audited `manual_rollback`).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from gateway.api.deps import State
from gateway.api.routes.review import Session, current_session, render_page, see_other
from gateway.errors import ForbiddenError, UnavailableError
from gateway.experiments.config import Experiment, Variant
from gateway.experiments.overview import (
    Change,
    Ramp,
    VariantCounters,
    history_rows,
    live_counts,
    ramp_in_progress,
)
from gateway.experiments.store import ROLLBACK_KINDS
from gateway.experiments.table import shares_of
from gateway.infra import redis_keys
from gateway.infra.metrics import scrape_registry
from gateway.infra.state import GatewayState
from gateway.pairs import online_report
from gateway.pairs.online_report import VariantRow

router = APIRouter(tags=["experiments page"], include_in_schema=False)

HISTORY_ROWS = 20
REFRESH_S = 30
ROLLBACK_REASON = "rollback from the experiments page"


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "—"


def _shares_text(shares: dict[str, float]) -> str:
    return ", ".join(f"{name} {share * 100:.1f}%" for name, share in shares.items())


def _rollback_target(changes: Sequence[Change]) -> int:
    """The version `RouteStore.rollback` restores: the baseline of the latest change that is
    not itself a rollback (0, the routes file, when there is none)."""
    for change in changes:
        if change.kind not in ROLLBACK_KINDS:
            return change.baseline_version
    return 0


@dataclass(frozen=True, slots=True)
class VariantView:
    """One variant's row of the page, formatted for the template."""

    name: str
    model: str
    weight: str
    share: float
    requests: int
    errors: int
    error_rate: str
    validity: str
    p95_ms: str
    cost: str
    corrected: int
    accuracy: str
    accuracy_ci: str
    pairs: int


@dataclass(frozen=True, slots=True)
class ChangeView:
    """One weights change, formatted: a ramp step or a history line."""

    version: int
    kind: str
    baseline_version: int
    when: str
    actor: str
    reason: str
    shares: str
    candidate_share: float
    """The ramp candidate's share in percent (0 without a candidate)."""


@dataclass(frozen=True, slots=True)
class RampView:
    baseline_version: int
    baseline_shares: str
    candidate: str | None
    steps: list[ChangeView]


@dataclass(frozen=True, slots=True)
class ExperimentView:
    """What the page shows of one experiment."""

    name: str
    version: int
    variants: list[VariantView]
    control: str
    ramp: RampView | None
    history: list[ChangeView]
    rollback_to: int
    store: bool


def _variant_view(
    variant: Variant, weights: dict[str, float], counts: VariantCounters, row: VariantRow
) -> VariantView:
    ci, cost, p95 = row["accuracy_ci95"], row["mean_cost_usd"], row["p95_latency_ms"]
    return VariantView(
        name=variant.name,
        model=variant.model,
        weight=f"{weights.get(variant.name, 0.0):g}",
        share=round(shares_of(weights).get(variant.name, 0.0) * 100, 1),
        requests=counts.requests,
        errors=round(counts.errors),
        error_rate=_pct(counts.error_rate),
        validity=_pct(counts.validity),
        p95_ms="—" if p95 is None else f"{p95:.0f} ms",
        cost="—" if cost is None else f"${cost:.6f}",
        corrected=row["corrected"],
        accuracy=_pct(row["accuracy"]),
        accuracy_ci="" if not ci else f"{_pct(ci[0])} – {_pct(ci[1])}",
        pairs=row["traffic"],
    )


def _change_view(change: Change, candidate: str | None = None) -> ChangeView:
    return ChangeView(
        version=change.version,
        kind=change.kind,
        baseline_version=change.baseline_version,
        when=_when(change.ts),
        actor=change.actor,
        reason=change.reason,
        shares=_shares_text(change.shares),
        candidate_share=round(change.shares.get(candidate or "", 0.0) * 100, 1),
    )


def _ramp_view(ramp: Ramp | None) -> RampView | None:
    if ramp is None:
        return None
    candidate = ramp.candidate
    return RampView(
        baseline_version=ramp.baseline_version,
        baseline_shares=_shares_text(ramp.baseline_shares),
        candidate=candidate,
        steps=[_change_view(step, candidate) for step in ramp.steps],
    )


async def _view(state: GatewayState, exp: Experiment) -> ExperimentView:
    names = [v.name for v in exp.variants]
    weights = dict(state.table.weights(exp.name))
    live = live_counts(scrape_registry(state.metrics), exp.name, names)
    stream = redis_keys.pairs_stream(state.settings.pairs_stream)
    report = await online_report.experiment_report(state.redis, stream, exp.name, names)
    store = state.route_store
    changes = history_rows(await store.history(exp.name, HISTORY_ROWS) if store is not None else [])
    return ExperimentView(
        name=exp.name,
        version=state.table.versions.get(exp.name, 0),
        variants=[
            # the report has a row for each variant it was given
            _variant_view(v, weights, live[v.name], report["variants"][v.name])
            for v in exp.variants
        ],
        control=report["control"],
        ramp=_ramp_view(ramp_in_progress(changes)),
        history=[_change_view(change) for change in changes],
        rollback_to=_rollback_target(changes),
        store=store is not None,
    )


def _flash(state: GatewayState, rolled_back: str | None, version: str | None) -> str | None:
    """The message after a rollback (only for a known experiment and a number)."""
    known = {e.name for e in state.table.experiments()}
    if rolled_back not in known or version is None or not version.isdigit():
        return None
    return f"Rolled back {rolled_back}: weights version {int(version)} is in force."


@router.get("/experiments", response_model=None)
async def experiments_page(
    request: Request,
    state: State,
    rolled_back: str | None = None,
    version: str | None = None,
    unchanged: str | None = None,
) -> Response:
    session = await current_session(request, state)
    if session is None:
        return see_other("/review/login?" + urlencode({"next": "/experiments"}))
    views = [await _view(state, exp) for exp in state.table.experiments()]
    flash = _flash(state, rolled_back, version)
    if flash is not None and unchanged:
        flash = f"Nothing to roll back for {rolled_back}: version {version} is in force."
    return render_page(
        "experiments.html",
        experiments=views,
        session=session,
        flash=flash,
        refresh_s=REFRESH_S,
        now=_when(datetime.now(UTC).timestamp()),
    )


def _admin(session: Session, csrf: str) -> None:
    if not hmac.compare_digest(csrf, session.csrf):
        raise ForbiddenError("CSRF token missing or wrong: reload the page and try again")
    if not session.is_admin:
        raise ForbiddenError("rollback needs an admin key: sign in with one")


@router.post("/review/experiments/{name}/rollback", response_model=None)
async def rollback(
    name: str,
    request: Request,
    state: State,
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    session = await current_session(request, state)
    if session is None:
        return see_other("/review/login?" + urlencode({"next": "/experiments"}))
    _admin(session, csrf)
    store = state.route_store
    if store is None:
        raise UnavailableError("route store not running")
    result = await store.rollback(name, actor=session.reviewer, reason=ROLLBACK_REASON)
    query = {"rolled_back": name, "version": str(result["version"])}
    if not result.get("changed", True):
        query["unchanged"] = "1"
    return see_other("/experiments?" + urlencode(query))
