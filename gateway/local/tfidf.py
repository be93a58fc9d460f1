"""Runtime of the `tfidf-linear` local model format: load a model directory and predict, with
numpy only (no scikit-learn, no pickle).

A `tfidf-linear` model directory (format version 2, written by `training.local.train_tfidf`:
`triage-gateway train-local --approach tfidf`, or the baseline `triage-gateway serve` builds)
holds:

* `model_card.json`: `{"format": "tfidf-linear", "format_version": 2, "name", "created_at",
  "n_train", "label_counts", "versions", "vocabulary_file", "weights_file", ...}`;
* `vocabulary.json`: `{"vectorizers": [{"name", "analyzer": "word" | "char_wb",
  "ngram_range": [lo, hi], "lowercase", "strip_accents": "unicode" | null, "sublinear_tf",
  "norm": "l2" | null, "token_pattern", "terms": [...] (in column order)}, ...],
  "heads": {"category": {"classes": [...], "binary": bool}, "urgency": {...}}}`;
* `weights.npz`: `idf_<i>` (one float64 array per vectoriser), and per head `<head>_coef`
  (n_features x n_outputs, the vectorisers' columns side by side) and `<head>_intercept`.

The transform reimplements what scikit-learn's `TfidfVectorizer` does for these settings
(lower-case, then strip accents by NFKD, then the `word` token pattern or `char_wb` n-grams;
raw counts, 1 + log for sublinear tf, times idf, l2-normalised per vectoriser), so a model
answers exactly as the scikit-learn pipeline it was exported from (tests/test_local_model.py
compares them). The heads are logistic regressions: softmax over the scores (sigmoid for a
binary head).

Category and urgency come from the two heads, then the documented severity rules of
`gateway.local.signals` apply; confidence is the probability of the returned category. Topic
and summary are extractive (`gateway.local.extractive`), with the word vectoriser's idf.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gateway.local.loader import (
    ArgmaxPredictor,
    LocalModel,
    LocalModelError,
    card_file,
    load_npz,
    read_model_card,
    register_format,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "VOCABULARY_FILE",
    "WEIGHTS_FILE",
    "TfidfLinearModel",
    "Vectorizer",
    "load_tfidf",
]

FORMAT = "tfidf-linear"
FORMAT_VERSION = 2
VOCABULARY_FILE = "vocabulary.json"
WEIGHTS_FILE = "weights.npz"
DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
HEADS = ("category", "urgency")

_WHITE_SPACES = re.compile(r"\s\s+")
CACHED_WORDS = 16_384
"""Words whose `char_wb` columns a vectoriser keeps (see `_CharWbCounter`)."""
CACHED_WORD_CHARS = 32
"""Longer words are not kept."""
Floats = npt.NDArray[np.float64]


def strip_accents_unicode(s: str) -> str:
    """As scikit-learn's: NFKD, then drop combining characters (ASCII text unchanged)."""
    if s.isascii():
        return s
    normalized = unicodedata.normalize("NFKD", s)
    return "".join([c for c in normalized if not unicodedata.combining(c)])


class Vectorizer:
    """One TF-IDF vectoriser of the feature union: text -> (column indices, values)."""

    __slots__ = (
        "_count",
        "_lowercase",
        "_norm",
        "_strip",
        "_sublinear",
        "idf",
        "offset",
        "vocabulary",
    )

    def __init__(self, spec: Mapping[str, Any], idf: Floats, offset: int) -> None:
        analyzer = spec.get("analyzer")
        lo, hi = (int(n) for n in spec.get("ngram_range", (1, 1)))
        if not 1 <= lo <= hi:
            raise LocalModelError(f"bad ngram_range {spec.get('ngram_range')!r}")
        if analyzer not in ("word", "char_wb"):
            raise LocalModelError(f"analyzer {analyzer!r} is not supported (word, char_wb)")
        strip = spec.get("strip_accents")
        if strip not in (None, "unicode"):
            raise LocalModelError(f"strip_accents {strip!r} is not supported (unicode, null)")
        norm = spec.get("norm", "l2")
        if norm not in (None, "l2"):
            raise LocalModelError(f"norm {norm!r} is not supported (l2, null)")
        terms = spec.get("terms")
        if not isinstance(terms, list) or len(terms) != idf.shape[0]:
            raise LocalModelError("vocabulary terms do not match the idf length")
        self._lowercase = bool(spec.get("lowercase", True))
        self._strip = strip == "unicode"
        self._sublinear = bool(spec.get("sublinear_tf", False))
        self._norm = norm == "l2"
        self.idf = idf
        self.offset = offset
        self.vocabulary: dict[str, int] = {str(t): offset + i for i, t in enumerate(terms)}
        if analyzer == "word":
            pattern = re.compile(str(spec.get("token_pattern") or DEFAULT_TOKEN_PATTERN))
            self._count: Callable[[str], Counter[int]] = _word_counter(
                pattern.findall, lo, hi, self.vocabulary
            )
        else:
            self._count = _CharWbCounter(lo, hi, self.vocabulary)

    def preprocess(self, text: str) -> str:
        if self._lowercase:
            text = text.lower()
        if self._strip:
            text = strip_accents_unicode(text)
        return text

    def transform(self, text: str) -> tuple[npt.NDArray[np.intp], Floats]:
        """(global column indices, tf-idf values) of the terms of `text` in the vocabulary."""
        counts = self._count(self.preprocess(text))
        n = len(counts)
        cols = np.fromiter(counts, dtype=np.intp, count=n)
        values = np.fromiter(counts.values(), dtype=np.float64, count=n)
        if not n:
            return cols, values
        if self._sublinear:
            values = np.log(values) + 1.0
        values *= self.idf[cols - self.offset]
        if self._norm:
            norm = math.sqrt(float(values @ values))
            if norm > 0.0:
                values /= norm
        return cols, values


