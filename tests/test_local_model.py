"""The zero-setup baseline local model: format `tfidf-linear`, trained by `training.local`
(built by `training.baseline`), loaded and run by `gateway/local/tfidf.py`."""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import joblib
import pytest

from gateway.local.extractive import extract_summary, extract_topic
from gateway.local.loader import BASELINE_NAME, LocalModel, LocalModelError, load_local_model
from gateway.local.tfidf import FORMAT, MODEL_FILE, load_tfidf
from gateway.request.triage import (
    DEFAULT_CATEGORIES,
    DEFAULT_URGENCIES,
    SUMMARY_MAX_CHARS,
    TOPIC_MAX_CHARS,
    Triage,
)
from training.baseline import BASELINE_TFIDF, ensure_baseline_model
from training.data import Example
from training.local import train_tfidf
from training.seed import load_seed_examples, load_seed_records, seed_sha256

SPLIT_SEED = 20240611


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def baseline_dir(data_dir: Path) -> Path:
    return ensure_baseline_model(data_dir)


@pytest.fixture(scope="module")
def model(baseline_dir: Path) -> LocalModel:
    return load_local_model(baseline_dir)


def assert_valid(triage: Triage) -> None:
    assert isinstance(triage, Triage)
    assert triage.category in DEFAULT_CATEGORIES
    assert triage.urgency in DEFAULT_URGENCIES
    assert 1 <= len(triage.topic) <= TOPIC_MAX_CHARS
    assert triage.topic == triage.topic.strip()
    assert 1 <= len(triage.summary) <= SUMMARY_MAX_CHARS
    assert triage.summary.endswith(".")
    assert Triage.model_validate(triage.to_json_dict()) == triage


# --- seed data -------------------------------------------------------------------------------


def test_seed_file_is_labelled_and_balanced() -> None:
    records = load_seed_records()
    assert len(records) >= 480
    keys = {"text", "category", "urgency", "topic", "summary", "app", "rating"}
    for rec in records:
        assert set(rec) == keys
        assert rec["category"] in DEFAULT_CATEGORIES
        assert rec["urgency"] in DEFAULT_URGENCIES
        assert 1 <= len(rec["topic"].split()) <= 4
        assert rec["summary"].endswith(".")
        assert isinstance(rec["rating"], int) and 1 <= rec["rating"] <= 5
    counts = {c: sum(r["category"] == c for r in records) for c in DEFAULT_CATEGORIES}
    assert all(70 <= n <= 90 for n in counts.values()), counts
    assert {r["urgency"] for r in records} == set(DEFAULT_URGENCIES)
    assert len({r["text"] for r in records}) == len(records)
    words = [len(r["text"].split()) for r in records]
    assert min(words) >= 3 and max(words) >= 60


# --- building the baseline -------------------------------------------------------------------


def test_baseline_directory_and_card(baseline_dir: Path, data_dir: Path) -> None:
    assert baseline_dir == data_dir / "models" / BASELINE_NAME
    card = json.loads((baseline_dir / "model_card.json").read_text())
    assert card["format"] == FORMAT
    assert card["name"] == BASELINE_NAME
    assert card["n_train"] == len(load_seed_records())
    assert card["seed_sha256"] == seed_sha256()
    assert set(card["label_counts"]["category"]) == set(DEFAULT_CATEGORIES)
    assert set(card["label_counts"]["urgency"]) == set(DEFAULT_URGENCIES)
    assert {"python", "scikit-learn", "numpy", "scipy", "joblib"} <= set(card["versions"])
    assert card["created_at"]
    assert (baseline_dir / MODEL_FILE).is_file()
    # nothing left behind by the atomic write
    leftovers = [p.name for p in baseline_dir.parent.iterdir() if p.name.startswith(".baseline.")]
    assert leftovers in ([], [".baseline.lock"])


def test_second_ensure_does_not_retrain(baseline_dir: Path, data_dir: Path) -> None:
    files = [baseline_dir / MODEL_FILE, baseline_dir / "model_card.json"]
    before = [f.stat().st_mtime_ns for f in files]
    assert ensure_baseline_model(data_dir) == baseline_dir
    assert [f.stat().st_mtime_ns for f in files] == before


def test_ensure_retrains_when_seed_hash_differs(tmp_path: Path, baseline_dir: Path) -> None:
    target = tmp_path / "models" / BASELINE_NAME
    target.mkdir(parents=True)
    for f in baseline_dir.iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    card = json.loads((target / "model_card.json").read_text())
    card["seed_sha256"] = "0" * 64
    (target / "model_card.json").write_text(json.dumps(card))
    assert ensure_baseline_model(tmp_path) == target
    card = json.loads((target / "model_card.json").read_text())
    assert card["seed_sha256"] == seed_sha256()
    assert_valid(load_local_model(target).predict("the app crashes on launch").triage)


