"""The live routing table: the routes file plus the weights in force right now.

Weights start from the routes file; the route store (Redis, versioned) replaces them at run
time on every replica. Reads on the request path are plain dictionary lookups.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.errors import InvalidRequestError, NotFoundError
from gateway.routes_config import Experiment, RoutesConfig


class RouteTable:
    def __init__(self, routes: RoutesConfig) -> None:
        self.routes = routes
        self._weights: dict[str, dict[str, float]] = {
            e.name: {v.name: v.weight for v in e.variants} for e in routes.experiments
        }
        self.versions: dict[str, int] = {e.name: 0 for e in routes.experiments}

    def experiment(self, name: str | None) -> Experiment:
        if name is None:
            return self.routes.default
        try:
            return self.routes.experiment(name)
        except KeyError:
            known = ", ".join(e.name for e in self.routes.experiments)
            raise NotFoundError(f"unknown experiment {name!r} (known: {known})") from None

    def weights(self, experiment: str) -> Mapping[str, float]:
        return self._weights[experiment]

    def set_weights(self, experiment: str, weights: Mapping[str, float], version: int) -> None:
        """Install new weights (already validated by `check_weights`)."""
        self._weights[experiment] = dict(weights)
        self.versions[experiment] = version

    def check_weights(self, experiment: str, weights: Mapping[str, float]) -> dict[str, float]:
        """Validate a full or partial weight change; return the complete new weights."""
        exp = self.experiment(experiment)
        names = {v.name for v in exp.variants}
        unknown = sorted(set(weights) - names)
        if unknown:
            raise InvalidRequestError(
                f"weights: unknown variant(s) {unknown} (known: {sorted(names)})"
            )
        merged = {**self._weights[experiment], **weights}
        if any(w < 0 for w in merged.values()):
            raise InvalidRequestError("weights: must be >= 0")
        if not any(w > 0 for w in merged.values()):
            raise InvalidRequestError("weights: at least one variant needs a weight above 0")
        return merged
