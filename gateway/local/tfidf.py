"""Runtime of the `tfidf-linear` local model format, and the small trainer that builds it.

A `tfidf-linear` model directory holds:

* `model_card.json`: `{"format": "tfidf-linear", "name", "created_at", "n_train",
  "label_counts", "versions", "model_file", ...}`;
* `model.joblib`: a dict `{"format_version": 1, "category": Pipeline, "urgency": Pipeline}`.
  Both scikit-learn pipelines are `[("features", FeatureUnion), ("clf", LogisticRegression)]`
  and share one fitted `FeatureUnion` (TF-IDF word 1-2 grams + TF-IDF char_wb 2-5 grams), so a
  review is vectorised once per prediction.

Category and urgency come from the two classifiers; confidence is the probability of the
predicted category. Topic and summary are extractive: the topic is the 1-3 most salient content
words of the review (by idf, in reading order, title-cased) and the summary is the review's
first sentence, trimmed, ending with a period. The baseline model is trained from the seed
reviews shipped in `gateway/data/seed_reviews.jsonl` by `ensure_baseline_model`, so the gateway
classifies with no API key and no network.

scikit-learn is imported here only: this module is imported when a local variant is configured.
The joblib file is a pickle: load model directories you (or this gateway) wrote, nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy
import sklearn
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from gateway.local.loader import (
    LocalModel,
    LocalModelError,
    LocalPrediction,
    read_model_card,
    register_format,
)
from gateway.request.triage import TOPIC_MAX_CHARS, Triage

__all__ = [
    "BASELINE_NAME",
    "FORMAT",
    "MODEL_FILE",
    "TfidfLinearModel",
    "ensure_baseline_model",
    "extract_summary",
    "extract_topic",
    "library_versions",
    "load_seed_records",
    "load_tfidf",
    "seed_sha256",
    "sha256_file",
    "swap_dir",
    "tfidf_features",
    "train_tfidf_model",
]

log = logging.getLogger(__name__)

FORMAT = "tfidf-linear"
FORMAT_VERSION = 1
MODEL_FILE = "model.joblib"
BASELINE_NAME = "baseline"
SEED_PACKAGE = "gateway"
SEED_RESOURCE = ("data", "seed_reviews.jsonl")

SUMMARY_TARGET_CHARS = 200
TOPIC_MAX_WORDS = 3
_TOPIC_TOKEN_MAX_CHARS = 20
_NO_WORDS_SUMMARY = "Review has no words, only symbols or emoji."

# Fallback topics when a review has no content words ("love it!!", emoji only, ...).
_DEFAULT_TOPICS: dict[str, str] = {
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


# --------------------------------------------------------------------------------------------
# Extractive topic and summary
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Runtime
# --------------------------------------------------------------------------------------------


class _Head:
    """Dense weights of one fitted LogisticRegression, applied without sklearn's overhead."""

    __slots__ = ("binary", "classes", "intercept", "weights")

    def __init__(self, clf: Any, slices: Sequence[slice]) -> None:
        coef = np.asarray(clf.coef_, dtype=np.float64)
        self.classes: tuple[str, ...] = tuple(str(c) for c in clf.classes_)
        self.binary = coef.shape[0] == 1 and len(self.classes) == 2
        self.intercept = np.asarray(clf.intercept_, dtype=np.float64)
        # one (n_features_block, n_outputs) block per vectoriser of the FeatureUnion
        self.weights = [np.ascontiguousarray(coef[:, s].T) for s in slices]

    def proba(self, blocks: Sequence[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
        scores = self.intercept.copy()
        for x, w in zip(blocks, self.weights, strict=True):
            if x.nnz:
                scores += np.asarray(x @ w).ravel()
        if self.binary:
            p1 = 1.0 / (1.0 + math.exp(-float(scores[0])))
            return np.array([1.0 - p1, p1])
        scores -= scores.max()
        exp = np.exp(scores)
        out: np.ndarray[Any, np.dtype[np.float64]] = exp / exp.sum()
        return out


class TfidfLinearModel:
    """A loaded `tfidf-linear` model. Thread-safe: `predict` only reads fitted state."""

    def __init__(self, name: str, bundle: Mapping[str, Any]) -> None:
        self._name = name
        self.category_pipeline: Any = bundle["category"]
        self.urgency_pipeline: Any = bundle["urgency"]
        features = self.category_pipeline.named_steps["features"]
        if self.urgency_pipeline.named_steps["features"] is not features:
            raise LocalModelError("category and urgency pipelines must share their features")
        self._vectorizers: list[Any] = [t for _, t in features.transformer_list]
        if getattr(features, "transformer_weights", None):
            raise LocalModelError("transformer_weights are not supported")
        widths = [len(v.vocabulary_) for v in self._vectorizers]
        bounds = np.cumsum([0, *widths])
        slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        self._category = _Head(self.category_pipeline.named_steps["clf"], slices)
        self._urgency = _Head(self.urgency_pipeline.named_steps["clf"], slices)
        for head in (self._category, self._urgency):
            if sum(w.shape[0] for w in head.weights) != int(bounds[-1]):
                raise LocalModelError("classifier width does not match the feature union")
        word = dict(features.transformer_list)["word"]
        idf = np.asarray(word.idf_, dtype=np.float64)
        self._idf: dict[str, float] = {
            term: float(idf[i]) for term, i in word.vocabulary_.items() if " " not in term
        }
        self._default_idf = float(idf.max()) if idf.size else 1.0

    @property
    def name(self) -> str:
        return self._name

    @property
    def categories(self) -> tuple[str, ...]:
        return self._category.classes

    @property
    def urgencies(self) -> tuple[str, ...]:
        return self._urgency.classes

    def predict(
        self, text: str, app: str | None = None, rating: int | None = None
    ) -> LocalPrediction:
        """Classify one review. `app` and `rating` are accepted for the interface and unused
        (the model is text-only)."""
        del app, rating
        blocks = [v.transform([text]) for v in self._vectorizers]
        p_cat = self._category.proba(blocks)
        p_urg = self._urgency.proba(blocks)
        i_cat = int(p_cat.argmax())
        category = self._category.classes[i_cat]
        urgency = self._urgency.classes[int(p_urg.argmax())]
        topic = extract_topic(
            text,
            self._idf,
            self._default_idf,
            _DEFAULT_TOPICS.get(category, category),
        )
        triage = Triage(
            category=category,
            urgency=urgency,
            topic=topic,
            summary=extract_summary(text),
        )
        confidence = min(1.0, max(0.0, float(p_cat[i_cat])))
        return LocalPrediction(triage=triage, confidence=confidence)


@register_format(FORMAT)
def load_tfidf(path: Path) -> LocalModel:
    """Load a `tfidf-linear` model directory (see the module docstring)."""
    path = Path(path)
    card = read_model_card(path)
    if card.get("format") != FORMAT:
        raise LocalModelError(f"{path}: format {card.get('format')!r} is not {FORMAT!r}")
    model_path = path / str(card.get("model_file") or MODEL_FILE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        try:
            bundle = joblib.load(model_path)
        except FileNotFoundError as exc:
            raise LocalModelError(f"{model_path} not found") from exc
        except Exception as exc:  # unpickling can raise nearly anything
            raise LocalModelError(f"{model_path} unreadable: {exc}") from exc
    for w in caught:
        if issubclass(w.category, InconsistentVersionWarning):
            log.warning("%s was saved by another scikit-learn version: %s", model_path, w.message)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not isinstance(bundle, dict) or not {"category", "urgency"} <= bundle.keys():
        raise LocalModelError(f"{model_path}: expected a dict with 'category' and 'urgency'")
    try:
        return TfidfLinearModel(str(card.get("name") or path.name), bundle)
    except LocalModelError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise LocalModelError(f"{model_path}: not a tfidf-linear bundle: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def tfidf_features() -> FeatureUnion:
    """The (unfitted) feature union of the `tfidf-linear` format: TF-IDF word 1-2 grams and
    char_wb 2-5 grams. Both trainers (this module's baseline, `training.local`) build it here."""
    return FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    lowercase=True,
                    strip_accents="unicode",
                    sublinear_tf=True,
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(2, 5),
                    lowercase=True,
                    strip_accents="unicode",
                    sublinear_tf=True,
                    min_df=2,
                ),
            ),
        ]
    )


