"""Generate `gateway/data/seed_reviews.jsonl`, the project's own labelled seed reviews.

The seed set trains the zero-setup baseline model (`training.baseline`, served by
`gateway.local.tfidf`). Every review is written by this project: the sentence templates live in
`templates/` (app domains with their slot fillers and cores in domains.yaml; per-category cores,
lead-ins, details, stories, closers, emoji and ratings in categories.yaml; shared fillers and
noise in common.yaml; reviews in six other languages with their own per-category lead-ins,
details and closers in multilingual.yaml), and this module fills and combines them, then adds
light noise (informal spelling, typos, lower case, missing punctuation, emoji). English reviews
written whole, as varied in length, tone and subject as real ones, are added as they are
(written.yaml; each is its own template). Nothing is copied from any external data set.

Output is deterministic for a given `--seed`; the defaults reproduce the committed file byte
for byte (`make seed-data`). Run from the repository root:

    python -m tools.seed_data.generate [--seed 20240611] [--per-category 150] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Sequence
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "gateway" / "data" / "seed_reviews.jsonl"
DEFAULT_SEED = 20240611
DEFAULT_PER_CATEGORY = 150

Urgency = Literal["Critical", "High", "Medium", "Low"]
URGENCIES: tuple[Urgency, ...] = ("Critical", "High", "Medium", "Low")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Core(_Model):
    """A review sentence with its labels; `topic` and `summary` are templates like `text`."""

    text: str
    urgency: Urgency
    topic: str
    summary: str


class Domain(_Model):
    kind: str
    purpose: str
    apps: tuple[str, ...]
    features: tuple[str, ...]
    actions: tuple[tuple[str, str], ...]  # (verb phrase, topic noun phrase)
    screens: tuple[str, ...]
    data: tuple[str, ...]
    purchases: tuple[str, ...]
    wishes: tuple[str, ...]
    capabilities: tuple[str, ...]
    cores: dict[str, tuple[Core, ...]] = {}


class Category(_Model):
    urgency_jitter: float
    ratings: tuple[int, ...] | dict[Urgency, tuple[int, ...]]
    upper_case: bool = False  # the noise may shout the whole review
    exclaim: bool = False  # the noise may end the review with "!!"
    lead_ins: tuple[str, ...]
    closers: tuple[str, ...]
    emoji: tuple[str, ...]
    details: tuple[str, ...]
    stories: tuple[str, ...]
    cores: tuple[Core, ...]
    short_cores: tuple[Core, ...]


class Common(_Model):
    generic_wishes: tuple[str, ...]
    generic_capabilities: tuple[str, ...]
    integrations: tuple[str, ...]
    devices: tuple[str, ...]
    versions: tuple[str, ...]
    times: tuple[str, ...]
    competitors: tuple[str, ...]
    counts: tuple[int, ...]
    context: tuple[str, ...]
    informal: tuple[tuple[str, str], ...]  # (regex, replacement)
    urgency_shift: dict[Urgency, tuple[Urgency, ...]]


MultilingualEntry = tuple[str, Urgency, str, str]  # text, urgency, topic, summary


class Frames(_Model):
    """A language's parts around a review of one category, as its speakers write them."""

    lead_ins: tuple[str, ...]
    details: tuple[str, ...]
    closers: tuple[str, ...]


class Language(_Model):
    frames: dict[str, Frames]  # per category
    cores: dict[str, tuple[MultilingualEntry, ...]]  # per category


class WrittenReview(_Model):
    """An English review written whole, with its labels."""

    text: str
    category: str
    urgency: Urgency
    topic: str
    summary: str


class Written(_Model):
    reviews: tuple[WrittenReview, ...]


