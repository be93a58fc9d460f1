"""Keyword heuristics that give the upstream simulator plausible triage answers.

Cheap on purpose (a lower-cased copy of the text and a few dozen substring tests): the
simulator is the "direct" baseline in benchmarks, so its per-request work must stay tiny.
Nothing here is a real classifier; it only has to look like one to a client.
"""

from __future__ import annotations

import random
import re

import orjson

from gateway.request.triage import DEFAULT_CATEGORIES, DEFAULT_URGENCIES, SUMMARY_MAX_CHARS

_CRITICAL = (
    "payment",
    "charged",
    "billing",
    "lost all",
    "lost my",
    "data loss",
    "deleted my",
    "wiped",
)
_HIGH = ("crash", "freez", "frozen", "login fail", "can't log", "cannot log", "can't sign")
_BUG = (
    *_HIGH,
    "bug",
    "error",
    "broken",
    "glitch",
    "not working",
    "doesn't work",
    "does not work",
    "won't load",
    "fails",
    "failed",
)
_FEATURE = ("please add", "would be nice", "wish", "feature request", "should add", "could you add")
_COMPLAINT = ("terrible", "worst", "waste", "expensive", "awful", "horrible", "scam", "many ads")
_PRAISE = ("love", "great", "awesome", "amazing", "excellent", "fantastic", "best app", "perfect")
_QUESTION_STARTS = ("how ", "why ", "what ", "when ", "where ", "is there", "can i", "does ")

# Salient phrases, in priority order, and the topic word each one stands for.
_TOPICS: tuple[tuple[str, str], ...] = (
    ("crash", "Crash"),
    ("freez", "Freeze"),
    ("login", "Login"),
    ("log in", "Login"),
    ("sign in", "Login"),
    ("password", "Password"),
    ("payment", "Payment"),
    ("checkout", "Checkout"),
    ("charged", "Billing"),
    ("subscription", "Subscription"),
    ("refund", "Refund"),
    ("dark mode", "Dark Mode"),
    ("notification", "Notifications"),
    ("sync", "Sync"),
    ("battery", "Battery"),
    (" ads", "Ads"),
    ("price", "Pricing"),
    ("expensive", "Pricing"),
    ("update", "Update"),
    ("offline", "Offline Mode"),
    ("export", "Export"),
    ("search", "Search"),
    ("photo", "Photos"),
    ("video", "Video"),
    ("widget", "Widget"),
)
_STOP_WORDS = (
    "this that with have from they were been when what your just very really will would "
    "could should there their about after again also only even still into them then than "
    "does doesn dont didn cant cannot because every never always app apps application "
    "please love great awesome terrible worst waste thanks thank review rating"
)
_STOP = frozenset(_STOP_WORDS.split())
_FALLBACK_TOPIC = "General Feedback"
_WORD = re.compile(r"[a-z]{4,}")
_SENTENCE_END = re.compile(r"[.!?\n]")


def review_text(message: str) -> str:
    """The review inside a user message, dropping the `App:`/`Rating:` header if present."""
    _, sep, rest = message.partition("Review:\n")
    return rest if sep else message


def _rating(message: str) -> int | None:
    idx = message.find("Rating: ")
    if idx < 0 or idx + 8 >= len(message) or not message[idx + 8].isdigit():
        return None
    return int(message[idx + 8])


def _any(text: str, needles: tuple[str, ...]) -> bool:
    return any(n in text for n in needles)


def _classify(low: str, rating: int | None) -> tuple[str, str]:
    if _any(low, _BUG):
        if _any(low, _CRITICAL):
            return "Bug Report", "Critical"
        return "Bug Report", "High" if _any(low, _HIGH) else "Medium"
    if _any(low, _FEATURE):
        return "Feature Request", "Low"
    if _any(low, _COMPLAINT):
        return "Complaint", "High" if _any(low, _CRITICAL) else "Medium"
    if "?" in low or low.startswith(_QUESTION_STARTS):
        return "Question", "Low"
    if _any(low, _PRAISE):
        return "Praise", "Low"
    if rating is not None and rating <= 2:
        return "Complaint", "Medium"
    if rating is not None and rating >= 4:
        return "Praise", "Low"
    return "Other", "Low"


def _topic(low: str) -> str:
    found: list[str] = []
    for needle, word in _TOPICS:
        if needle in low and word not in found:
            found.append(word)
            if len(found) == 2:
                break
    if not found:
        for word in _WORD.findall(low):
            if word not in _STOP and word.title() not in found:
                found.append(word.title())
                if len(found) == 2:
                    break
    return " ".join(found) if found else _FALLBACK_TOPIC


_LEADS = {
    "Bug Report": "The user reports a problem",
    "Feature Request": "The user asks for a new feature",
    "Complaint": "The user complains",
    "Praise": "The user praises the app",
    "Question": "The user asks a question",
    "Other": "The user leaves general feedback",
}

assert set(_LEADS) == set(DEFAULT_CATEGORIES) and "Critical" in DEFAULT_URGENCIES


def _summary(category: str, topic: str, review: str) -> str:
    first = _SENTENCE_END.split(review.strip(), maxsplit=1)[0].strip()
    if len(first) > 120:
        first = first[:117].rstrip() + "..."
    lead = _LEADS.get(category, "The user writes")
    if topic != _FALLBACK_TOPIC:
        lead = f"{lead} about {topic.lower()}"
    text = f'{lead}: "{first}".' if first else f"{lead}."
    return text[:SUMMARY_MAX_CHARS]


def heuristic_triage(
    message: str, category: str | None = None, urgency: str | None = None
) -> dict[str, str]:
    """A plausible `{category, urgency, topic, summary}` for one user message; `category` and
    `urgency`, when given, replace the keyword guesses (the topic and summary follow them)."""
    review = review_text(message)
    low = review.lower()
    guess_category, guess_urgency = _classify(low, _rating(message))
    category, urgency = category or guess_category, urgency or guess_urgency
    topic = _topic(low)
    return {
        "category": category,
        "urgency": urgency,
        "topic": topic,
        "summary": _summary(category, topic, review),
    }


INVALID_VARIANTS = ("not_json", "truncated", "bad_category", "missing_urgency", "fenced", "synonym")
REPAIRABLE_VARIANTS = ("fenced", "synonym")  # a robust parser can still recover these
SYNONYMS = {"Bug Report": "bug", "Feature Request": "feature", "Complaint": "complaint"}


def broken_content(answer: dict[str, str], variant: str, rng: random.Random) -> str:
    """The answer spoiled the way `variant` (one of INVALID_VARIANTS) says."""
    good = orjson.dumps(answer).decode()
    if variant == "not_json":
        return f"I think this review is a {answer['category'].lower()} about {answer['topic']}."
    if variant == "truncated":
        return good[: rng.randint(1, len(good) - 2)]
    if variant == "fenced":
        return f"Sure! Here is the triage:\n```json\n{good}\n```\nLet me know if you need more."
    broken = dict(answer)
    if variant == "bad_category":
        broken["category"] = "Banana"
    elif variant == "missing_urgency":
        del broken["urgency"]
    else:  # synonym: a known synonym or the category in lower case
        syn = SYNONYMS.get(answer["category"])
        broken["category"] = syn if syn and rng.random() < 0.5 else answer["category"].lower()
    return orjson.dumps(broken).decode()