def _word_counter(
    tokenize: Callable[[str], list[str]], lo: int, hi: int, vocab: Mapping[str, int]
) -> Callable[[str], Counter[int]]:
    """doc -> {column: count} of its word n-grams in `vocab`, in order of first appearance."""
    get = vocab.get

    def count(doc: str) -> Counter[int]:
        tokens = tokenize(doc)
        terms = list(tokens) if lo == 1 else []
        n_tok = len(tokens)
        for n in range(max(lo, 2), min(hi + 1, n_tok + 1)):
            terms += [" ".join(tokens[i : i + n]) for i in range(n_tok - n + 1)]
        return Counter([c for c in map(get, terms) if c is not None])

    return count


class _CharWbCounter:
    """doc -> {column: count} of its `char_wb` n-grams in `vocab`, in order of first appearance.

    `char_wb` n-grams never cross a word boundary, so each word's columns are computed once and
    kept: review words repeat (Zipf), and a word's columns cost ~40 dict lookups. `words` is
    bounded in entries and in word length, and emptied when full; a dict is safe to share
    between threads under the GIL."""

    __slots__ = ("get", "hi", "lo", "words")

    def __init__(self, lo: int, hi: int, vocab: Mapping[str, int]) -> None:
        self.lo, self.hi, self.get = lo, hi, vocab.get
        self.words: dict[str, tuple[int, ...]] = {}

    def columns(self, word: str) -> tuple[int, ...]:
        w = f" {word} "
        w_len = len(w)
        grams: list[str] = []
        for n in range(self.lo, self.hi + 1):
            if w_len <= n:  # a short word counts once, whole
                grams.append(w)
                break
            grams += [w[i : i + n] for i in range(w_len - n + 1)]
        return tuple([c for c in map(self.get, grams) if c is not None])

    def __call__(self, doc: str) -> Counter[int]:
        words = self.words
        cols: list[int] = []
        for word in _WHITE_SPACES.sub(" ", doc).split():
            hit = words.get(word)
            if hit is None:
                hit = self.columns(word)
                if len(word) <= CACHED_WORD_CHARS:
                    if len(words) >= CACHED_WORDS:
                        words.clear()
                    words[word] = hit
            cols += hit
        return Counter(cols)


class _Head:
    __slots__ = ("binary", "classes", "cols")

    def __init__(self, classes: Sequence[str], binary: bool, cols: slice) -> None:
        self.classes = tuple(str(c) for c in classes)
        self.binary = binary
        self.cols = cols

    def proba(self, scores: Floats) -> Floats:
        s = scores[self.cols]
        if self.binary:
            p1 = 1.0 / (1.0 + math.exp(-float(s[0])))
            return np.array([1.0 - p1, p1])
        s = s - s.max()
        e = np.exp(s)
        out: Floats = e / e.sum()
        return out


