"""Turn a model's raw answer into a valid `Triage`, repairing what can be repaired.

`validate_triage` accepts the JSON object alone (the fast path), JSON inside code fences or
surrounded by chatter, keys and labels in any case, and common synonyms ("bug" -> "Bug Report",
"urgent" -> "Critical"). What it cannot repair raises `TriageValidationError` with a short
machine-readable `reason` (used as a metric label) and a message fit to send back to the model
in a re-ask.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import orjson

from gateway.request.triage import SUMMARY_MAX_CHARS, TOPIC_MAX_CHARS, Taxonomy, Triage

CATEGORY_SYNONYMS: dict[str, str] = {
    "bug": "Bug Report",
    "bugs": "Bug Report",
    "bugreport": "Bug Report",
    "defect": "Bug Report",
    "crash": "Bug Report",
    "error": "Bug Report",
    "issue": "Bug Report",
    "feature": "Feature Request",
    "featurerequest": "Feature Request",
    "request": "Feature Request",
    "enhancement": "Feature Request",
    "suggestion": "Feature Request",
    "idea": "Feature Request",
    "complain": "Complaint",
    "negative": "Complaint",
    "negativefeedback": "Complaint",
    "compliment": "Praise",
    "positive": "Praise",
    "positivefeedback": "Praise",
    "appreciation": "Praise",
    "inquiry": "Question",
    "enquiry": "Question",
    "query": "Question",
    "help": "Question",
    "misc": "Other",
    "miscellaneous": "Other",
    "general": "Other",
    "none": "Other",
}
URGENCY_SYNONYMS: dict[str, str] = {
    "urgent": "Critical",
    "blocker": "Critical",
    "severe": "Critical",
    "p0": "Critical",
    "veryhigh": "Critical",
    "p1": "High",
    "important": "High",
    "moderate": "Medium",
    "normal": "Medium",
    "med": "Medium",
    "p2": "Medium",
    "minor": "Low",
    "trivial": "Low",
    "p3": "Low",
    "none": "Low",
}
KEY_ALIASES: dict[str, str] = {
    "category": "category",
    "type": "category",
    "label": "category",
    "class": "category",
    "urgency": "urgency",
    "priority": "urgency",
    "severity": "urgency",
    "topic": "topic",
    "title": "topic",
    "subject": "topic",
    "summary": "summary",
    "description": "summary",
}
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_DECODER = json.JSONDecoder()


class TriageValidationError(ValueError):
    """The answer is not valid triage and could not be repaired."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class ValidatedTriage:
    triage: Triage
    repaired: bool  # True when anything beyond a plain parse was needed


def _norm(label: str) -> str:
    return _NON_ALNUM.sub("", label.casefold())


@lru_cache(maxsize=64)
def _label_index(allowed: tuple[str, ...], synonyms: tuple[tuple[str, str], ...]) -> dict[str, str]:
    index = {_norm(k): v for k, v in synonyms if v in allowed}
    index.update({_norm(v): v for v in allowed})
    return index


def canonical_label(value: str, allowed: Sequence[str], synonyms: Mapping[str, str]) -> str | None:
    """`value` as one of `allowed`, ignoring case, spacing and punctuation and mapping
    `synonyms` (normalised key -> label; a synonym whose label is not allowed is ignored), or
    None. The one label normaliser: the validator and the offline data readers both use it."""
    if value in allowed:
        return value
    return _label_index(tuple(allowed), tuple(synonyms.items())).get(_norm(value))


def _canonical(
    value: object, allowed: tuple[str, ...], synonyms: dict[str, str], field: str
) -> str:
    if not isinstance(value, str):
        raise TriageValidationError(f"bad_{field}", f"{field} must be a string")
    found = canonical_label(value, allowed, synonyms)
    if found is None:
        raise TriageValidationError(
            f"bad_{field}", f"{field} {value[:40]!r} is not one of: {', '.join(allowed)}"
        )
    return found


def _extract_object(raw: str) -> tuple[dict[str, object], bool]:
    """Find the triage JSON object in `raw`. Returns (object, needed_repair)."""
    try:
        obj = orjson.loads(raw)
        if isinstance(obj, dict):
            return obj, False
    except orjson.JSONDecodeError:
        pass
    candidates = [m.group(1) for m in _FENCE.finditer(raw)] + [raw]
    for text in candidates:
        start = text.find("{")
        while start != -1:
            try:
                obj, _ = _DECODER.raw_decode(text, start)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                return obj, True
            start = text.find("{", start + 1)
    if "{" not in raw:
        raise TriageValidationError("not_json", "the answer holds no JSON object")
    raise TriageValidationError("malformed_json", "the answer's JSON object does not parse")


def _clip(value: object, limit: int, field: str) -> tuple[str, bool]:
    if not isinstance(value, str) or not value.strip():
        raise TriageValidationError("missing_field", f"{field} must be a non-empty string")
    text = " ".join(value.split())
    if len(text) <= limit:
        return text, text != value
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,;:-"), True


def validate_triage(raw: str, taxonomy: Taxonomy) -> ValidatedTriage:
    """Parse and check a raw model answer against `taxonomy`, repairing where safe."""
    obj, repaired = _extract_object(raw)
    fields: dict[str, object] = {}
    for key, value in obj.items():
        name = KEY_ALIASES.get(key.strip().casefold()) if isinstance(key, str) else None
        if name is not None and name not in fields:
            fields[name] = value
            repaired = repaired or name != key
    missing = [f for f in ("category", "urgency", "topic", "summary") if f not in fields]
    if missing:
        raise TriageValidationError("missing_field", f"missing key(s): {', '.join(missing)}")
    category = _canonical(fields["category"], taxonomy.categories, CATEGORY_SYNONYMS, "category")
    urgency = _canonical(fields["urgency"], taxonomy.urgencies, URGENCY_SYNONYMS, "urgency")
    topic, t_fixed = _clip(fields["topic"], TOPIC_MAX_CHARS, "topic")
    summary, s_fixed = _clip(fields["summary"], SUMMARY_MAX_CHARS, "summary")
    repaired = (
        repaired
        or t_fixed
        or s_fixed
        or category != fields["category"]
        or urgency != fields["urgency"]
    )
    triage = Triage(category=category, urgency=urgency, topic=topic, summary=summary)
    return ValidatedTriage(triage=triage, repaired=repaired)
