"""`train-local` and `predict`: training a local model from labelled files, its card, loading
it, batch prediction, and serving it as a `local` variant by `model_path`."""

from __future__ import annotations

import csv
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app as cli_app
from gateway.local.loader import load_local_model
from gateway.request.triage import DEFAULT_URGENCIES, SUMMARY_MAX_CHARS, TOPIC_MAX_CHARS, Triage
from tests.servers import run_gateway
from training.data import (
    DataError,
    read_examples,
    read_huang_xlsx,
    read_marc_arff,
    read_reviews,
    stratified_split,
    text_key,
)
from training.local import train_local
from training.predict import predict_file
from training.seed import load_seed_records

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
MARC_TRAIN = SHARED / "jha-mahmoud-marc" / "BOW Dataset.arff"
HUANG = SHARED / "huang-gplay" / "dataset_balanced_4000.xlsx"
needs_shared = pytest.mark.skipif(
    not (MARC_TRAIN.is_file() and HUANG.is_file()), reason="shared/data is not present"
)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small labelled JSONL (train) and CSV (val) written from the project's seed reviews."""
    tmp = tmp_path_factory.mktemp("labelled")
    records = load_seed_records()
    random.Random(7).shuffle(records)
    train, val = records[:240], records[240:300]
    keys = ("text", "category", "urgency", "topic", "summary")
    train_path = _write_jsonl(tmp / "train.jsonl", [{k: r[k] for k in keys} for r in train])
    val_path = tmp / "val.csv"
    with val_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["review_id", "text", "category", "urgency"])
        writer.writeheader()
        for i, r in enumerate(val):
            writer.writerow(
                {"review_id": f"v{i}", "text": r["text"], "category": r["category"], "urgency": ""}
            )
    return {"train": train_path, "val": val_path, "dir": tmp}


@pytest.fixture(scope="module")
def trained(files: dict[str, Path]) -> tuple[Path, dict[str, Any]]:
    out = files["dir"] / "models" / "mine"
    card = train_local(files["train"], files["val"], out, approach="tfidf")
    return out, card


def assert_valid(triage: Triage) -> None:
    assert triage.urgency in DEFAULT_URGENCIES
    assert 1 <= len(triage.topic) <= TOPIC_MAX_CHARS
    assert 1 <= len(triage.summary) <= SUMMARY_MAX_CHARS


# --- readers ---------------------------------------------------------------------------------


def test_readers_chat_jsonl_labelled_csv_and_errors(tmp_path: Path) -> None:
    answer = {"category": "bug", "urgency": "urgent", "topic": "Login", "summary": "Can't log in."}
    chat = _write_jsonl(
        tmp_path / "train.jsonl",
        [
            {
                "messages": [
                    {"role": "system", "content": "You are ..."},
                    {"role": "user", "content": "App: Foo\nRating: 2/5\nReview:\nCan't log in"},
                    {"role": "assistant", "content": json.dumps(answer)},
                ]
            }
        ],
    )
    (ex,) = read_examples(chat)
    assert (ex.text, ex.app, ex.rating) == ("Can't log in", "Foo", 2)
    assert (ex.category, ex.urgency, ex.topic) == ("Bug Report", "Critical", "Login")
    (review,) = read_reviews(chat)
    assert review.text == "Can't log in" and review.review_id is None

    labelled = tmp_path / "l.csv"
    labelled.write_text('id,text,category\n7,"Add dark mode, please",feature request\n')
    (ex,) = read_examples(labelled)
    assert (ex.category, ex.review_id) == ("Feature Request", "7")

    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"text": "x", "category": "weather"}])
    with pytest.raises(DataError, match=r"bad\.jsonl:1: category 'weather'"):
        read_examples(bad)
    with pytest.raises(DataError, match="unknown format"):
        read_examples(tmp_path / "x.txt")


@needs_shared
def test_shared_readers_map_labels_and_filter_augmentation() -> None:
    marc = read_marc_arff(MARC_TRAIN)
    assert {e.category for e in marc} == {"Bug Report", "Feature Request"}  # Other left out
    assert len(read_marc_arff(MARC_TRAIN, keep_other=True)) == 2564
    huang = read_huang_xlsx(HUANG)
    assert {e.category for e in huang} == {"Bug Report", "Feature Request", "Praise", "Other"}
    assert 3600 <= len(huang) <= 3730  # README: 3,722 distinct after the filter
    assert not any("atomic_number" in e.text or " n't" in e.text for e in huang)
    assert len({e.text.casefold() for e in huang}) == len(huang)
    train, test = stratified_split(huang, 0.2, 20240611)
    assert not {e.text for e in train} & {e.text for e in test}
    assert 0.19 < len(test) / len(huang) < 0.21