class TfidfLinearModel(ArgmaxPredictor):
    """A loaded `tfidf-linear` model. Thread-safe: `predict` only reads loaded arrays."""

    inline = True
    """Cheap enough to predict a short review on the event loop (`VariantPool`)."""

    def __init__(
        self, name: str, vocabulary: Mapping[str, Any], weights: Mapping[str, Floats]
    ) -> None:
        self._name = name
        specs = vocabulary.get("vectorizers")
        if not isinstance(specs, list) or not specs:
            raise LocalModelError("vocabulary.json: 'vectorizers' must be a non-empty list")
        self._vectorizers: list[Vectorizer] = []
        offset = 0
        word: Vectorizer | None = None
        for i, spec in enumerate(specs):
            idf = np.asarray(weights[f"idf_{i}"], dtype=np.float64)
            vec = Vectorizer(spec, idf, offset)
            offset += idf.shape[0]
            self._vectorizers.append(vec)
            if spec.get("analyzer") == "word" and word is None:
                word = vec
        heads = vocabulary.get("heads")
        if not isinstance(heads, dict) or set(HEADS) - set(heads):
            raise LocalModelError("vocabulary.json: 'heads' must describe category and urgency")
        coefs: list[Floats] = []
        intercepts: list[Floats] = []
        made: dict[str, _Head] = {}
        start = 0
        for head in HEADS:
            coef = np.asarray(weights[f"{head}_coef"], dtype=np.float64)
            intercept = np.asarray(weights[f"{head}_intercept"], dtype=np.float64).ravel()
            if coef.ndim != 2 or coef.shape[0] != offset or coef.shape[1] != intercept.shape[0]:
                raise LocalModelError(f"{head} weights do not match the {offset} features")
            classes = heads[head].get("classes") or []
            binary = bool(heads[head].get("binary", False))
            if len(classes) != (2 if binary else coef.shape[1]) or (binary and coef.shape[1] != 1):
                raise LocalModelError(f"{head}: classes do not match the weights")
            made[head] = _Head(classes, binary, slice(start, start + coef.shape[1]))
            start += coef.shape[1]
            coefs.append(coef)
            intercepts.append(intercept)
        # both heads side by side: one gather and one product per review
        self._coef: Floats = np.ascontiguousarray(np.hstack(coefs))
        self._intercept: Floats = np.concatenate(intercepts)
        self._category = made["category"]
        self._urgency = made["urgency"]
        self._idf: dict[str, float] = {}
        self._default_idf = 1.0
        if word is not None:
            w_idf, base = word.idf, word.offset
            self._idf = {
                t: float(w_idf[c - base]) for t, c in word.vocabulary.items() if " " not in t
            }
            self._default_idf = float(w_idf.max()) if w_idf.size else 1.0

    @property
    def name(self) -> str:
        return self._name

    @property
    def categories(self) -> tuple[str, ...]:
        return self._category.classes

    @property
    def urgencies(self) -> tuple[str, ...]:
        return self._urgency.classes

    @property
    def topic_idf(self) -> tuple[dict[str, float], float]:
        return self._idf, self._default_idf

    def probabilities(self, text: str) -> tuple[Floats, Floats]:
        """(category probabilities, urgency probabilities) of the two learned heads, in the
        order of `categories` and `urgencies`, before the severity rules."""
        cols: list[npt.NDArray[np.intp]] = []
        parts: list[Floats] = []
        for vec in self._vectorizers:
            c, v = vec.transform(text)
            cols.append(c)
            parts.append(v)
        scores = self._intercept.copy()
        index = np.concatenate(cols)
        if index.size:
            scores += np.concatenate(parts) @ self._coef[index]
        return self._category.proba(scores), self._urgency.proba(scores)


@register_format(FORMAT)
def load_tfidf(path: Path) -> LocalModel:
    """Load a `tfidf-linear` model directory (see the module docstring)."""
    path = Path(path)
    card = read_model_card(path, FORMAT)
    version = card.get("format_version")
    if version != FORMAT_VERSION:
        raise LocalModelError(
            f"{path}: tfidf-linear format_version {version!r} is not {FORMAT_VERSION} "
            "(older versions were scikit-learn pickles): retrain it with "
            "`triage-gateway train-local`"
        )
    vocab_path = card_file(path, card, "vocabulary_file", VOCABULARY_FILE)
    weights_path = card_file(path, card, "weights_file", WEIGHTS_FILE)
    try:
        vocabulary = json.loads(vocab_path.read_text(encoding="utf-8"))
        weights = load_npz(weights_path)
    except FileNotFoundError as exc:
        raise LocalModelError(f"{exc.filename} not found") from exc
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise LocalModelError(f"{path}: model files unreadable: {exc}") from exc
    if not isinstance(vocabulary, dict):
        raise LocalModelError(f"{vocab_path} must hold a JSON object")
    try:
        return TfidfLinearModel(str(card.get("name") or path.name), vocabulary, weights)
    except LocalModelError as exc:
        raise LocalModelError(f"{path}: {exc}") from exc
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise LocalModelError(f"{path}: not a tfidf-linear model: {exc!r}") from exc
