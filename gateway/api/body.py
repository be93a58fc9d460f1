"""Request bodies parsed straight from bytes by pydantic-core, for the hot routes.

FastAPI's own body handling (decode to Python objects, then validate, through its dependency
solver) costs several times more CPU than `model_validate_json` on the raw bytes; the routes
that carry classify traffic use this instead and declare their schema for OpenAPI by hand.
"""

from __future__ import annotations

from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from gateway.jsontypes import JsonObject

M = TypeVar("M", bound=BaseModel)


async def parse_body(request: Request, model: type[M]) -> M:
    """Validate the JSON body against `model`; errors become the usual 422 answer."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
        raise RequestValidationError(errors) from None


# Nested models of hand-declared bodies, merged into the OpenAPI components by `add_schemas`.
_COMPONENTS: JsonObject = {}


def json_body(model: type[BaseModel]) -> JsonObject:
    """The OpenAPI `requestBody` of a route that parses `model` with `parse_body`."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    _COMPONENTS.update(schema.pop("$defs", {}))
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def add_schemas(app: FastAPI) -> None:
    """Make the app's OpenAPI document include the nested schemas of hand-declared bodies."""
    build = app.openapi

    def openapi() -> JsonObject:
        doc = build()
        doc.setdefault("components", {}).setdefault("schemas", {}).update(_COMPONENTS)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
