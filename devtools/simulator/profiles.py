"""Per-model profiles of the upstream simulator: how accurate, slow, expensive and faulty each
simulated model is, so that an A/B test or an offline eval against the simulator shows a real
difference between variants.

A profile matches model ids by glob patterns; the first match wins (the profiles of a
`--profiles` file before the built-in ones) and a model no profile matches gets the default
profile. On a review whose label the simulator knows (the project's seed set, plus any labelled
JSONL file it is given; matched by review text), a profile with an `accuracy` answers with the
label with that probability, and otherwise with another category (and, half the time, a
neighbouring urgency). Which reviews a model gets wrong is fixed by a hash of (model id, review
text): runs are reproducible, and two models err on different reviews. Reviews without a known
label, and profiles without an accuracy, get the keyword heuristics of `simulator.triage`.

Latency is lognormal, given by its median and 95th percentile (times a latency scale, so tests
can run the same profiles fast); price is USD per 1M input / output tokens, and the simulator's
`usage.cost` follows it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import orjson
import yaml
from pydantic import ConfigDict, TypeAdapter, ValidationError

from devtools.simulator.triage import heuristic_triage, review_text
from gateway.request.triage import DEFAULT_CATEGORIES, DEFAULT_URGENCIES

__all__ = [
    "BUILTIN_PROFILES",
    "DEFAULT_PROFILE",
    "FINE_TUNED",
    "GPT4O_LIKE",
    "WEAK",
    "Label",
    "Latency",
    "ModelProfile",
    "Price",
    "ProfileFile",
    "load_labels",
    "load_profile_file",
    "normalise",
    "parse_profile",
    "parse_profiles",
    "profile_answer",
    "read_labels",
    "seed_labels",
]

_Z95 = 1.6448536269514722  # the standard normal's 95th percentile
_FORBID = ConfigDict(extra="forbid")


def _rate(name: str, value: float | None) -> None:
    if value is not None and not 0 <= value <= 1:
        raise ValueError(f"{name} must be a fraction in 0..1, got {value!r}")


@dataclass(frozen=True, slots=True)
class Latency:
    """A lognormal latency: its median and 95th percentile, in milliseconds."""

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID
    median_ms: float
    p95_ms: float

    def __post_init__(self) -> None:
        if not 0 <= self.median_ms <= self.p95_ms:
            raise ValueError(
                f"latency needs 0 <= median_ms <= p95_ms, got {self.median_ms} and {self.p95_ms}"
            )

    @property
    def sigma(self) -> float:
        """The lognormal's shape (sd of the log latency)."""
        if self.median_ms == 0:
            return 0.0
        return math.log(self.p95_ms / self.median_ms) / _Z95


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M input and output tokens (the routes file's names)."""

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID
    input_per_1m: float
    output_per_1m: float

    def __post_init__(self) -> None:
        if self.input_per_1m < 0 or self.output_per_1m < 0:
            raise ValueError("prices must be >= 0")


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """One simulated model. None fields inherit: accuracy -> keyword heuristics, latency -> the
    simulator's fixed latency, price -> its default price, rates -> its global rates."""

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID
    name: str
    match: tuple[str, ...] = ()
    accuracy: float | None = None
    latency: Latency | None = None
    price: Price | None = None
    error_rate: float | None = None
    invalid_rate: float | None = None

    def __post_init__(self) -> None:
        for name in ("accuracy", "error_rate", "invalid_rate"):
            _rate(name, getattr(self, name))
        if (self.error_rate or 0) + (self.invalid_rate or 0) > 1:
            raise ValueError(f"profile {self.name!r}: error_rate + invalid_rate is more than 1")

    def matches(self, model: str) -> bool:
        return any(fnmatchcase(model, pattern) for pattern in self.match)


# Built-in profiles, matched in this order (a `--profiles` file's profiles come first).
WEAK = ModelProfile(
    name="weak",
    match=("*-weak", "*-weak-*", "*-weak:*"),
    accuracy=0.75,
    latency=Latency(median_ms=150, p95_ms=400),
    price=Price(0.1, 0.1),
    error_rate=0.01,
    invalid_rate=0.1,
)
"""A deliberately worse model (a rejected candidate): less accurate, often invalid output."""
FINE_TUNED = ModelProfile(
    name="fine-tuned",
    match=("ft:*", "*-ft", "*-ft-*", "*-ft:*", "*/ft-*"),
    accuracy=0.97,
    latency=Latency(median_ms=120, p95_ms=300),
    price=Price(0.2, 0.2),
)
"""A fine-tuned small model: cheaper, faster and at least as accurate as GPT-4o on triage."""
GPT4O_LIKE = ModelProfile(
    name="gpt-4o-like",
    match=("openai/gpt-4o", "gpt-4o", "openai/gpt-4o-20*", "gpt-4o-20*"),
    accuracy=0.90,
    latency=Latency(median_ms=400, p95_ms=1200),
    price=Price(2.5, 10.0),
)
"""The control: accurate, slow and expensive (GPT-4o's list price)."""
BUILTIN_PROFILES: tuple[ModelProfile, ...] = (WEAK, FINE_TUNED, GPT4O_LIKE)
DEFAULT_PROFILE = ModelProfile(name="default")
"""For models no profile matches: keyword heuristics, the simulator's latency and price."""


@dataclass(frozen=True, slots=True)
class ProfileFile:
    """What a `--profiles` YAML file holds."""

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID
    profiles: tuple[ModelProfile, ...] = ()
    default: ModelProfile | None = None
    builtin: bool = True
    """Keep the built-in profiles (matched after this file's)."""
    latency_scale: float | None = None

    def __post_init__(self) -> None:
        if self.latency_scale is not None and self.latency_scale < 0:
            raise ValueError(f"latency_scale must be >= 0, got {self.latency_scale}")


_PROFILE = TypeAdapter(ModelProfile)
_PROFILES = TypeAdapter(tuple[ModelProfile, ...])
_FILE = TypeAdapter(ProfileFile)


_UNKNOWN = frozenset({"unexpected_keyword_argument", "extra_forbidden"})


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'file'}: "
        f"{'unknown field' if e['type'] in _UNKNOWN else e['msg']}"
        for e in exc.errors()
    )


