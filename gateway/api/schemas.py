"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated

import pydantic.dataclasses
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from gateway.request.classify import ClassifyAnswer, ClassifyResult
from gateway.request.triage import ReviewIn

AS_IS = dict[str, object]
"""The response model of a route whose answer is a TypedDict sent as it is: not validated again
(which would reorder its keys, turn an int where a float is typed into a float and drop keys it
does not name, such as those of a history entry another release wrote)."""


class ClassifyRequest(ReviewIn):
    experiment: str | None = None


@pydantic.dataclasses.dataclass(config=ConfigDict(extra="forbid"))
class ClassifyResponse(ClassifyAnswer):
    """The body of a /v1/classify answer: the fields of `ClassifyAnswer` (the single-review
    endpoint sends its `public_dict` as is)."""

    @classmethod
    def of(cls, r: ClassifyResult) -> ClassifyResponse:
        return cls(**r.public_dict())  # type: ignore[arg-type]


class BatchRequest(BaseModel):
    """The documented body of /v1/classify/batch (parsed as `BatchBody`)."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[ReviewIn], Field(min_length=1, max_length=100)]
    experiment: str | None = None


class BatchBody(BaseModel):
    """What /v1/classify/batch parses: the envelope is checked whole (one 422), each item on
    its own (an invalid item is a per-item error, the others are still classified)."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[JsonValue], Field(min_length=1, max_length=100)]
    experiment: str | None = None


class BatchItem(BaseModel):
    index: int
    ok: bool
    result: ClassifyResponse | None = None
    error: str | None = None
    detail: str | None = None


class BatchResponse(BaseModel):
    items: list[BatchItem]
    succeeded: int
    failed: int


class VariantView(BaseModel):
    name: str
    model: str
    weight: float
    share: float
    shadow: bool


class ExperimentView(BaseModel):
    name: str
    salt_version: int
    variants: list[VariantView]
    fallback: list[str]
    shadow_sample_rate: float | None
    categories: list[str]
    urgencies: list[str]


class RoutesView(BaseModel):
    default_experiment: str
    experiments: list[ExperimentView]
