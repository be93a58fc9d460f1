"""Extractive topic and summary, shared by every local model format's runtime.

The topic is the 1-3 most salient content words of the review (by idf, in reading order,
title-cased); the summary is the review's first sentence, trimmed, ending with a period. Each
runtime supplies the idf table its model was trained with.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from gateway.request.triage import TOPIC_MAX_CHARS

__all__ = ["DEFAULT_TOPICS", "default_topic", "extract_summary", "extract_topic"]

SUMMARY_TARGET_CHARS = 200
TOPIC_MAX_WORDS = 3
_TOPIC_TOKEN_MAX_CHARS = 20
_NO_WORDS_SUMMARY = "Review has no words, only symbols or emoji."

# Fallback topics when a review has no content words ("love it!!", emoji only, ...).
DEFAULT_TOPICS: dict[str, str] = {
    "Bug Report": "Unspecified Bug",
    "Feature Request": "Feature Suggestion",
    "Complaint": "General Dissatisfaction",
    "Praise": "Overall Experience",
    "Question": "General Question",
    "Other": "General Feedback",
}

_WORD_RE = re.compile(r"[^\W\d_](?:[\w'’-]*\w)?")
_HAS_WORD_RE = re.compile(r"\w")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?…])\s+|\s*[\r\n]+\s*")
_TRAILING_RE = re.compile(r"[\s.,;:!?…\-–—]+$")

# Words that say how the reviewer feels or pad the sentence, never what the review is about.
_EXTRA_STOP_WORDS = """
    app apps application please pls plz thanks thank thx ty just really rly like get gets
    got getting even still would could also every time times always never make makes making
    use used using want wants wanted need needs needed way lot lots much many thing things
    something anything everything day days today yesterday now since update updated updates
    version phone ok okay yes yeah yep lol hey hi hello guys devs dev developers team star
    stars i'm it's don't can't doesn't won't isn't didn't i've im its dont cant doesnt wont
    isnt didnt ive u ur gonna wanna bit pretty super love loved loving loves hate hated
    great best worst good better bad awesome amazing terrible horrible awful nice cool
    perfect excellent fantastic wonderful useless annoying fine favorite favourite recommend
    recommended stupid garbage trash ridiculous disappointed disappointing frustrating
    frustrated happy sad wow omg ugh seriously honestly literally definitely totally
    absolutely basically actually anyway whatever kinda sorta maybe tried trying try keeps
    keep kept says said tell told know think thought feel felt look looks looking work works
    worked working issue issues problem problems fix fixed fixing add added adding thing
    does did doing done goes going went gone say saying anymore ago ever able lately
    recently stuff guess sure come comes came let lets bring brought
    you're you've that's there's what's i'd i'll let's he's she's they're we're
"""
_TOPIC_STOP_WORDS: frozenset[str] = frozenset(ENGLISH_STOP_WORDS) | frozenset(
    _EXTRA_STOP_WORDS.split()
)


def default_topic(category: str) -> str:
    """The topic of a review in `category` that has no content words."""
    return DEFAULT_TOPICS.get(category, category)


def extract_topic(text: str, idf: Mapping[str, float], default_idf: float, fallback: str) -> str:
    """1-3 salient words of `text`, in reading order, title-cased; `fallback` if none.

    Salience is term frequency x idf (words the model never saw count as `default_idf`);
    stop words, sentiment words and words under 3 letters are skipped.
    """
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for match in _WORD_RE.finditer(text):
        word = match.group().lower().replace("’", "'").strip("'-")
        if len(word) < 3 or len(word) > _TOPIC_TOKEN_MAX_CHARS or word in _TOPIC_STOP_WORDS:
            continue
        counts[word] += 1
        first_seen.setdefault(word, match.start())
    if not counts:
        return _clip_topic(fallback)
    scored = sorted(
        counts,
        key=lambda w: (-(1.0 + math.log(counts[w])) * idf.get(w, default_idf), first_seen[w]),
    )
    n_words = 1 if len(counts) == 1 else 2 if len(counts) < 12 else TOPIC_MAX_WORDS
    chosen = sorted(scored[:n_words], key=first_seen.__getitem__)
    return _clip_topic(" ".join(w[:1].upper() + w[1:] for w in chosen))


def _clip_topic(topic: str) -> str:
    words = topic.split()
    while len(words) > 1 and len(" ".join(words)) > TOPIC_MAX_CHARS:
        words.pop()
    out = " ".join(words)[:TOPIC_MAX_CHARS].strip()
    return out or "General Feedback"


def extract_summary(text: str) -> str:
    """The first sentence of `text` that has 3+ words (else its first sentence with a word),
    whitespace-collapsed, capitalised, cut to ~200 chars at a word boundary, ending with '.'.
    A text with no word characters gets a fixed sentence saying so."""
    sentences = [s for s in _SENTENCE_SPLIT_RE.split(text) if _HAS_WORD_RE.search(s)]
    if not sentences:
        return _NO_WORDS_SUMMARY
    chosen = next((s for s in sentences if len(s.split()) >= 3), sentences[0])
    chosen = " ".join(chosen.split())
    if len(chosen) > SUMMARY_TARGET_CHARS:
        cut = chosen[:SUMMARY_TARGET_CHARS]
        space = cut.rfind(" ")
        chosen = cut[:space] if space >= SUMMARY_TARGET_CHARS // 2 else cut
    chosen = _TRAILING_RE.sub("", chosen)
    if not chosen:  # only possible if the word characters were all cut away above
        return _NO_WORDS_SUMMARY
    return chosen[:1].upper() + chosen[1 : SUMMARY_TARGET_CHARS - 1] + "."
