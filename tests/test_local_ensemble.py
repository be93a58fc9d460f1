"""The `ensemble` runtime's language gate, with no extra installed: two real `tfidf-linear`
members trained on halves of the seed set, one of them restricted to English by the card, as
`train-local --approach minilm` restricts its English-only encoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.local.ensemble import EnsembleModel, pool
from gateway.local.extractive import detect_language
from gateway.local.loader import LocalModelError, load_local_model
from tests.test_local_model import assert_valid
from training.local import train_tfidf
from training.seed import load_seed_records, records_to_examples

ENGLISH = ("The app crashes every time I pay", "Please add a dark mode to the settings")
OTHERS = (
    "Die App stürzt ständig ab nach dem Update",  # German
    "La aplicación se cierra cuando pago",  # Spanish
    "アプリが起動しません",  # Japanese
)


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ensemble directory with members `a` and `b`, each trained on half the seed rows."""
    root = tmp_path_factory.mktemp("ensemble")
    examples = records_to_examples(load_seed_records())
    train_tfidf(examples[0::2], root / "a", name="a")
    card = train_tfidf(examples[1::2], root / "b", name="b")
    (root / "model_card.json").write_text(json.dumps(_card(card, ["English"], None)))
    return root


def _card(member: dict[str, Any], a_langs: Any, b_langs: Any) -> dict[str, Any]:
    members: list[dict[str, Any]] = [{"path": "a", "weight": 0.7}, {"path": "b", "weight": 0.3}]
    for m, langs in zip(members, (a_langs, b_langs), strict=True):
        if langs is not None:
            m["languages"] = langs
    return {
        "format": "ensemble",
        "format_version": 1,
        "name": "gated",
        "categories": member["categories"],
        "urgencies": member["urgencies"],
        "members": members,
    }


def _alone(model: EnsembleModel, i: int, text: str) -> Any:
    return model.members[i].probabilities(text)[0]


def test_a_member_restricted_to_english_answers_english_reviews_only(members: Path) -> None:
    model = load_local_model(members)
    assert isinstance(model, EnsembleModel)
    for text in ENGLISH:
        assert detect_language(text) == "English"
        np.testing.assert_allclose(model.probabilities(text)[0], _pooled(model, text))
    for text in OTHERS:
        assert detect_language(text) != "English"
        # b alone, at full weight: its own distributions, not tempered ones
        p_cat, p_urg = model.probabilities(text)
        np.testing.assert_allclose(p_cat, _alone(model, 1, text))
        np.testing.assert_allclose(p_urg, model.members[1].probabilities(text)[1])
        assert_valid(model.predict(text).triage)


def test_the_members_that_answer_count_even_at_weight_0(members: Path, tmp_path: Path) -> None:
    """A card whose unrestricted member weighs 0 still keeps the English-only one away from
    other languages: the members that answer are weighed equally."""
    card = json.loads((members / "model_card.json").read_text())
    card["members"][0]["weight"], card["members"][1]["weight"] = 1.0, 0.0
    model = load_local_model(_copy(members, tmp_path / "m", card))
    assert isinstance(model, EnsembleModel)
    german = OTHERS[0]
    np.testing.assert_allclose(model.probabilities(german)[0], _alone(model, 1, german))
    english = ENGLISH[0]
    np.testing.assert_allclose(model.probabilities(english)[0], _alone(model, 0, english))


def _copy(members: Path, out: Path, card: dict[str, Any]) -> Path:
    for sub in ("a", "b"):
        (out / sub).mkdir(parents=True)
        for f in (members / sub).iterdir():
            (out / sub / f.name).write_bytes(f.read_bytes())
    (out / "model_card.json").write_text(json.dumps(card))
    return out


def _pooled(model: EnsembleModel, text: str) -> Any:
    logs = np.log(np.clip(np.stack([_alone(model, i, text) for i in (0, 1)]), 1e-12, 1.0))
    return pool(logs, np.array([0.7, 0.3]))


def test_a_review_no_member_answers_is_pooled_by_every_member(
    members: Path, tmp_path: Path
) -> None:
    card = json.loads((members / "model_card.json").read_text())
    card["members"][1]["languages"] = ["English", "German"]
    model = load_local_model(_copy(members, tmp_path / "m", card))
    assert isinstance(model, EnsembleModel)
    german, spanish = OTHERS[0], OTHERS[1]
    np.testing.assert_allclose(model.probabilities(german)[0], _alone(model, 1, german))
    np.testing.assert_allclose(model.probabilities(spanish)[0], _pooled(model, spanish))
    np.testing.assert_allclose(model.probabilities(ENGLISH[0])[0], _pooled(model, ENGLISH[0]))


@pytest.mark.parametrize("languages", [[], ["Klingon"], "English", [1], [["English"]]])
def test_bad_member_languages_are_refused(members: Path, tmp_path: Path, languages: Any) -> None:
    card = json.loads((members / "model_card.json").read_text())
    card["members"][0]["languages"] = languages
    out = _copy(members, tmp_path / "bad", card)
    with pytest.raises(LocalModelError, match="languages must be a non-empty list"):
        load_local_model(out)