class Templates(_Model):
    domains: tuple[Domain, ...]
    categories: dict[str, Category]  # in generation order
    common: Common
    multilingual: dict[str, Language] = {}
    written: Written = Written(reviews=())

    @model_validator(mode="after")
    def _consistent(self) -> Templates:
        unknown = {name for dom in self.domains for name in dom.cores} - set(self.categories)
        unknown |= {r.category for r in self.written.reviews} - set(self.categories)
        for lang in self.multilingual.values():
            unknown |= (set(lang.cores) | set(lang.frames)) - set(self.categories)
            if missing := set(lang.cores) - set(lang.frames):
                raise ValueError(f"multilingual cores without frames: {sorted(missing)}")
        if unknown:
            raise ValueError(f"cores or reviews of unknown categories: {sorted(unknown)}")
        for name, cat in self.categories.items():
            if isinstance(cat.ratings, dict) and set(cat.ratings) != set(URGENCIES):
                raise ValueError(f"{name}: ratings by urgency must cover {URGENCIES}")
        if set(self.common.urgency_shift) != set(URGENCIES):
            raise ValueError(f"urgency_shift must cover {URGENCIES}")
        return self

    @cached_property
    def run_on_words(self) -> frozenset[str]:
        """Last words of the lead-ins that end without punctuation ("ugh", "ok so"): the next
        part runs on after them instead of starting a new sentence."""
        return frozenset(
            lead.split()[-1].lower()
            for cat in self.categories.values()
            for lead in cat.lead_ins
            if lead[-1] not in ",:.!?"
        )


def _read_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@cache
def load_templates(directory: Path = TEMPLATES_DIR) -> Templates:
    return Templates.model_validate(
        {
            name: _read_yaml(directory / f"{name}.yaml")
            for name in ("domains", "categories", "common", "multilingual", "written")
        }
    )


def _title(phrase: str) -> str:
    words = phrase.split()[:4]
    out = []
    for w in words:
        if w.isupper() or (len(w) > 1 and w[0].islower() and w[1].isupper()):
            out.append(w)  # keep "GPS", "iPad"
        else:
            out.append(w[:1].upper() + w[1:])
    return " ".join(out)


def _slots(rng: random.Random, t: Templates, dom: Domain) -> dict[str, str]:
    common = t.common
    action, action_topic = rng.choice(dom.actions)
    feature = rng.choice(dom.features)
    screen = rng.choice(dom.screens)
    data = rng.choice(dom.data)
    wishes = dom.wishes + common.generic_wishes[: len(dom.wishes)]
    caps = dom.capabilities + common.generic_capabilities
    slots = {
        "app": rng.choice(dom.apps),
        "kind": dom.kind,
        "purpose": dom.purpose,
        "feature": feature,
        "action": action,
        "action_topic": action_topic,
        "screen": screen,
        "data": data,
        "purchase": rng.choice(dom.purchases),
        "wish": rng.choice(wishes),
        "device": rng.choice(common.devices),
        "version": rng.choice(common.versions),
        "time": rng.choice(common.times),
        "n": str(rng.choice(common.counts)),
        "competitor": rng.choice(common.competitors),
        "integration": rng.choice(common.integrations),
    }
    slots["capability"] = rng.choice(caps).format_map(slots)
    return slots


def _topic(template: str, slots: dict[str, str]) -> str:
    text = template.format_map(slots)
    # capability / wish topics: drop leading articles and filler verbs, keep 1-4 words
    words = [w for w in re.split(r"\s+", text) if w]
    while words and words[0].lower() in {"a", "an", "the", "my", "to"}:
        words = words[1:]
    return _title(" ".join(words)) or "General Feedback"


def _sentence(part: str) -> str:
    part = part.strip()
    if part and part[-1] not in ".!?:,":
        part += "."
    return part


def _join(parts: list[str], run_on: frozenset[str]) -> str:
    out = ""
    for p in parts:
        if not out:
            out = p
        elif out[-1] in ",:" or out.split()[-1].lower() in run_on:
            out = f"{out} {p}"
        else:
            out = f"{_sentence(out)} {p}" if out[-1] not in ".!?" else f"{out} {p}"
    return out