def test_concurrent_ensure_builds_once(tmp_path: Path) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(ensure_baseline_model(tmp_path))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == [tmp_path / "models" / BASELINE_NAME] * 2
    models = tmp_path / "models"
    assert sorted(p.name for p in models.iterdir()) == [".baseline.lock", BASELINE_NAME]
    assert_valid(load_local_model(results[0]).predict("please add dark mode").triage)


def test_server_only_loads_the_baseline(tmp_path: Path, baseline_dir: Path, data_dir: Path) -> None:
    """The lifespan finds the model `serve` built; a missing one fails the start, naming the
    commands that build one, and nothing is trained."""
    from gateway.experiments.config import load_routes
    from gateway.infra.settings import Settings
    from gateway.infra.state import baseline_model_dir

    routes = load_routes(None)  # the packaged default: one local variant on the baseline
    settings = Settings(_env_file=None, data_dir=data_dir)
    assert baseline_model_dir(settings, routes) == baseline_dir
    empty = Settings(_env_file=None, data_dir=tmp_path)
    with pytest.raises(LocalModelError, match=r"triage-gateway serve.*triage-gateway train-local"):
        baseline_model_dir(empty, routes)
    assert not (tmp_path / "models").exists()


# --- predictions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("the app crashes every time I open checkout", "Bug Report"),
        ("I lost all my photos after the update", "Bug Report"),
        ("my payment failed but I was still charged", "Bug Report"),
        ("the login button does nothing", "Bug Report"),
        ("please add dark mode", "Feature Request"),
        ("it would be nice to have a widget for the home screen", "Feature Request"),
        ("Can you add an option to export my data to csv?", "Feature Request"),
        ("way too expensive and full of ads", "Complaint"),
        ("support is useless, nobody ever replies", "Complaint"),
        ("love it, best app ever", "Praise"),
        ("great app, works perfectly", "Praise"),
        ("Thank you so much, this app changed my life", "Praise"),
        ("how do I change my email address?", "Question"),
        ("can I use this on my tablet?", "Question"),
        ("where do I find my order history", "Question"),
        ("hello everyone", "Other"),
        ("downloaded this for my mom", "Other"),
    ],
)
def test_predicts_category(model: LocalModel, text: str, category: str) -> None:
    pred = model.predict(text)
    assert pred.triage.category == category, (text, pred)
    assert 0.0 <= pred.confidence <= 1.0
    assert_valid(pred.triage)


def test_urgency_follows_severity(model: LocalModel) -> None:
    severe = model.predict("app crashes on launch and I lost all my data").triage.urgency
    assert severe in ("Critical", "High")
    assert model.predict("love this app, thank you").triage.urgency == "Low"


def test_model_name_and_confidence_matches_pipeline(model: LocalModel, baseline_dir: Path) -> None:
    assert model.name == BASELINE_NAME
    bundle: dict[str, Any] = joblib.load(baseline_dir / MODEL_FILE)
    text = "The checkout page freezes when I apply a coupon"
    pred = model.predict(text, app="Cartwheel", rating=2)
    proba = bundle["category"].predict_proba([text])[0]
    classes = list(bundle["category"].classes_)
    assert pred.triage.category == classes[int(proba.argmax())]
    assert pred.confidence == pytest.approx(float(proba.max()), abs=1e-9)
    urgency = bundle["urgency"].predict([text])[0]
    assert pred.triage.urgency == urgency


def test_topic_and_summary_are_extractive(model: LocalModel) -> None:
    triage = model.predict("Ugh. The app crashes every time I open checkout! Fix it").triage
    assert triage.summary == "The app crashes every time I open checkout."
    assert "Checkout" in triage.topic.split()
    assert model.predict("please add dark mode").triage.topic == "Dark Mode"


@pytest.mark.parametrize(
    "text",
    [
        "😍",
        "😍🔥👍",
        "🔥" * 4000,
        "a",
        "?",
        "!!!...???",
        " ",
        "\n\t",
        "x" * 8000,
        ("the app crashes when I try to pay " * 300)[:8000],
        "word" + " " * 7990 + "end",
        "\u0000\u200b\ufeff",
        "Приложение вылетает при запуске",
        "アプリが起動しない",
        "لا يعمل التطبيق",
        "a" * 300 + ". second sentence",
        "cant login!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "supercalifragilisticexpialidocious " * 5,
    ],
)
def test_any_text_yields_valid_triage(model: LocalModel, text: str) -> None:
    assert 1 <= len(text) <= 8000
    pred = model.predict(text)
    assert_valid(pred.triage)
    assert 0.0 <= pred.confidence <= 1.0


