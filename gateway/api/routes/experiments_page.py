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
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from gateway.api.deps import State
from gateway.api.routes.review import Session, current_session, render_page, see_other
from gateway.errors import ForbiddenError, UnavailableError
from gateway.experiments.config import Experiment
from gateway.experiments.overview import (
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


def _rollback_target(history: list[dict[str, Any]]) -> int:
    """The version `RouteStore.rollback` restores: the baseline of the latest change that is
    not itself a rollback (0, the routes file, when there is none)."""
    for entry in history:
        if entry.get("kind") not in ROLLBACK_KINDS:
            return int(entry.get("baseline_version", 0))
    return 0


async def _view(state: GatewayState, exp: Experiment) -> dict[str, Any]:
    names = [v.name for v in exp.variants]
    weights = dict(state.table.weights(exp.name))
    shares = shares_of(weights)
    live = live_counts(scrape_registry(state.metrics), exp.name, names)
    stream = redis_keys.pairs_stream(state.settings.pairs_stream)
    report = await online_report.experiment_report(state.redis, stream, exp.name, names)
    store = state.route_store
    history = await store.history(exp.name, HISTORY_ROWS) if store is not None else []
    ramp = ramp_in_progress(history)
    rows = []
    for v in exp.variants:
        counts = live[v.name]
        figures = report["variants"].get(v.name, {})
        ci = figures.get("accuracy_ci95")
        cost = figures.get("mean_cost_usd")
        p95 = figures.get("p95_latency_ms")
        rows.append(
            {
                "name": v.name,
                "model": v.model,
                "weight": f"{weights.get(v.name, 0.0):g}",
                "share": round(shares.get(v.name, 0.0) * 100, 1),
                "requests": counts.requests,
                "errors": counts.errors,
                "error_rate": _pct(counts.error_rate),
                "validity": _pct(counts.validity),
                "p95_ms": "—" if p95 is None else f"{p95:.0f} ms",
                "cost": "—" if cost is None else f"${cost:.6f}",
                "corrected": figures.get("corrected", 0),
                "accuracy": _pct(figures.get("accuracy")),
                "accuracy_ci": "" if not ci else f"{_pct(ci[0])} – {_pct(ci[1])}",
                "pairs": figures.get("traffic", 0),
            }
        )
    ramp_view = None
    if ramp is not None:
        ramp_view = {
            "baseline_version": ramp.baseline_version,
            "baseline_shares": _shares_text(ramp.baseline_shares),
            "candidate": ramp.candidate,
            "steps": [
                {
                    "version": s.version,
                    "when": _when(s.ts),
                    "actor": s.actor,
                    "reason": s.reason,
                    "shares": _shares_text(s.shares),
                    "candidate_share": round(s.shares.get(ramp.candidate or "", 0.0) * 100, 1),
                }
                for s in ramp.steps
            ],
        }
    return {
        "name": exp.name,
        "version": state.table.versions.get(exp.name, 0),
        "variants": rows,
        "control": report.get("control"),
        "ramp": ramp_view,
        "history": [
            {**row, "when": _when(row["ts"]), "shares": _shares_text(row["shares"])}
            for row in history_rows(history)
        ],
        "rollback_to": _rollback_target(history),
        "store": store is not None,
    }


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