def _sentence_case(text: str) -> str:
    text = re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
    text = re.sub(r"\bi\b", "I", text)
    return re.sub(r"\bi(['’](m|ve|d|ll))\b", r"I\1", text)


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    for i in rng.sample(idx, k=min(len(idx), rng.choice((1, 1, 2)))):
        w = words[i]
        j = rng.randrange(1, len(w) - 2)
        op = rng.random()
        if op < 0.4:
            w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
        elif op < 0.75:
            w = w[:j] + w[j + 1 :]
        else:
            w = w[:j] + w[j] + w[j:]
        words[i] = w
    return " ".join(words)


def _noise(rng: random.Random, t: Templates, text: str, cat: Category) -> str:
    if rng.random() < 0.35:
        for pattern, repl in t.common.informal:
            if rng.random() < 0.7:
                text = re.sub(pattern, repl, text)
    if rng.random() < 0.2:
        text = _typo(rng, text)
    r = rng.random()
    if r < 0.4:
        pass  # all lower case, as written
    elif r < 0.05 + 0.4 and cat.upper_case:
        text = text.upper()
    else:
        text = _sentence_case(text)
    r = rng.random()
    if r < 0.15:
        text = re.sub(r"[.,!?:;]", "", text)
    elif r < 0.35:
        text = text.rstrip(".!?")
    elif r < 0.45 and cat.exclaim:
        text = text.rstrip(".!?") + rng.choice(("!!", "!!!", "!"))
    if rng.random() < 0.12:
        text = f"{text} {rng.choice(cat.emoji)}"
    return re.sub(r"\s+", " ", text).strip()


def _urgency(rng: random.Random, t: Templates, base: Urgency, cat: Category) -> Urgency:
    if rng.random() < cat.urgency_jitter:
        return rng.choice(t.common.urgency_shift[base])
    return base


def _rating(rng: random.Random, cat: Category, urgency: Urgency) -> int:
    pool = cat.ratings[urgency] if isinstance(cat.ratings, dict) else cat.ratings
    return rng.choice(pool)


def make_record(rng: random.Random, t: Templates, category: str) -> dict[str, object]:
    cat = t.categories[category]
    dom = rng.choice(t.domains)
    slots = _slots(rng, t, dom)
    r = rng.random()
    if r < 0.1:
        core = rng.choice(cat.short_cores)
        template = f"{category}/short/{cat.short_cores.index(core)}"
        size = "short"
    else:
        pool = cat.cores + dom.cores.get(category, ())
        core = rng.choice(pool)
        i = pool.index(core)
        template = (
            f"{category}/core/{i}"
            if i < len(cat.cores)
            else f"{dom.kind}/{category}/{i - len(cat.cores)}"
        )
        size = "medium" if r < 0.6 else "long" if r < 0.88 else "xl"
    parts: list[str] = []
    if size != "short":
        if rng.random() < (0.2 if size == "medium" else 0.45):
            parts.append(rng.choice(cat.lead_ins))
        if size == "long" and rng.random() < 0.6:
            parts.insert(0, rng.choice(t.common.context))
        parts.append(core.text)
        if size == "xl":
            if not parts[0].endswith("."):
                parts.insert(0, rng.choice(t.common.context))
            parts.extend(rng.sample(cat.stories, k=rng.choice((1, 2, 2))))
        n_details = {"medium": 1, "long": rng.choice((1, 2, 2)), "xl": rng.choice((2, 3))}[size]
        if size != "medium" or rng.random() < 0.35:
            parts.extend(rng.sample(cat.details, k=n_details))
        if rng.random() < (0.25 if size == "medium" else 0.5):
            parts.append(rng.choice(cat.closers))
    else:
        parts.append(core.text)
    while len(" ".join(parts).split()) > 80 and len(parts) > 2:
        parts.pop(-2)  # drop a detail, keep the core and the closing part
    text = _join([p.format_map(slots) for p in parts], t.run_on_words)
    text = re.sub(r"\ba (ipad|iphone|android|oneplus)", r"an \1", text)
    text = _noise(rng, t, text, cat)
    urgency = _urgency(rng, t, core.urgency, cat)
    summary = re.sub(r"\bmy\b", "their", core.summary.format_map(slots))
    summary = summary[:1].upper() + summary[1:]
    return {
        "text": text,
        "category": category,
        "urgency": urgency,
        "topic": _topic(core.topic, slots),
        "summary": summary,
        "app": slots["app"],
        "rating": _rating(rng, cat, urgency),
        "lang": "en",
        "template": template,
    }