def parse_profile(data: Any) -> ModelProfile:
    try:
        return _PROFILE.validate_python(data)
    except ValidationError as exc:
        raise ValueError(f"bad profile: {_problems(exc)}") from None


def parse_profiles(data: Any) -> tuple[ModelProfile, ...]:
    try:
        return _PROFILES.validate_python(data)
    except ValidationError as exc:
        raise ValueError(f"bad profiles: {_problems(exc)}") from None


def load_profile_file(path: Path) -> ProfileFile:
    """Read and check a profiles YAML file; ValueError naming the file and the problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    try:
        return _FILE.validate_python({} if data is None else data)
    except ValidationError as exc:
        raise ValueError(f"{path}: {_problems(exc)}") from None


# --- labels ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Label:
    """The known answer for one review text."""

    category: str
    urgency: str | None = None
    topic: str | None = None
    summary: str | None = None


def normalise(text: str) -> str:
    """The key a review is matched by: whitespace collapsed, case folded."""
    return " ".join(text.split()).casefold()


def _opt_str(row: Mapping[str, Any], key: str) -> str | None:
    value = row.get(key)
    return value if isinstance(value, str) and value.strip() else None


def read_labels(data: bytes, source: str) -> dict[str, Label]:
    """Labels from JSONL bytes: one object a line with `text` and `category` (`urgency`,
    `topic`, `summary` optional); ValueError naming the source and line."""
    out: dict[str, Label] = {}
    for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ValueError(f"{source} line {n}: not valid JSON") from None
        if not isinstance(row, dict):
            raise ValueError(f"{source} line {n}: expected a JSON object")
        text, category = _opt_str(row, "text"), _opt_str(row, "category")
        if text is None or category is None:
            raise ValueError(f"{source} line {n}: needs a non-empty 'text' and 'category'")
        out[normalise(text)] = Label(
            category, _opt_str(row, "urgency"), _opt_str(row, "topic"), _opt_str(row, "summary")
        )
    return out


def seed_labels() -> dict[str, Label]:
    """The project's labelled seed set (shipped inside the `gateway` package as data)."""
    data = resources.files("gateway").joinpath("data", "seed_reviews.jsonl").read_bytes()
    return read_labels(data, "the seed set")


def load_labels(files: tuple[str, ...] = (), seed: bool = True) -> dict[str, Label]:
    """The seed set (when `seed`) and then each file, later ones winning on the same text."""
    labels = seed_labels() if seed else {}
    for name in files:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read labels {name}: {exc.strerror or exc}") from None
        labels.update(read_labels(data, name))
    return labels


# --- answers ---------------------------------------------------------------------------------


def _neighbour(urgency: str, pick: int) -> str:
    levels = DEFAULT_URGENCIES
    i = levels.index(urgency)
    if i == 0 or (i < len(levels) - 1 and pick % 2):
        return levels[i + 1]
    return levels[i - 1]


def profile_answer(
    profile: ModelProfile, model: str, message: str, labels: Mapping[str, Label]
) -> tuple[dict[str, str], bool | None]:
    """The answer `model` (with `profile`) gives to a user message, and whether it is the known
    label (None: no label known or no accuracy set, so the keyword heuristics answered)."""
    if profile.accuracy is None:
        return heuristic_triage(message), None
    key = normalise(review_text(message))
    label = labels.get(key)
    if label is None:
        return heuristic_triage(message), None
    digest = hashlib.blake2b(f"{model}\0{key}".encode(), digest_size=16).digest()
    if int.from_bytes(digest[:8], "big") / 2**64 < profile.accuracy:
        answer = heuristic_triage(message, label.category, label.urgency)
        if label.topic:
            answer["topic"] = label.topic
        if label.summary:
            answer["summary"] = label.summary
        return answer, True
    others = [c for c in DEFAULT_CATEGORIES if c != label.category]
    category = others[digest[8] % len(others)]
    urgency = label.urgency
    if urgency in DEFAULT_URGENCIES and digest[9] % 2:
        urgency = _neighbour(urgency, digest[10])
    return heuristic_triage(message, category, urgency), False
