"""The `minilm` approach of `train-local`: the packaged MiniLM encoder fine-tuned (here one
layer, one epoch, short inputs, so that it takes seconds), exported to ONNX, and pooled with a
`tfidf` model whose weight is picked on the rows the encoder never saw. The encoder is the real
packaged one (`local-strong` extra)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.local.ensemble import EnsembleModel, pool
from gateway.local.extractive import detect_language
from gateway.local.loader import load_local_model
from tests.test_local_model import assert_valid
from training.data import text_key
from training.local import POOL_WEIGHT_GRID, _strong_available, pool_weight, train_local_examples
from training.seed import load_seed_records, records_to_examples, template_split

pytestmark = [
    pytest.mark.skipif(not _strong_available(), reason="needs the local-strong extra"),
    pytest.mark.timeout(600),
]

TINY = {"epochs": 1.0, "n_layers": 1, "max_tokens": 48, "batch_size": 32}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The approach trained on the seed rows of some sentence templates only."""
    train_rows, _ = template_split(load_seed_records())
    out = tmp_path_factory.mktemp("minilm") / "model"
    card = train_local_examples(
        records_to_examples(train_rows),
        None,
        out,
        approach="minilm",
        name="minilm-test",
        minilm_options=TINY,
    )
    return out, card


def test_minilm_is_the_encoder_pooled_with_tfidf(trained: tuple[Path, dict[str, Any]]) -> None:
    path, card = trained
    assert card["format"] == "ensemble" and card["approach"] == "minilm"
    assert json.loads((path / "model_card.json").read_text())["approach"] == "minilm"
    weights = {m["path"]: m["weight"] for m in card["members"]}
    assert set(weights) == {"tfidf", "encoder"}
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["tfidf"] in POOL_WEIGHT_GRID
    assert card["pool_weight_selection"]["held_out_log_loss"] > 0
    encoder_card = json.loads((path / "encoder" / "model_card.json").read_text())
    assert encoder_card["format"] == "encoder-onnx" and encoder_card["encoder_layers"] == 1
    # the encoder (English only) trained on the English rows but the held-out slice (every
    # seed row has an urgency: no urgency-only rows are added); its urgency head has every
    # urgency the tfidf member has
    assert encoder_card["languages"] == ["English"]
    assert {m["path"]: m.get("languages") for m in card["members"]} == {
        "tfidf": None,
        "encoder": ["English"],
    }
    train_rows, _ = template_split(load_seed_records())
    texts = {text_key(e.text): e.text for e in records_to_examples(train_rows)}  # de-duplicated
    english = sum(detect_language(t) == "English" for t in texts.values())
    assert len(texts) == card["data"]["n_train"]
    assert 0 < english < len(texts)  # the seed rows are in seven languages
    tuning = encoder_card["fine_tune"]
    assert tuning["n_examples"] + tuning["n_calibration"] == english
    assert 0.07 * english <= tuning["n_calibration"] <= 0.13 * english
    tfidf_card = json.loads((path / "tfidf" / "model_card.json").read_text())
    assert encoder_card["urgencies"] == tfidf_card["urgencies"] == card["urgencies"]
    assert "torch" in card["versions"] and "onnxruntime" in card["versions"]

    model = load_local_model(path)
    assert isinstance(model, EnsembleModel)
    assert [type(m).__name__ for m in model.members] == ["TfidfLinearModel", "EncoderOnnxModel"]
    w = np.array([weights["tfidf"], weights["encoder"]])
    for text in ("The app crashes when I pay", "Please add a dark mode"):
        p_cat, _ = model.probabilities(text)
        logs = [np.log(np.clip(m.probabilities(text)[0], 1e-12, 1.0)) for m in model.members]
        assert np.allclose(p_cat, pool(np.stack(logs), w / w.sum()))
        assert_valid(model.predict(text).triage)
    for text in ("Wie ändere ich das Passwort?", "La app se cierra al pagar"):
        # not English: the tfidf member alone
        assert np.allclose(model.probabilities(text)[0], model.members[0].probabilities(text)[0])
        assert_valid(model.predict(text).triage)


def test_pool_weight_minimises_the_held_out_log_loss() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 3, size=300)
    sharp = np.full((300, 3), 0.05)
    sharp[np.arange(300), y] = 0.9  # right, and confident
    noise = rng.dirichlet(np.ones(3), size=300)  # no information
    w, nll, f1 = pool_weight(sharp, noise, y)
    assert w == 1.0 and f1 == 1.0
    assert nll == pytest.approx(-np.log(0.9))
    w, _, _ = pool_weight(noise, sharp, y)
    assert w == 0.0
    # two members right on different halves: each alone is worse than the pool
    half = np.where(np.arange(300)[:, None] < 150, sharp, noise)
    other = np.where(np.arange(300)[:, None] >= 150, sharp, noise)
    w, nll, _ = pool_weight(half, other, y)
    assert 0.0 < w < 1.0
    assert nll < pool_weight(half, noise, y)[1]


