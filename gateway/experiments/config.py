"""The routes file: experiments, their variants, weights, fallbacks and shadow traffic.

Loaded and validated once at start-up. A wrong file raises `RoutesFileError` whose message
names the file, the key path (`experiments[0].variants[1].weight`) and the problem, so the
server stops with a message an operator can act on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.request.http1 import split_base_url
from gateway.request.triage import DEFAULT_TAXONOMY, Taxonomy

DEFAULT_ROUTES_PATH = Path(__file__).parents[1] / "routes.default.yaml"

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
StopSequence = Annotated[str, Field(min_length=1, max_length=64)]


class RoutesFileError(Exception):
    """The routes file is missing, not YAML, or breaks the schema."""


class Price(BaseModel):
    """USD per 1M tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_1m: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]
    output_per_1m: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]


class Cascade(BaseModel):
    """`model: cascade`: answer with `cheap` when its confidence reaches `threshold`, else ask
    `strong`. Both name other variants of the same experiment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cheap: Name
    strong: Name
    threshold: Annotated[float, Field(ge=0, le=1)] = 0.8


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: Name
    model: Annotated[str, Field(min_length=1)]
    """A litellm-style model string (`openrouter/openai/gpt-4o`), any model served at
    `api_base`, or `local` for the in-process model."""
    weight: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)] = 0.0
    """Relative: the variant's share of traffic is its weight / the sum of the weights."""
    api_base: str | None = None
    api_key: str | None = None
    """Name of the provider key to send (a key of GATEWAY_PROVIDER_KEYS); the key itself
    never appears in this file."""
    price: Price | None = None
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    response_format: Literal["json_schema", "json_object", "none"] = "json_object"
    model_path: str | None = None
    """For `model: local`: a model directory (default: the built-in baseline)."""
    max_tokens: Annotated[int, Field(gt=0, le=4096)] = 300
    stop: Annotated[tuple[StopSequence, ...], Field(min_length=1, max_length=4)] | None = None
    """Stop sequences sent upstream with each chat request (OpenAI `stop`, at most 4), for a
    served model that does not end its answer with EOS (e.g. `["<|end|>"]` for an adapter
    trained with a template that ends turns that way); one string is a list of one. Unset: no
    `stop` in the request."""
    cascade: Cascade | None = None
    """For `model: cascade`: which variants to chain and the confidence threshold."""

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("api_base")
    @classmethod
    def _http_base(cls, value: str | None) -> str | None:
        """A URL the upstream client can call (`gateway.request.http1.split_base_url`)."""
        if value is not None:
            split_base_url(value)
        return value

    @model_validator(mode="after")
    def _cascade_block(self) -> Variant:
        if self.is_cascade != (self.cascade is not None):
            raise ValueError("`model: cascade` and a `cascade:` block go together")
        if self.stop is not None and (self.is_local or self.is_cascade):
            raise ValueError(f"`stop` is for upstream models, not `model: {self.model}`")
        return self

    @property
    def is_local(self) -> bool:
        return self.model == "local"

    @property
    def is_cascade(self) -> bool:
        return self.model == "cascade"


class Shadow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: Name
    sample_rate: Annotated[float, Field(ge=0, le=1)] = 0.1


class Gates(BaseModel):
    """Release gates a candidate must pass in offline eval (unset: not checked)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accuracy_margin: Annotated[float, Field(ge=0, le=1)] | None = None
    """The candidate's accuracy may trail the control's by at most this much."""
    min_validity: Annotated[float, Field(ge=0, le=1)] | None = None
    max_p95_ms: Annotated[float, Field(gt=0)] | None = None
    max_cost_per_review_usd: Annotated[float, Field(ge=0)] | None = None


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    salt: Annotated[str, Field(min_length=1)]
    variants: Annotated[list[Variant], Field(min_length=1)]
    fallback: list[Name] = Field(default_factory=list)
    shadow: Shadow | None = None
    taxonomy: Taxonomy = DEFAULT_TAXONOMY
    gates: Gates | None = None

    @model_validator(mode="after")
    def _check_references(self) -> Experiment:
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant names must be unique, repeated: {', '.join(dupes)}")
        if not any(v.weight > 0 for v in self.variants):
            raise ValueError("at least one variant needs a weight above 0")
        for ref in self.fallback:
            if ref not in names:
                raise ValueError(f"fallback names unknown variant {ref!r} (known: {names})")
        if self.shadow is not None and self.shadow.variant not in names:
            raise ValueError(f"shadow.variant {self.shadow.variant!r} is not a variant ({names})")
        for v in self.variants:
            if v.cascade is not None:
                _check_cascade(v.name, v.cascade, {x.name: x for x in self.variants})
        return self

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)


def _check_cascade(name: str, cascade: Cascade, by_name: dict[str, Variant]) -> None:
    for role, ref in (("cheap", cascade.cheap), ("strong", cascade.strong)):
        target = by_name.get(ref)
        if target is None:
            raise ValueError(f"cascade {name!r}: {role} names unknown variant {ref!r}")
        if target.is_cascade or ref == name:
            raise ValueError(f"cascade {name!r}: {role} {ref!r} must not be a cascade")
    if not by_name[cascade.cheap].is_local:
        raise ValueError(
            f"cascade {name!r}: cheap {cascade.cheap!r} must be a local variant (it gives a "
            "confidence; upstream answers have none and would always escalate)"
        )


class RoutesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    experiments: Annotated[list[Experiment], Field(min_length=1)]
    default_experiment: Name | None = None

    @model_validator(mode="after")
    def _check_names(self) -> RoutesConfig:
        names = [e.name for e in self.experiments]
        if len(set(names)) != len(names):
            raise ValueError("experiment names must be unique")
        if self.default_experiment is not None and self.default_experiment not in names:
            raise ValueError(f"default_experiment {self.default_experiment!r} is not defined")
        return self

    @property
    def default(self) -> Experiment:
        name = self.default_experiment or self.experiments[0].name
        return self.experiment(name)

    def experiment(self, name: str) -> Experiment:
        for e in self.experiments:
            if e.name == name:
                return e
        raise KeyError(name)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_routes(data: object, source: str = "routes") -> RoutesConfig:
    try:
        return RoutesConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise RoutesFileError(f"{source}: {problems}") from None


def load_routes(path: Path | None) -> RoutesConfig:
    """Read and validate the routes file (the packaged default when `path` is None)."""
    path = path or DEFAULT_ROUTES_PATH
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RoutesFileError(f"{path}: cannot read routes file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise RoutesFileError(f"{path}: not valid YAML ({exc})") from None
    return parse_routes(data, str(path))