def _classifier() -> LogisticRegression:
    return LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced")


def library_versions() -> dict[str, str]:
    """Versions of what a `tfidf-linear` model file depends on (recorded in model cards)."""
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }


def train_tfidf_model(
    records: Sequence[Mapping[str, object]],
    out_dir: Path,
    *,
    name: str = BASELINE_NAME,
    card_extra: Mapping[str, object] | None = None,
) -> Path:
    """Fit category and urgency classifiers on `records` (each with "text", "category",
    "urgency"; other keys ignored) and write a `tfidf-linear` model directory at `out_dir`
    (created if missing; existing files of the same names are overwritten, the card last).
    `card_extra` keys are added to the model card. Returns `out_dir`."""
    texts: list[str] = []
    categories: list[str] = []
    urgencies: list[str] = []
    for i, rec in enumerate(records):
        text, cat, urg = rec.get("text"), rec.get("category"), rec.get("urgency")
        if not (isinstance(text, str) and text.strip()):
            raise ValueError(f"record {i}: 'text' must be a non-empty string")
        if not (isinstance(cat, str) and cat and isinstance(urg, str) and urg):
            raise ValueError(f"record {i}: 'category' and 'urgency' must be non-empty strings")
        texts.append(text)
        categories.append(cat)
        urgencies.append(urg)
    for field, labels in (("category", categories), ("urgency", urgencies)):
        if len(set(labels)) < 2:
            raise ValueError(f"need at least two distinct {field} labels to train")

    features = tfidf_features()
    x = features.fit_transform(texts)
    cat_clf = _classifier().fit(x, categories)
    urg_clf = _classifier().fit(x, urgencies)
    bundle = {
        "format_version": FORMAT_VERSION,
        "category": Pipeline([("features", features), ("clf", cat_clf)]),
        "urgency": Pipeline([("features", features), ("clf", urg_clf)]),
    }

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / MODEL_FILE
    joblib.dump(bundle, model_path, compress=3)
    card: dict[str, object] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_train": len(texts),
        "label_counts": {
            "category": dict(sorted(Counter(categories).items())),
            "urgency": dict(sorted(Counter(urgencies).items())),
        },
        "categories": [str(c) for c in cat_clf.classes_],
        "urgencies": [str(c) for c in urg_clf.classes_],
        "features": {
            "word_tfidf_ngrams": [1, 2],
            "char_wb_tfidf_ngrams": [2, 5],
            "n_features": int(x.shape[1]),
        },
        "classifier": "LogisticRegression(C=10, class_weight=balanced)",
        "topic": "extractive: top content words by idf",
        "summary": "extractive: first sentence",
        "model_file": MODEL_FILE,
        "model_sha256": sha256_file(model_path),
        "versions": library_versions(),
    }
    if card_extra:
        card.update(card_extra)
    _write_text_atomic(out_dir / "model_card.json", json.dumps(card, indent=2) + "\n")
    return out_dir