def test_exported_graph_answers_as_the_torch_module_at_any_batch_and_length(
    tmp_path: Path,
) -> None:
    """The export traces one batch of two texts; the graph must not have frozen its shapes."""
    from gateway.local.onnx import encode_batch
    from training.local import FineTuneConfig, encoder_logits, export_onnx, finetune_encoder

    onnxruntime = pytest.importorskip("onnxruntime")
    rows = records_to_examples(load_seed_records())[:64]
    tuned = finetune_encoder(
        [e.text for e in rows],
        [e.category for e in rows],
        [e.urgency for e in rows],
        FineTuneConfig(epochs=0.5, n_layers=1, max_tokens=48),
        urgency_classes=["Critical", "High", "Low", "Medium", "Unheard-of"],
    )
    assert tuned.urgencies == ["Critical", "High", "Low", "Medium", "Unheard-of"]
    graph = export_onnx(tuned, tmp_path, quantize=False)
    session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    texts = [
        "Crash",
        "The app crashes every time I open the camera, and support never answers my emails.",
        "Bitte fügt einen dunklen Modus hinzu",
        "ok",
        "How do I export my data to a spreadsheet? I looked everywhere in the settings.",
    ]
    for batch in (texts[:1], texts[1:2], texts):
        ids, mask = encode_batch(tuned.tokenizer, batch)
        category, urgency = session.run(None, {"input_ids": ids, "attention_mask": mask})
        want_category, want_urgency = encoder_logits(tuned, batch)
        assert category.shape == (len(batch), len(tuned.categories))
        assert np.allclose(category, want_category, atol=1e-4)
        assert np.allclose(urgency, want_urgency, atol=1e-4)


def test_auto_without_val_chooses_on_rows_it_holds_out_then_trains_on_all(
    tmp_path: Path,
) -> None:
    """With the extras installed, `auto` tries every approach; given no --val, it holds a
    stratified 15% out of their training, chooses on it, and trains the winner on every row."""
    from training.local import AUTO_VAL_FRACTION, LATENCY_BUDGET_MS

    train_rows, _ = template_split(load_seed_records())
    rows = records_to_examples(train_rows[::4])
    card = train_local_examples(rows, None, tmp_path / "auto", approach="auto", minilm_options=TINY)
    candidates = {c["approach"]: c for c in card["candidates"]}
    assert set(candidates) == {"tfidf", "multilingual", "minilm"}
    held = card["selection"]["n_held_out"]
    assert held == pytest.approx(AUTO_VAL_FRACTION * len(rows), abs=6)
    assert all(c["metrics_val"]["n"] == held for c in candidates.values())
    fits = [c for c in candidates.values() if c["latency_ms"]["p50"] <= LATENCY_BUDGET_MS]
    best = max(fits or candidates.values(), key=lambda c: c["metrics_val"]["macro_f1"])
    assert card["approach"] == best["approach"]
    assert card["selection"]["metrics_held_out"] == best["metrics_val"]
    assert card["data"]["n_train"] == len(rows) and "metrics_val" not in card
    # trained again on every row: the tfidf model (or the ensemble's tfidf member) says so
    out = tmp_path / "auto"
    tfidf_card = out / ("tfidf" if card["format"] == "ensemble" else "") / "model_card.json"
    assert json.loads(tfidf_card.read_text())["n_train"] == len(rows)
    assert_valid(load_local_model(out).predict("The app crashes when I pay").triage)

    # too few rows to hold 30 out, or two a category: tfidf alone, on every row
    two_each: dict[str, list[Any]] = {}
    for e in rows:
        if len(two_each.setdefault(e.category, [])) < 2:
            two_each[e.category].append(e)
    tiny = [e for pair in two_each.values() for e in pair]
    card = train_local_examples(tiny, None, tmp_path / "tiny", approach="auto")
    assert [c["approach"] for c in card["candidates"]] == ["tfidf"]
    few = records_to_examples(train_rows[::25])
    card = train_local_examples(few, None, tmp_path / "few", approach="auto")
    assert [c["approach"] for c in card["candidates"]] == ["tfidf"]
    assert "selection" not in card and card["n_train"] == len(few)