def test_extract_summary_rules() -> None:
    assert extract_summary("how do i log out?") == "How do i log out."
    assert extract_summary("ok. this app keeps crashing. help") == "This app keeps crashing."
    assert extract_summary("great") == "Great."
    long = extract_summary("word " * 500)
    assert len(long) <= 200 and long.endswith("d.")
    assert extract_summary("🙂🙂") == extract_summary("...")
    assert extract_summary("🙂🙂").endswith(".")


def test_extract_topic_rules() -> None:
    idf = {"checkout": 5.0, "crashes": 3.0, "open": 2.0}
    assert extract_topic("the app crashes when I open checkout", idf, 4.0, "X") == (
        "Crashes Checkout"
    )
    assert extract_topic("love it!!", idf, 4.0, "Overall Experience") == "Overall Experience"
    assert extract_topic("🔥🔥", idf, 4.0, "Praise") == "Praise"
    topic = extract_topic("zebra " * 10, idf, 4.0, "X")
    assert topic == "Zebra"


# --- loader errors ---------------------------------------------------------------------------


def test_unknown_format_raises(tmp_path: Path) -> None:
    (tmp_path / "model_card.json").write_text(json.dumps({"format": "no-such-format"}))
    with pytest.raises(LocalModelError, match="unknown model format"):
        load_local_model(tmp_path)


def test_missing_or_corrupt_model_file_raises(tmp_path: Path) -> None:
    (tmp_path / "model_card.json").write_text(json.dumps({"format": FORMAT}))
    with pytest.raises(LocalModelError, match="not found"):
        load_local_model(tmp_path)
    (tmp_path / MODEL_FILE).write_bytes(b"not a pickle")
    with pytest.raises(LocalModelError, match="unreadable"):
        load_local_model(tmp_path)
    joblib.dump({"something": "else"}, tmp_path / MODEL_FILE)
    with pytest.raises(LocalModelError):
        load_local_model(tmp_path)


def test_load_tfidf_rejects_other_formats(tmp_path: Path) -> None:
    (tmp_path / "model_card.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(LocalModelError):
        load_tfidf(tmp_path)
    with pytest.raises(LocalModelError, match="not found"):
        load_tfidf(tmp_path / "missing")


def test_train_rejects_bad_records(tmp_path: Path) -> None:
    one_class = [Example(text=f"review {i}", category="Praise", urgency="Low") for i in range(4)]
    with pytest.raises(ValueError, match="two distinct"):
        train_tfidf(one_class, tmp_path / "m")
    with pytest.raises(ValueError, match="text"):
        train_tfidf([Example(text="", category="A", urgency="B")], tmp_path / "m")


# --- quality and speed -----------------------------------------------------------------------


def test_held_out_accuracy(tmp_path: Path) -> None:
    examples = load_seed_examples()
    order = list(range(len(examples)))
    random.Random(SPLIT_SEED).shuffle(order)
    cut = int(len(order) * 0.8)
    train = [examples[i] for i in order[:cut]]
    test = [examples[i] for i in order[cut:]]
    path = tmp_path / "split"
    train_tfidf(train, path, name="split80", config=BASELINE_TFIDF)
    model = load_local_model(path)
    assert model.name == "split80"
    preds = [model.predict(e.text, e.app, e.rating) for e in test]
    cat_acc = statistics.fmean(
        p.triage.category == e.category for p, e in zip(preds, test, strict=True)
    )
    urg_acc = statistics.fmean(
        p.triage.urgency == e.urgency for p, e in zip(preds, test, strict=True)
    )
    print(
        f"\nheld-out 20% (n={len(test)}, train n={len(train)}): "
        f"category accuracy {cat_acc:.3f}, urgency accuracy {urg_acc:.3f}"
    )
    assert cat_acc >= 0.8


def test_load_and_predict_are_fast(baseline_dir: Path, model: LocalModel) -> None:
    # Loose bounds (shared CI machines); the real figures are measured separately.
    start = time.perf_counter()
    load_local_model(baseline_dir)
    load_s = time.perf_counter() - start
    text = (
        "Since the last update the app crashes every time I try to send money to my sister, "
        "I already reinstalled it twice and restarted my phone but nothing helps, please fix"
    )
    for _ in range(20):
        model.predict(text)
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        model.predict(text)
        times.append(time.perf_counter() - t0)
    p50 = statistics.median(times)
    print(f"\nload {load_s * 1000:.1f} ms, predict p50 {p50 * 1000:.3f} ms")
    assert load_s < 2.0
    assert p50 < 0.02