# --- train-local -----------------------------------------------------------------------------


def test_train_local_writes_a_loadable_model_and_card(
    trained: tuple[Path, dict[str, Any]], files: dict[str, Path]
) -> None:
    out, card = trained
    on_disk = json.loads((out / "model_card.json").read_text())
    assert on_disk == card
    assert card["format"] == "tfidf-linear" and card["approach"] == "tfidf"
    assert card["name"] == "mine"
    data = card["data"]
    assert data["train_files"][0]["name"] == "train.jsonl"
    assert len(data["train_files"][0]["sha256"]) == 64
    assert data["val_file"]["name"] == "val.csv"
    assert data["n_train"] == 240 and data["n_val"] == 60
    assert sum(data["label_counts"].values()) == 240
    assert data["urgency_source"] == "training data"
    metrics = card["metrics_val"]
    assert metrics["n"] == 60
    assert 0.5 <= metrics["accuracy"] <= 1.0 and 0.0 <= metrics["ece"] <= 1.0
    assert set(metrics["f1_by_category"]) <= set(card["categories"])
    assert card["latency_ms"]["p50"] > 0 and card["latency_ms"]["p99"] >= card["latency_ms"]["p50"]
    assert card["size_bytes"] > 10_000
    assert card["training_seconds"] > 0 and card["total_training_seconds"] > 0
    assert {"python", "scikit-learn", "numpy", "scipy"} <= set(card["versions"])
    assert card["category_temperature"] > 0
    assert [c["approach"] for c in card["candidates"]] == ["tfidf"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no leftovers

    model = load_local_model(out)
    assert model.name == "mine"
    pred = model.predict("The app crashes every time I open my cart, please fix")
    assert_valid(pred.triage)
    assert pred.triage.category in card["categories"]
    assert 0.0 <= pred.confidence <= 1.0


def test_train_local_without_urgency_uses_the_seed_reviews(tmp_path: Path) -> None:
    rows = [
        {"text": f"the app crashes when I open screen {i}", "category": "Bug Report"}
        for i in range(12)
    ] + [
        {"text": f"please add support for widget kind {i}", "category": "Feature Request"}
        for i in range(12)
    ]
    data = _write_jsonl(tmp_path / "d.jsonl", rows)
    card = train_local(data, None, tmp_path / "m", approach="tfidf")
    assert card["categories"] == ["Bug Report", "Feature Request"]
    assert "seed reviews" in card["data"]["urgency_source"]
    assert set(card["urgencies"]) == set(DEFAULT_URGENCIES)
    assert "metrics_val" not in card
    pred = load_local_model(tmp_path / "m").predict("please add a dark mode")
    assert pred.triage.category == "Feature Request"
    assert_valid(pred.triage)


def test_train_local_rejects_one_class_and_unknown_approach(tmp_path: Path) -> None:
    data = _write_jsonl(tmp_path / "d.jsonl", [{"text": "a b c", "category": "Praise"}] * 3)
    with pytest.raises(ValueError, match="two distinct categories"):
        train_local(data, None, tmp_path / "m", approach="tfidf")
    with pytest.raises(ValueError, match="unknown approach"):
        train_local(data, None, tmp_path / "m", approach="nope")  # type: ignore[arg-type]


# --- predict ---------------------------------------------------------------------------------


def test_predict_file_writes_one_line_per_review(
    trained: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = trained
    reviews = _write_jsonl(
        tmp_path / "reviews.jsonl",
        [
            {"review_id": "r-1", "text": "Crashes on login since the update", "category": "x"},
            {"text": "Would love a dark mode"},
            {"text": "Great app, love it", "app": "Foo", "rating": 5},
        ],
    )
    target = tmp_path / "out" / "pred.jsonl"
    assert predict_file(out, reviews, target) == 3
    lines = [json.loads(x) for x in target.read_text().splitlines()]
    assert [x["review_id"] for x in lines] == ["r-1", "2", "3"]
    for x in lines:
        assert set(x) == {"review_id", "triage", "confidence"}
        assert_valid(Triage.model_validate(x["triage"]))
        assert 0.0 <= x["confidence"] <= 1.0


def test_cli_train_local_and_predict(files: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli-model"
    result = runner.invoke(
        cli_app,
        ["train-local", "--data", str(files["train"]), "--out", str(out), "--approach", "tfidf"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "model_card.json").read_text())["format"] == "tfidf-linear"
    target = tmp_path / "p.jsonl"
    result = runner.invoke(
        cli_app, ["predict", "--model", str(out), "--data", str(files["val"]), "--out", str(target)]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in target.read_text().splitlines()]
    assert len(lines) == 60 and lines[0]["review_id"] == "v0"

    result = runner.invoke(
        cli_app, ["predict", "--model", str(tmp_path), "--data", str(files["val"]), "--out", "x"]
    )
    assert result.exit_code == 2 and "model_card.json" in result.output


# --- serving ---------------------------------------------------------------------------------


def _find(doc: Any, key: str) -> Any:
    if isinstance(doc, dict):
        if key in doc and doc[key] is not None:
            return doc[key]
        for v in doc.values():
            found = _find(v, key)
            if found is not None:
                return found
    elif isinstance(doc, list):
        for v in doc:
            found = _find(v, key)
            if found is not None:
                return found
    return None


def test_gateway_serves_the_trained_model_by_model_path(
    trained: tuple[Path, dict[str, Any]], tmp: Path, redis_url: str
) -> None:
    out, card = trained
    routes = {
        "experiments": [
            {
                "name": "triage",
                "salt": "t",
                "variants": [
                    {"name": "mine", "model": "local", "model_path": str(out), "weight": 1.0}
                ],
            }
        ]
    }
    text = "The app crashes every time I open my cart"
    expected = load_local_model(out).predict(text)
    with run_gateway(tmp, routes=routes, redis_url=redis_url) as gw, gw.client() as c:
        r = c.post("/v1/classify", json={"text": text, "review_id": "srv-1"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["variant"], body["model"]) == ("mine", "local")
        assert body["triage"] == expected.triage.to_json_dict()
        assert body["triage"]["category"] in card["categories"]
        # the pair log records the model's confidence
        deadline, confidence = time.monotonic() + 10, None
        while confidence is None and time.monotonic() < deadline:
            pair = c.get(f"/v1/pairs/{body['request_id']}")
            if pair.status_code == 200:
                confidence = _find(pair.json(), "confidence")
            if confidence is None:
                time.sleep(0.1)
        assert confidence == pytest.approx(expected.confidence, abs=1e-6)


# --- quality on the shared data (figures for orientation live in docs/local-model.md) ---------


@needs_shared
@pytest.mark.timeout(300)  # ~15 s alone; more when the machine is shared
def test_default_approach_on_the_shared_split(tmp_path: Path) -> None:
    """Measured 0.83 MARC accuracy / 0.71 Huang-20% macro-F1; the floors leave room."""
    from tools.bench.local_model import load_split, score
    from training.local import train_local_examples

    train, marc_test, huang_test = load_split(keep_marc_other=False)
    card = train_local_examples(train, None, tmp_path / "m", approach="tfidf")
    figures = score(load_local_model(tmp_path / "m"), marc_test, huang_test)
    assert figures["marc_test_accuracy"] >= 0.75, figures
    assert figures["huang20_macro_f1"] >= 0.64, figures
    assert card["data"]["label_counts"].keys() == {
        "Bug Report",
        "Feature Request",
        "Praise",
        "Other",
    }


# --- the encoder-onnx runtime (local-strong extra), on a tiny hand-built graph ----------------


def _tiny_encoder_onnx(path: Path) -> Path:
    """A model directory whose ONNX graph sums word embeddings: "crash" votes Bug Report,
    "add" votes Feature Request; its tokenizer is a lower-casing word-level one."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    tokenizers = pytest.importorskip("tokenizers")
    import numpy as np

    helper, numpy_helper, TensorProto = onnx.helper, onnx.numpy_helper, onnx.TensorProto

    vocab = {"[UNK]": 0, "crash": 1, "crashes": 2, "add": 3, "please": 4}
    emb = np.zeros((len(vocab), 2), dtype=np.float32)
    emb[1, 0] = emb[2, 0] = 4.0
    emb[3, 1] = 4.0
    w_cat = np.eye(2, dtype=np.float32)
    w_urg = np.array([[0, 3, 0, 0], [0, 0, 3, 0]], dtype=np.float32)  # bug: High, feature: Low
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["tok"]),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["tok", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w_cat"], ["category_logits"]),
        helper.make_node("MatMul", ["pooled", "w_urg"], ["urgency_logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "t"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "t"]),
        ],
        [
            helper.make_tensor_value_info("category_logits", TensorProto.FLOAT, ["b", 2]),
            helper.make_tensor_value_info("urgency_logits", TensorProto.FLOAT, ["b", 4]),
        ],
        [
            numpy_helper.from_array(emb, "emb"),
            numpy_helper.from_array(w_cat, "w_cat"),
            numpy_helper.from_array(w_urg, "w_urg"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.mkdir(parents=True)
    onnx.save(model, str(path / "model.onnx"))
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = tokenizers.normalizers.Lowercase()
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.save(str(path / "tokenizer.json"))
    (path / "idf.json").write_text(json.dumps({"idf": {"camera": 3.0}, "default_idf": 2.0}))
    card = {
        "format": "encoder-onnx",
        "name": "tiny",
        "categories": ["Bug Report", "Feature Request"],
        "urgencies": ["Critical", "High", "Low", "Medium"],
        "category_temperature": 2.0,
        "max_tokens": 16,
    }
    (path / "model_card.json").write_text(json.dumps(card))
    return path


def test_encoder_onnx_runtime_loads_and_predicts(tmp_path: Path) -> None:
    import math

    from gateway.local.loader import LocalModelError

    path = _tiny_encoder_onnx(tmp_path / "tiny")
    model = load_local_model(path)
    assert model.name == "tiny"
    bug = model.predict("The camera crashes")
    assert (bug.triage.category, bug.triage.urgency) == ("Bug Report", "High")
    assert bug.confidence == pytest.approx(1 / (1 + math.exp(-4 / 2.0)))  # temperature 2
    assert bug.triage.topic == "Camera Crash"
    assert bug.triage.summary == "The user reports that the camera crashes."
    feat = model.predict("please add")
    assert (feat.triage.category, feat.triage.urgency) == ("Feature Request", "Low")
    assert_valid(model.predict("🙂").triage)  # no tokens the model knows, still valid

    card = json.loads((path / "model_card.json").read_text())
    card["urgencies"] = []
    (path / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(LocalModelError, match="default_urgency"):
        load_local_model(path)
    card["default_urgency"] = {"Bug Report": "High"}
    (path / "model_card.json").write_text(json.dumps(card))
    assert load_local_model(path).predict("crash").triage.urgency == "High"


def test_auto_holds_out_only_the_callers_rows_and_enough_of_them() -> None:
    """`auto` without --val chooses on a stratified share of the caller's rows: never seed
    rows (they share sentence templates), and none at all when too few to choose on."""
    from training.local import AUTO_VAL_FRACTION, AUTO_VAL_MIN, _auto_holdout
    from training.seed import load_seed_examples

    seed = load_seed_examples()
    own = seed[::2]  # stand-ins for the caller's rows
    seed_rows = seed[1::2]
    seed_keys = {text_key(e.text) for e in seed_rows}
    held = _auto_holdout([*own, *seed_rows], seed_keys)
    assert held is not None
    assert not {text_key(e.text) for e in held} & seed_keys
    assert len(held) == pytest.approx(AUTO_VAL_FRACTION * len(own), abs=6)
    assert {e.category for e in held} == {e.category for e in own}
    # too few of the caller's rows, however many seed rows come with them
    few = own[: int(AUTO_VAL_MIN / AUTO_VAL_FRACTION) - 20]
    assert _auto_holdout([*few, *seed_rows], seed_keys) is None
    # two rows a category: a stratified share cannot be held out
    by_category: dict[str, list[Any]] = {}
    for e in own:
        by_category.setdefault(e.category, []).append(e)
    tiny = [e for rows in by_category.values() for e in rows[:2]]
    assert _auto_holdout(tiny, set()) is None
