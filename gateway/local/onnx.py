"""Runtime of the `encoder-onnx` local model format: a fine-tuned sentence encoder in ONNX.

An `encoder-onnx` model directory (the `encoder` member of the ensemble that
`triage-gateway train-local --approach minilm` writes) holds:

* `model_card.json`: `{"format": "encoder-onnx", "name", "categories", "urgencies",
  "category_temperature", "urgency_temperature", "max_tokens", "model_file", "tokenizer_file",
  "idf_file", "default_urgency"?, ...}`;
* `model.onnx`: inputs `input_ids`, `attention_mask` (int64, batch x tokens); outputs
  `category_logits` (batch x categories) and `urgency_logits` (batch x urgencies), usually
  int8-quantised;
* `tokenizer.json`: the encoder's `tokenizers` tokenizer;
* `idf.json`: `{"idf": {word: idf}, "default_idf": float}` for the extractive topic.

Confidence is the temperature-scaled softmax probability of the predicted category (the
temperature was fitted on held-out data at training time). Topic and summary are extractive
(`gateway.local.extractive`), as in `tfidf-linear`. A card may say
`"default_urgency": {category: urgency}` instead of training an urgency head (then `urgencies`
is empty).

Needs `onnxruntime` and `tokenizers` (the `local-strong` extra); nothing else beyond numpy.
Inference runs on one intra-op thread per call (`TRIAGE_LOCAL_THREADS` overrides), so several
requests in a worker do not fight over cores.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gateway.local.loader import (
    LocalModel,
    LocalModelError,
    LocalPrediction,
    card_file,
    read_model_card,
    register_format,
    scored_prediction,
)

__all__ = ["FORMAT", "EncoderOnnxModel", "encode_batch", "load_encoder_onnx", "softmax"]

FORMAT = "encoder-onnx"
FORMAT_VERSION = 1


def softmax(z: np.ndarray[Any, Any], temperature: float = 1.0) -> np.ndarray[Any, Any]:
    z = np.asarray(z, dtype=np.float64) / max(temperature, 1e-6)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray[Any, Any] = e / e.sum(axis=-1, keepdims=True)
    return out


def encode_batch(
    tokenizer: Any, texts: Sequence[str]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(input_ids, attention_mask) of `texts` for the encoder, int64, right-padded with 0 to
    the longest; a blank text is read as ".". `training.local` batches with this too, so the
    model is trained, traced and served on the same inputs."""
    encs = tokenizer.encode_batch([t if t.strip() else "." for t in texts])
    width = max(len(e.ids) for e in encs)
    ids = np.zeros((len(encs), width), dtype=np.int64)
    mask = np.zeros((len(encs), width), dtype=np.int64)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    return ids, mask


class EncoderOnnxModel:
    """A loaded `encoder-onnx` model. Thread-safe (onnxruntime sessions and tokenizers are)."""

    def __init__(self, path: Path, card: Mapping[str, Any]) -> None:
        try:
            ort: Any = importlib.import_module("onnxruntime")
            tokenizer_cls: Any = importlib.import_module("tokenizers").Tokenizer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise LocalModelError(
                f"{path}: format {FORMAT!r} needs onnxruntime and tokenizers "
                "(pip install 'triage-gateway[local-strong]')"
            ) from exc
        self._name = str(card.get("name") or path.name)
        self.categories: tuple[str, ...] = tuple(str(c) for c in card["categories"])
        self.urgencies: tuple[str, ...] = tuple(str(u) for u in card.get("urgencies") or ())
        self._t_cat = float(card.get("category_temperature") or 1.0)
        self._t_urg = float(card.get("urgency_temperature") or 1.0)
        default_urg = card.get("default_urgency") or {}
        self._default_urgency: dict[str, str] = {str(k): str(v) for k, v in default_urg.items()}
        if not self.categories:
            raise LocalModelError(f"{path}: the card lists no categories")
        if not self.urgencies and not self._default_urgency:
            raise LocalModelError(f"{path}: the card needs `urgencies` or `default_urgency`")
        max_tokens = int(card.get("max_tokens") or 128)

        self._tokenizer: Any = tokenizer_cls.from_file(
            str(card_file(path, card, "tokenizer_file", "tokenizer.json"))
        )
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.no_padding()

        options = ort.SessionOptions()
        threads = int(os.environ.get("TRIAGE_LOCAL_THREADS", "1") or 1)
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        model_file = card_file(path, card, "model_file", "model.onnx")
        self._session: Any = ort.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )
        outputs = {o.name: o for o in self._session.get_outputs()}
        if "category_logits" not in outputs:
            raise LocalModelError(f"{model_file}: no `category_logits` output")
        self._outputs = ["category_logits"] + (["urgency_logits"] if self.urgencies else [])

        idf_doc = json.loads(card_file(path, card, "idf_file", "idf.json").read_text())
        self._idf: dict[str, float] = {str(k): float(v) for k, v in idf_doc["idf"].items()}
        self._default_idf = float(idf_doc.get("default_idf") or 1.0)

    @property
    def name(self) -> str:
        return self._name

    def logits(self, texts: Sequence[str]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Raw (category, urgency) logits for a batch (urgency empty without a head)."""
        ids, mask = encode_batch(self._tokenizer, texts)
        out = self._session.run(self._outputs, {"input_ids": ids, "attention_mask": mask})
        urg = out[1] if len(out) > 1 else np.zeros((len(ids), 0))
        return np.asarray(out[0]), np.asarray(urg)

    @property
    def topic_idf(self) -> tuple[dict[str, float], float]:
        return self._idf, self._default_idf

    def probabilities(self, text: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """(category, urgency) calibrated probabilities; urgency empty without a head."""
        lc, lu = self.logits([text])
        p_urg = softmax(lu[0], self._t_urg) if self.urgencies else np.zeros(0)
        return softmax(lc[0], self._t_cat), p_urg

    def predict(
        self, text: str, app: str | None = None, rating: int | None = None
    ) -> LocalPrediction:
        """Classify one review; `app` and `rating` are unused (the model is text-only)."""
        del app, rating
        p_cat, p_urg = self.probabilities(text)
        category = self.categories[int(p_cat.argmax())]
        if self.urgencies:
            urgency = self.urgencies[int(p_urg.argmax())]
        else:
            urgency = self._default_urgency.get(category, "Low")
        return scored_prediction(text, category, urgency, self.categories, p_cat, self.topic_idf)


@register_format(FORMAT)
def load_encoder_onnx(path: Path) -> LocalModel:
    """Load an `encoder-onnx` model directory (see the module docstring)."""
    path = Path(path)
    card = read_model_card(path, FORMAT)
    try:
        return EncoderOnnxModel(path, card)
    except LocalModelError:
        raise
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise LocalModelError(f"{path}: not a usable {FORMAT} model: {exc}") from exc
    except Exception as exc:  # onnxruntime raises its own exception types
        raise LocalModelError(f"{path}: not a usable {FORMAT} model: {exc}") from exc
