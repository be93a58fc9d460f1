"""The live routing table: the routes file plus the weights in force right now.

Weights start from the routes file; the route store (Redis, versioned) replaces them at run
time on every replica. Variants can be added at run time too (`RuntimeVariant`, from the model
registry or the admin API): the table then holds a copy of the routes-file experiment with the
extra variants (and, when one asks for it, the new shadow), and `experiment()` returns that
copy, so classify, the routes view and the weight checks all see one experiment. Reads on the
request path are plain dictionary lookups.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import InvalidRequestError, NotFoundError
from gateway.experiments.config import Experiment, RoutesConfig, Shadow, Variant

MAX_WEIGHT = 1e6
"""The largest weight a variant can take (weights are relative; shares are weight / sum)."""
SHARE_TOLERANCE = 1e-9


class RuntimeVariant(BaseModel):
    """A variant added to an experiment at run time (stored in Redis as JSON). Its errors
    never repeat the input: a stored `api_base` may hold credentials the validator refuses,
    and the error is logged."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    variant: Variant
    shadow_sample_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    """When set, this variant becomes the experiment's shadow at this sample rate."""
    registry_name: str | None = None
    actor: str = "unknown"
    ts: float = 0.0


class RouteTable:
    def __init__(self, routes: RoutesConfig) -> None:
        self.routes = routes
        self._experiments: dict[str, Experiment] = {e.name: e for e in routes.experiments}
        self._weights: dict[str, dict[str, float]] = {
            e.name: {v.name: v.weight for v in e.variants} for e in routes.experiments
        }
        self.versions: dict[str, int] = {e.name: 0 for e in routes.experiments}
        self.variant_versions: dict[str, int] = {e.name: 0 for e in routes.experiments}
        self._runtime: dict[str, dict[str, RuntimeVariant]] = {
            e.name: {} for e in routes.experiments
        }

    def experiment(self, name: str | None) -> Experiment:
        """The experiment in force (routes file plus runtime variants); the default for None."""
        try:
            return self._experiments[name if name is not None else self.routes.default.name]
        except KeyError:
            known = ", ".join(e.name for e in self.routes.experiments)
            raise NotFoundError(f"unknown experiment {name!r} (known: {known})") from None

    def experiments(self) -> list[Experiment]:
        """Every experiment in force, in routes-file order."""
        return list(self._experiments.values())

    def weights(self, experiment: str) -> Mapping[str, float]:
        return self._weights[experiment]

    def set_weights(self, experiment: str, weights: Mapping[str, float], version: int) -> None:
        """Install new weights (already validated by `check_weights`)."""
        self._weights[experiment] = dict(weights)
        self.versions[experiment] = version

    def check_weights(self, experiment: str, weights: Mapping[str, float]) -> dict[str, float]:
        """Validate a full or partial weight change; return the complete new weights.

        Every named variant must exist and every weight be a finite number in
        [0, `MAX_WEIGHT`]; at least one variant must keep a weight above 0. An
        `InvalidRequestError` names the field otherwise; nothing is changed here."""
        exp = self.experiment(experiment)
        names = {v.name for v in exp.variants}
        if any(not k for k in weights):
            raise InvalidRequestError("weights: a variant name must not be empty")
        unknown = sorted(set(weights) - names)
        if unknown:
            raise InvalidRequestError(
                f"weights: unknown variant(s) {unknown} (known: {sorted(names)})"
            )
        for name, w in weights.items():
            check_number(f"weights.{name}", w, MAX_WEIGHT)
        merged = {k: float(w) for k, w in {**self._weights[experiment], **weights}.items()}
        if not any(w > 0 for w in merged.values()):
            raise InvalidRequestError("weights: at least one variant needs a weight above 0")
        return merged

    def full_weights(self, experiment: str, weights: Mapping[str, float]) -> dict[str, float]:
        """`weights` for every variant of the experiment in force: a variant it does not name
        gets 0 (how a stored version is restored exactly: a variant added since goes back
        to no traffic)."""
        exp = self.experiment(experiment)
        names = [v.name for v in exp.variants]
        gone = sorted(set(weights) - set(names))
        if gone:
            raise InvalidRequestError(
                f"weights name variant(s) {gone} that {experiment!r} no longer has"
            )
        return {n: float(weights.get(n, 0.0)) for n in names}

    def weights_from_shares(self, experiment: str, shares: Mapping[str, float]) -> dict[str, float]:
        """The weights that give the named variants exactly `shares` of the traffic (each in
        [0, 1], summing to at most 1); the rest is split among the other variants in
        proportion to their weights in force. The result sums to 1, so weight = share."""
        exp = self.experiment(experiment)
        names = [v.name for v in exp.variants]
        if not shares:
            raise InvalidRequestError("shares: name at least one variant")
        if any(not k for k in shares):
            raise InvalidRequestError("shares: a variant name must not be empty")
        unknown = sorted(set(shares) - set(names))
        if unknown:
            raise InvalidRequestError(f"shares: unknown variant(s) {unknown} (known: {names})")
        for name, s in shares.items():
            check_number(f"shares.{name}", s, 1.0)
        total = math.fsum(shares.values())
        if total > 1 + SHARE_TOLERANCE:
            raise InvalidRequestError(f"shares: they sum to {total:g}, more than 1")
        rest = max(0.0, 1.0 - total)
        current = self._weights[experiment]
        others = {n: current.get(n, 0.0) for n in names if n not in shares}
        others_total = math.fsum(others.values())
        if rest > SHARE_TOLERANCE:
            if not others:
                raise InvalidRequestError(
                    f"shares: they name every variant, so they must sum to 1 (they sum to "
                    f"{total:g})"
                )
            if others_total <= 0:
                raise InvalidRequestError(
                    f"shares: the other variants ({', '.join(sorted(others))}) have weight 0, "
                    f"so none can take the remaining {rest:g}"
                )
        weights = {n: float(shares[n]) if n in shares else 0.0 for n in names}
        if others_total > 0:
            for n, w in others.items():
                weights[n] = rest * w / others_total
        return weights

    def runtime_variants(self, experiment: str) -> Mapping[str, RuntimeVariant]:
        self.experiment(experiment)
        return self._runtime[experiment]

    def with_runtime(
        self, experiment: str, runtime: Mapping[str, RuntimeVariant]
    ) -> tuple[Experiment, dict[str, float]]:
        """The routes-file experiment plus `runtime` (all of its runtime variants), and the
        weights that would then be in force; `InvalidRequestError` when they do not fit."""
        self.experiment(experiment)
        base = self.routes.experiment(experiment)
        clash = sorted(set(runtime) & {v.name for v in base.variants})
        if clash:
            raise InvalidRequestError(
                f"variant name(s) {clash} are taken by the routes file of {experiment!r}"
            )
        ordered = sorted(runtime.values(), key=lambda r: (r.ts, r.variant.name))
        shadow = base.shadow
        for r in ordered:
            if r.shadow_sample_rate is not None:
                shadow = Shadow(variant=r.variant.name, sample_rate=r.shadow_sample_rate)
        try:
            exp = Experiment.model_validate(
                {
                    **dict(base),
                    "variants": [*base.variants, *(r.variant for r in ordered)],
                    "shadow": shadow,
                }
            )
        except ValidationError as exc:
            problems = "; ".join(e["msg"] for e in exc.errors())
            raise InvalidRequestError(f"variants of {experiment!r}: {problems}") from None
        names = {v.name for v in exp.variants}
        weights = {k: w for k, w in self._weights[experiment].items() if k in names}
        for r in ordered:
            check_number(f"variant {r.variant.name!r}: weight", r.variant.weight, MAX_WEIGHT)
            weights.setdefault(r.variant.name, r.variant.weight)
        if not any(w > 0 for w in weights.values()):
            raise InvalidRequestError("weights: at least one variant needs a weight above 0")
        return exp, weights

    def set_runtime(
        self,
        experiment: str,
        exp: Experiment,
        runtime: Mapping[str, RuntimeVariant],
        weights: Mapping[str, float],
        version: int,
    ) -> None:
        """Install what `with_runtime` returned (the weights' version is unchanged)."""
        self._experiments[experiment] = exp
        self._runtime[experiment] = dict(runtime)
        self._weights[experiment] = dict(weights)
        self.variant_versions[experiment] = version


def shares_of(weights: Mapping[str, float]) -> dict[str, float]:
    """Each variant's share of traffic: its weight / the sum of the weights."""
    total = math.fsum(weights.values())
    return {n: (w / total if total > 0 else 0.0) for n, w in weights.items()}


def check_number(field: str, value: object, high: float) -> None:
    """A finite number in [0, high] (not a bool), else an `InvalidRequestError` naming
    `field`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(f"{field}: must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise InvalidRequestError(f"{field}: must be a finite number, got {value!r}")
    if not 0 <= value <= high:
        raise InvalidRequestError(f"{field}: must be between 0 and {high:g}, got {value:g}")