# --------------------------------------------------------------------------------------------
# The baseline model, built from the shipped seed reviews on first start
# --------------------------------------------------------------------------------------------


def _seed_bytes() -> bytes:
    return resources.files(SEED_PACKAGE).joinpath(*SEED_RESOURCE).read_bytes()


def seed_sha256() -> str:
    """sha256 of the shipped seed file (recorded in the baseline's card)."""
    return hashlib.sha256(_seed_bytes()).hexdigest()


def load_seed_records() -> list[dict[str, Any]]:
    """The shipped seed reviews: dicts with text, category, urgency, topic, summary, app,
    rating."""
    return _parse_jsonl(_seed_bytes())


def _parse_jsonl(data: bytes) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if not isinstance(rec, dict):
            raise ValueError(f"seed line {n}: expected a JSON object")
        out.append(rec)
    return out


def _baseline_is_current(path: Path, sha: str) -> bool:
    try:
        card = json.loads((path / "model_card.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(card, dict)
        and card.get("format") == FORMAT
        and card.get("format_version") == FORMAT_VERSION
        and card.get("seed_sha256") == sha
        and isinstance(card.get("versions"), dict)
        and card["versions"].get("scikit-learn") == sklearn.__version__
        and (path / str(card.get("model_file") or MODEL_FILE)).is_file()
    )


def ensure_baseline_model(data_dir: Path) -> Path:
    """Return `data_dir/models/baseline`, (re)training it from the shipped seed reviews when
    it is missing, its card's seed sha256 differs from the shipped file's, or it was written by
    another scikit-learn version. Safe with several processes starting at once: training runs
    under a file lock into a temporary directory that is renamed into place."""
    models = Path(data_dir) / "models"
    target = models / BASELINE_NAME
    seed = _seed_bytes()
    sha = hashlib.sha256(seed).hexdigest()
    if _baseline_is_current(target, sha):
        return target
    models.mkdir(parents=True, exist_ok=True)
    with _file_lock(models / f".{BASELINE_NAME}.lock"):
        if _baseline_is_current(target, sha):  # built by another process while we waited
            return target
        # Under the lock nobody else is training: temporary dirs left here are from a crash.
        for stale in models.glob(f".{BASELINE_NAME}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in models.glob(f".{BASELINE_NAME}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)
        log.info("training the baseline local model into %s", target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{BASELINE_NAME}.tmp-", dir=models))
        try:
            train_tfidf_model(
                _parse_jsonl(seed),
                tmp,
                name=BASELINE_NAME,
                card_extra={
                    "seed_sha256": sha,
                    "source": "/".join((SEED_PACKAGE, *SEED_RESOURCE)),
                },
            )
            tmp.chmod(0o755)
            swap_dir(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not _baseline_is_current(target, sha):
        raise LocalModelError(f"{target}: baseline model could not be built")
    return target


def swap_dir(new: Path, target: Path) -> None:
    """Move directory `new` to `target`, replacing an existing `target`."""
    old: Path | None = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
        os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError:
        if not target.exists() and old is not None:
            os.rename(old, target)  # put the previous model back
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (POSIX); a no-op where fcntl is unavailable."""
    if sys.platform == "win32":
        yield
        return
    import fcntl

    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes (hex), read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