def generate(
    seed: int = DEFAULT_SEED,
    per_category: int = DEFAULT_PER_CATEGORY,
    templates: Templates | None = None,
) -> list[dict[str, object]]:
    t = templates or load_templates()
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[dict[str, object]] = []
    for category in t.categories:
        # vary the counts a little (roughly balanced, not identical)
        target = per_category + rng.randint(-5, 5)
        got = 0
        tries = 0
        while got < target and tries < target * 50:
            tries += 1
            rec = make_record(rng, t, category)
            key = re.sub(r"[^a-z0-9 ]", "", str(rec["text"]).lower())
            if key in seen or len(str(rec["text"]).split()) < 3:
                continue
            seen.add(key)
            out.append(rec)
            got += 1
    out += multilingual_records(rng, t, seen)
    out += written_records(rng, t, seen)
    rng.shuffle(out)
    return out


def _framed(rng: random.Random, frames: Frames, text: str, lang: str) -> str:
    """`text` with at least one of the language's lead-in, detail and closer around it, then
    the same noise as English: lower case, no final punctuation."""
    parts = [text]
    if rng.random() < 0.5:
        lead = rng.choice(frames.lead_ins)
        if lead[-1] not in ".!?:。！？":  # "Hola," / "Pues" run on into the review
            text = text[:1].lower() + text[1:]
        parts = [lead, text]
    if rng.random() < 0.5:
        parts.append(rng.choice(frames.details))
    if len(parts) == 1 or rng.random() < 0.5:
        parts.append(rng.choice(frames.closers))
    out = ("" if lang == "ja" else " ").join(parts)
    if rng.random() < 0.4:
        out = out.lower()
    if rng.random() < 0.3:
        out = out.rstrip(".!?。！？ ")
    return out


def multilingual_records(
    rng: random.Random, t: Templates, seen: set[str]
) -> list[dict[str, object]]:
    """Each non-English entry as written, and once framed by its language's lead-in, detail or
    closer for its category (`_framed`)."""
    out: list[dict[str, object]] = []
    for lang, language in t.multilingual.items():
        for category, entries in language.cores.items():
            cat = t.categories[category]
            for i, (text, urgency, topic, summary) in enumerate(entries):
                variants = [text, _framed(rng, language.frames[category], text, lang)]
                for variant in variants:
                    if variant in seen:
                        continue
                    seen.add(variant)
                    out.append(
                        {
                            "text": variant,
                            "category": category,
                            "urgency": urgency,
                            "topic": topic,
                            "summary": summary,
                            "app": rng.choice(rng.choice(t.domains).apps),
                            "rating": _rating(rng, cat, urgency),
                            "lang": lang,
                            "template": f"{lang}/{category}/{i}",
                        }
                    )
    return out


def written_records(rng: random.Random, t: Templates, seen: set[str]) -> list[dict[str, object]]:
    """Each review of written.yaml as it is, its own template (under three words: left out,
    as generated ones are)."""
    out: list[dict[str, object]] = []
    for i, review in enumerate(t.written.reviews):
        if review.text in seen or len(review.text.split()) < 3:
            continue
        seen.add(review.text)
        out.append(
            {
                "text": review.text,
                "category": review.category,
                "urgency": review.urgency,
                "topic": review.topic,
                "summary": review.summary,
                "app": rng.choice(rng.choice(t.domains).apps),
                "rating": _rating(rng, t.categories[review.category], review.urgency),
                "lang": "en",
                "template": f"en-written/{i}",
            }
        )
    return out


def write_jsonl(records: list[dict[str, object]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--per-category", type=int, default=DEFAULT_PER_CATEGORY)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    records = generate(args.seed, args.per_category)
    write_jsonl(records, args.out)
    print(f"wrote {len(records)} reviews to {args.out}")


if __name__ == "__main__":
    main()
