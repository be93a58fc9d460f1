"""The JSON types every layer shares, for documents whose keys are not the gateway's to fix
(OpenAPI fragments from pydantic and FastAPI): named once here so such a document is typed as
JSON rather than as `Any`. A document with keys of our own gets a TypedDict instead."""

from __future__ import annotations

from pydantic import JsonValue

JsonObject = dict[str, JsonValue]
"""A JSON object: string keys, JSON values."""

__all__ = ["JsonObject", "JsonValue"]
