"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gateway.request.classify import ClassifyResult
from gateway.request.triage import ReviewIn, Triage


class ClassifyRequest(ReviewIn):
    experiment: str | None = None


class ClassifyResponse(BaseModel):
    """The documented shape of `ClassifyResult.public_dict` (which the single-review endpoint
    sends as is); `extra="forbid"` makes `of` fail loudly if the two drift apart."""

    model_config = ConfigDict(extra="forbid")

    request_id: str
    review_id: str | None
    experiment: str
    variant: str
    model: str
    triage: Triage
    latency_ms: float
    cost_usd: float
    attempts: int
    fallback_from: str | None

    @classmethod
    def of(cls, r: ClassifyResult) -> ClassifyResponse:
        return cls.model_validate(r.public_dict())


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[ReviewIn], Field(min_length=1, max_length=100)]
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
