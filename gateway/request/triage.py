"""The triage schema, the taxonomy and the classify prompt.

This is the one module that defines what a triage answer is. Everything else (validation,
the local model, export, eval) imports the names below; nobody else spells a category list.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

DEFAULT_CATEGORIES: tuple[str, ...] = (
    "Bug Report",
    "Feature Request",
    "Complaint",
    "Praise",
    "Question",
    "Other",
)
DEFAULT_URGENCIES: tuple[str, ...] = ("Critical", "High", "Medium", "Low")

TOPIC_MAX_CHARS = 60
SUMMARY_MAX_CHARS = 300

Topic = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TOPIC_MAX_CHARS)
]
Summary = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=SUMMARY_MAX_CHARS)
]


class Taxonomy(BaseModel):
    """The labels an experiment accepts. Defaults follow the product's triage scheme."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    urgencies: tuple[str, ...] = DEFAULT_URGENCIES

    @model_validator(mode="after")
    def _non_empty_and_unique(self) -> Taxonomy:
        for name, values in (("categories", self.categories), ("urgencies", self.urgencies)):
            if not values:
                raise ValueError(f"{name} must not be empty")
            if len({v.casefold() for v in values}) != len(values):
                raise ValueError(f"{name} must be unique (case-insensitive)")
        return self


DEFAULT_TAXONOMY = Taxonomy()


class Triage(BaseModel):
    """A valid triage answer. `category`/`urgency` are checked against a taxonomy separately
    (see `gateway.request.validate.validate_triage`), because the taxonomy is per experiment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str
    urgency: str
    topic: Topic
    summary: Summary

    def to_json_dict(self) -> dict[str, str]:
        return {
            "category": self.category,
            "urgency": self.urgency,
            "topic": self.topic,
            "summary": self.summary,
        }


def system_prompt(taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> str:
    """The system prompt for the classify call (also the system message of training data)."""
    cats = ", ".join(taxonomy.categories)
    urgs = ", ".join(taxonomy.urgencies)
    return (
        "You are an expert app review triage specialist. Classify the app-store review the "
        "user sends and answer with one JSON object and nothing else, with exactly these keys: "
        f'"category" (one of: {cats}), '
        f'"urgency" (one of: {urgs}), '
        f'"topic" (a short title of at most 5 words, e.g. "Checkout Crash"), '
        '"summary" (one sentence describing the review).'
    )


def user_prompt(text: str, app: str | None = None, rating: int | None = None) -> str:
    """The user message: the review, with app and star rating when known."""
    head = []
    if app:
        head.append(f"App: {app}")
    if rating is not None:
        head.append(f"Rating: {rating}/5")
    if not head:
        return text
    return "\n".join([*head, "Review:", text])


def json_schema(taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> dict[str, object]:
    """JSON schema for providers that support `response_format: json_schema`."""
    return {
        "name": "triage",
        "strict": True,
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["category", "urgency", "topic", "summary"],
            "properties": {
                "category": {"type": "string", "enum": list(taxonomy.categories)},
                "urgency": {"type": "string", "enum": list(taxonomy.urgencies)},
                "topic": {"type": "string", "maxLength": TOPIC_MAX_CHARS},
                "summary": {"type": "string", "maxLength": SUMMARY_MAX_CHARS},
            },
        },
    }


class ReviewIn(BaseModel):
    """One review to classify, as the API and the offline tools accept it."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(min_length=1, max_length=8000)]
    review_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    app: Annotated[str, StringConstraints(max_length=200)] | None = None
    # Strict: "5", " 5 ", 5.0 and true are refused, not coerced (true would be one star).
    rating: Annotated[StrictInt, Field(ge=1, le=5)] | None = None
    metadata: dict[str, str | int | float | bool | None] | None = None

    @field_validator("text")
    @classmethod
    def _has_words(cls, text: str) -> str:
        if text.isspace():
            raise ValueError("must hold more than whitespace")
        return text
