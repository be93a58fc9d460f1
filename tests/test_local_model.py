"""The zero-setup baseline local model: format `tfidf-linear`, trained by `training.local`
(built by `training.baseline`), loaded and run by `gateway/local/tfidf.py`."""

from __future__ import annotations

import itertools
import json
import re
import statistics
import threading
import time
from pathlib import Path

import pytest

from gateway.local.extractive import detect_language, extract_summary, extract_topic
from gateway.local.loader import BASELINE_NAME, LocalModel, LocalModelError, load_local_model
from gateway.local.tfidf import FORMAT, VOCABULARY_FILE, WEIGHTS_FILE, TfidfLinearModel, load_tfidf
from gateway.request.triage import (
    DEFAULT_CATEGORIES,
    DEFAULT_URGENCIES,
    SUMMARY_MAX_CHARS,
    TOPIC_MAX_CHARS,
    Triage,
)
from training.baseline import BASELINE_TFIDF, ensure_baseline_model
from training.data import Example
from training.local import fit_tfidf, train_tfidf
from training.seed import (
    load_seed_examples,
    load_seed_records,
    records_to_examples,
    seed_sha256,
    template_split,
)

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
    assert triage.summary.endswith((".", "?"))
    assert Triage.model_validate(triage.to_json_dict()) == triage


# --- seed data -------------------------------------------------------------------------------


def test_seed_file_is_labelled_and_balanced() -> None:
    records = load_seed_records()
    assert len(records) >= 480
    keys = {"text", "category", "urgency", "topic", "summary", "app", "rating", "lang", "template"}
    for rec in records:
        assert set(rec) == keys
        assert rec["category"] in DEFAULT_CATEGORIES
        assert rec["urgency"] in DEFAULT_URGENCIES
        assert 1 <= len(rec["topic"].split()) <= 4
        assert rec["summary"].endswith((".", "?"))
        assert isinstance(rec["rating"], int) and 1 <= rec["rating"] <= 5
    counts = {c: sum(r["category"] == c for r in records) for c in DEFAULT_CATEGORIES}
    assert min(counts.values()) >= 80 and max(counts.values()) <= 1.25 * min(counts.values())
    langs = {r["lang"] for r in records}
    assert {"en", "de", "es", "fr", "pt", "it", "ja"} <= langs
    for lang in langs:  # every language teaches every category
        assert {r["category"] for r in records if r["lang"] == lang} == set(DEFAULT_CATEGORIES)
    assert {r["urgency"] for r in records} == set(DEFAULT_URGENCIES)
    assert len({r["text"] for r in records}) == len(records)
    words = [len(r["text"].split()) for r in records if r["lang"] == "en"]
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
    assert {"python", "scikit-learn", "numpy", "scipy"} <= set(card["versions"])
    assert card["created_at"]
    assert (baseline_dir / VOCABULARY_FILE).is_file() and (baseline_dir / WEIGHTS_FILE).is_file()
    # nothing left behind by the atomic write
    leftovers = [p.name for p in baseline_dir.parent.iterdir() if p.name.startswith(".baseline.")]
    assert leftovers in ([], [".baseline.lock"])


def test_second_ensure_does_not_retrain(baseline_dir: Path, data_dir: Path) -> None:
    files = [baseline_dir / WEIGHTS_FILE, baseline_dir / "model_card.json"]
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


def test_numpy_runtime_answers_as_the_sklearn_pipeline(tmp_path: Path) -> None:
    """The exported arrays give the scikit-learn pipeline's labels and probabilities on every
    seed review (plus accents, emoji, ligatures and an empty transform)."""
    fit = fit_tfidf(load_seed_examples(), config=BASELINE_TFIDF)
    card = {"format": FORMAT, "format_version": 2, "name": "cmp"}
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    from training.local import export_tfidf

    export_tfidf(fit.features, fit.category, fit.urgency, tmp_path)
    model = load_tfidf(tmp_path)
    assert isinstance(model, TfidfLinearModel)
    cat_pipe, urg_pipe = fit.pipelines()
    texts = [e.text for e in load_seed_examples()] + [
        "Die App stürzt ständig ab nach dem Update 😡",
        "Ünïcödé ﬁle naïve café",
        "😍",
        "zzzzqqq",
    ]
    p_cat, p_urg = cat_pipe.predict_proba(texts), urg_pipe.predict_proba(texts)
    assert list(model.categories) == [str(c) for c in cat_pipe.classes_]
    for i, text in enumerate(texts):
        got_cat, got_urg = model.probabilities(text)
        assert got_cat == pytest.approx(p_cat[i], abs=1e-9), text
        assert got_urg == pytest.approx(p_urg[i], abs=1e-9), text
        assert model.categories[int(got_cat.argmax())] == cat_pipe.classes_[p_cat[i].argmax()]


def test_server_import_loads_no_sklearn_torch_or_litellm() -> None:
    import subprocess
    import sys

    code = (
        "import sys, gateway.api.app, gateway.local.tfidf, gateway.local.loader\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sklearn', 'torch', 'litellm', 'joblib'))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "", out.stdout


def test_old_pickle_format_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "model_card.json").write_text(json.dumps({"format": FORMAT, "format_version": 1}))
    with pytest.raises(LocalModelError, match=r"format_version 1 .*retrain"):
        load_local_model(tmp_path)


def test_topic_and_summary_are_extractive(model: LocalModel) -> None:
    triage = model.predict("Ugh. The app crashes every time I open checkout! Fix it").triage
    assert triage.summary == "The user reports that the app crashes every time they open checkout."
    assert triage.topic == "Checkout Crash"
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
    assert extract_summary("how do i log out?") == "The user asks how to log out?"
    assert extract_summary("is there a dark mode?") == "The user asks whether there is a dark mode?"
    assert extract_summary("ok. this app keeps crashing. help", "Bug Report") == (
        "The user reports that this app keeps crashing."
    )
    assert extract_summary("please add dark mode", "Feature Request") == (
        "The user requests dark mode."
    )
    assert extract_summary("Die App stürzt ab").startswith("The user writes in German:")
    long = extract_summary("word " * 500)
    assert len(long.split()) <= 25 and long.endswith(".")
    assert extract_summary("🙂🙂") == extract_summary("...")
    assert extract_summary("🙂🙂").endswith(".")


@pytest.mark.parametrize(
    ("text", "category", "expected"),
    [
        # the severity sentence is summarised, and the question after it is kept
        (
            "The app crashed twice today. Is there a way to save drafts offline?",
            "Question",
            "The user says that the app crashed twice today and asks whether there is a way to"
            " save drafts offline?",
        ),
        (
            "i lost all my notes after the update. how do i get them back?",
            "Bug Report",
            "The user reports that they lost all their notes after the update and asks how to"
            " get them back?",
        ),
        # a long statement leaves the question at least half of the 25 words
        (
            "Since the update the app crashes whenever I open the calendar, then the phone"
            " restarts and the widget is gone too and nothing helps. Can you tell me when a fix"
            " is coming and whether I should reinstall?",
            "Bug Report",
            "The user reports that since the update the app crashes whenever they open and asks"
            " whether the developers can tell them when a fix is?",
        ),
        # other languages quote both sentences; Japanese without doubled punctuation
        (
            "Ich kann mich nicht mehr anmelden. Wurde mein Konto gesperrt?",
            "Question",
            "The user asks in German: Ich kann mich nicht mehr anmelden. Wurde mein Konto"
            " gesperrt?",
        ),
        (
            "ログインできません。アカウントは停止されましたか？",
            "Question",
            "The user asks in Japanese: ログインできません。アカウントは停止されましたか?",
        ),
        ("アプリが落ちます。", "Bug Report", "The user writes in Japanese: アプリが落ちます."),
    ],
)
def test_summary_keeps_the_question_beside_a_severity_sentence(
    text: str, category: str, expected: str
) -> None:
    summary = extract_summary(text, category)
    assert summary == expected
    assert len(summary.split()) <= 25


def test_extract_topic_rules() -> None:
    idf = {"checkout": 5.0, "crashes": 3.0, "open": 2.0}
    text = "the app crashes when I open checkout"
    assert extract_topic(text, idf, 4.0, "X") == "Checkout"
    assert extract_topic(text, idf, 4.0, "X", signals={"crash"}) == "Checkout Crash"
    assert extract_topic("love it!!", idf, 4.0, "Overall Experience") == "Overall Experience"
    assert extract_topic("🔥🔥", idf, 4.0, "Praise") == "Praise"
    assert extract_topic("zebra " * 10, idf, 4.0, "X") == "Zebra"
    assert extract_topic("die der das und", idf, 4.0, "X") == "X"
    # a pronoun's contraction and a preposition are no topic words
    assert extract_topic("we'll see, they'd know", idf, 4.0, "X") == "X"
    assert extract_topic("features locked behind premium", idf, 4.0, "X") == "Features"
    # each part of a hyphenated word is titled as a word: an acronym stays one
    german = "Der PDF-Export und das wi-fi-Menü funktionieren seit dem Update nicht mehr"
    assert extract_topic(german, {}, 4.0, "X", language="German") == "PDF-Export"
    assert extract_topic("das wi-fi-menü", {}, 4.0, "X") == "Wi-Fi-Menü"


def test_topic_of_reviews_not_in_english(model: LocalModel) -> None:
    """Elided articles and pronouns are not part of a topic word; question words and the
    modal and wish verbs of a request are not topics; a review not in English with a severity
    signal gets the signal's topic, not a phrase of two languages."""
    idf: dict[str, float] = {}
    assert extract_topic("l'export", idf, 4.0, "X") == "Export"
    assert extract_topic("Dell'agenda", idf, 4.0, "X") == "Agenda"
    for asking in ("c'est", "Vorrei poter", "¿Cómo puedo?", "Könntet ihr", "Gostaria de poder"):
        assert extract_topic(asking, idf, 4.0, "X") == "X", asking
    assert extract_topic("El mapa falla", idf, 4.0, "X", signals={"crash"}) == "Mapa Falla Crash"
    assert extract_topic("El mapa", idf, 4.0, "X", signals={"crash"}, language="Spanish") == (
        "App Crash"
    )
    topics = {
        "Die Kalender-Ansicht stürzt beim Scrollen ständig ab.": "App Crash",
        "Meine ganzen Notizen sind nach dem Update verschwunden.": "Data Loss",
        "L'applicazione si chiude sempre quando apro il calendario.": "App Crash",
    }
    for text, topic in topics.items():
        assert model.predict(text).triage.topic == topic, text
    assert detect_language("Il calendario della app non si apre più.") == "Italian"
    assert detect_language("Desde ayer no hay forma de entrar.") == "Spanish"
    # German writes every noun capitalised: the topic is made of the nouns inside a clause
    german = {
        "Die Benachrichtigungen kommen gar nicht mehr an.": "Benachrichtigungen",
        "Könntet ihr eine Version für die Apple Watch machen?": "Apple Watch",
        "Klappt das auch ohne Internetverbindung?": "Internetverbindung",
        "bitte einen offline-modus einbauen": "Offline-Modus",  # all lower case: as before
    }
    for text, topic in german.items():
        assert extract_topic(text, idf, 4.0, "X", language="German") == topic, text
    for english in ("Do you do refunds?", "Why do ads do that?", "see ya"):
        assert detect_language(english) == "English", english
    # an English possessive is no elision
    assert extract_topic("the quest's reward", idf, 4.0, "X") == "Quest's Reward"


# --- loader errors ---------------------------------------------------------------------------


def test_unknown_format_raises(tmp_path: Path) -> None:
    (tmp_path / "model_card.json").write_text(json.dumps({"format": "no-such-format"}))
    with pytest.raises(LocalModelError, match="unknown model format"):
        load_local_model(tmp_path)


def test_missing_or_corrupt_model_file_raises(tmp_path: Path) -> None:
    (tmp_path / "model_card.json").write_text(json.dumps({"format": FORMAT, "format_version": 2}))
    with pytest.raises(LocalModelError, match="not found"):
        load_local_model(tmp_path)
    (tmp_path / VOCABULARY_FILE).write_text("{not json")
    (tmp_path / WEIGHTS_FILE).write_bytes(b"not an npz")
    with pytest.raises(LocalModelError, match="unreadable"):
        load_local_model(tmp_path)
    (tmp_path / VOCABULARY_FILE).write_text(json.dumps({"vectorizers": []}))
    import numpy as np

    np.savez(tmp_path / WEIGHTS_FILE, idf_0=np.ones(2))
    with pytest.raises(LocalModelError, match="vectorizers"):
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


def test_template_disjoint_accuracy_and_urgency(tmp_path: Path) -> None:
    """Train on seed rows of some sentence templates, test on rows of the others: English
    category accuracy >= 0.85 and Critical+High recall over a floor; every figure printed.
    (The split's 70-odd urgent test rows are few: which templates fall on the test side moves
    the recall by a tenth, as the written reviews did; on the same test rows it is the same
    with and without them.)"""
    train, test = template_split(load_seed_records())
    assert not {r["template"] for r in train} & {r["template"] for r in test}
    path = tmp_path / "split"
    train_tfidf(records_to_examples(train), path, name="split", config=BASELINE_TFIDF)
    model = load_local_model(path)
    preds = [model.predict(r["text"]).triage for r in test]
    english = [(p, r) for p, r in zip(preds, test, strict=True) if r["lang"] == "en"]
    acc_all = statistics.fmean(
        p.category == r["category"] for p, r in zip(preds, test, strict=True)
    )
    acc_en = statistics.fmean(p.category == r["category"] for p, r in english)
    urgent = [
        (p, r) for p, r in zip(preds, test, strict=True) if r["urgency"] in ("Critical", "High")
    ]
    recall = statistics.fmean(p.urgency in ("Critical", "High") for p, _ in urgent)
    print(
        f"\ntemplate-disjoint (train n={len(train)}, test n={len(test)}): accuracy all "
        f"{acc_all:.3f}, English {acc_en:.3f}; Critical+High recall {recall:.3f}"
    )
    assert acc_en >= 0.85
    assert recall >= 0.65


CRASH_REPORTS = [
    "Die App stürzt ständig ab nach dem Update 😡",
    "La aplicación se cierra sola cada vez que la abro",
    "L'application plante au démarrage",
    "O aplicativo trava e fecha sozinho",
    "L'app si chiude da sola, bellissima grafica però",
    "アプリがすぐ落ちます",
    "Love the design but it crashes every time I open it",
    "great app!! except it crashes constantly lol",
    "Die App ist toll, aber sie stürzt bei jedem Start ab",
]


@pytest.mark.parametrize("text", CRASH_REPORTS)
def test_no_crash_report_is_called_praise(model: LocalModel, text: str) -> None:
    triage = model.predict(text).triage
    assert triage.category not in ("Praise", "Other"), (text, triage)
    assert triage.urgency in ("Critical", "High"), (text, triage)


@pytest.mark.parametrize(
    "text",
    [
        "App crashes every time I tap pay at checkout",
        "I was charged twice for my subscription",
        "I lost all my notes after the update",
        "Someone hacked my account and changed the password",
        "I can't log in since yesterday",
    ],
)
def test_severe_reports_are_urgent(model: LocalModel, text: str) -> None:
    assert model.predict(text).triage.urgency in ("Critical", "High")


def test_negated_crash_is_no_signal(model: LocalModel) -> None:
    from gateway.local.signals import severity_signals

    assert severity_signals("never crashes, love it") == frozenset()
    assert severity_signals("stürzt nie ab") == frozenset()
    assert model.predict("Works great, never crashes, love it").triage.category == "Praise"


@pytest.mark.parametrize(
    "text",
    [
        "Took weeks to get a reply and then they closed the ticket",
        "Ninety features and none of them work",
        "Die App stürzt ständig ab nach dem Update",
        "please add dark mode",
        "the the the and and",
        "how do i export my workouts to csv?",
    ],
)
def test_topic_is_a_short_noun_phrase(model: LocalModel, text: str) -> None:
    topic = model.predict(text).triage.topic
    words = topic.split()
    assert 1 <= len(words) <= 4, topic
    from gateway.local.extractive import STOP_WORDS

    assert not all(w.lower() in STOP_WORDS for w in words), topic
    assert topic not in ("Took Weeks", "Die Stürzt", "Ninety Features")


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("how do i log out?", "?"),
        ("Can I use this on my tablet?", "?"),
        ("Ugh. The app crashes every time I open checkout! Fix it", "."),
        ("please add dark mode", "."),
        ("I love it. " + "It syncs with my watch and my calendar and " * 10 + "that is it.", "."),
    ],
)
def test_summary_is_one_third_person_sentence(model: LocalModel, text: str, end: str) -> None:
    summary = model.predict(text).triage.summary
    assert summary.startswith("The user "), summary
    assert summary.endswith(end), summary
    assert len(summary.split()) <= 25, summary
    first = re.split(r"(?<=[.!?])\s+", text)[0]
    assert summary != first
    assert " my " not in f" {summary.lower()} " and " i " not in f" {summary.lower()} "


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


# --- the hand-labelled evaluation sets (tests/data/local_eval/; never trained on) -------------
#
# The floors below are the levels the zero-setup model reaches on these sets (see the measured
# block of docs/local-model.md, `make bench-local-model`), a little under, so a regression
# fails; the goals are higher and reported as missed there. Never tune to these files.


@pytest.fixture(scope="module")
def eval_sets() -> dict[str, list[dict[str, object]]]:
    from tools.bench.local_eval import SETS, load_eval_set

    return {name: load_eval_set(name) for name in SETS}


@pytest.fixture(scope="module")
def eval_preds(
    model: LocalModel, eval_sets: dict[str, list[dict[str, object]]]
) -> dict[str, list[Triage]]:
    return {
        name: [model.predict(str(r["text"])).triage for r in rows]
        for name, rows in eval_sets.items()
    }


def test_eval_sets_are_complete_and_not_training_data(
    eval_sets: dict[str, list[dict[str, object]]],
) -> None:
    urgency, english, multi = eval_sets["urgency"], eval_sets["english"], eval_sets["multilingual"]
    assert len(urgency) == 100 and {r["lang"] for r in urgency} == {"en"}
    assert len({r["app"] for r in urgency}) >= 30
    urgent = sum(r["urgency"] in ("Critical", "High") for r in urgency)
    assert 35 <= urgent <= 60 and {r["urgency"] for r in urgency} == set(DEFAULT_URGENCIES)
    assert all(r["urgency"] in ("Critical", "High") for r in urgency if r["crash"])
    assert len(english) == 60
    assert {
        c: sum(r["category"] == c for r in english) for c in DEFAULT_CATEGORIES
    } == dict.fromkeys(DEFAULT_CATEGORIES, 10)
    for lang in ("de", "es", "fr", "pt", "it", "ja"):
        rows = [r for r in multi if r["lang"] == lang]
        assert len(rows) >= 30, lang
        assert {r["category"] for r in rows} == set(DEFAULT_CATEGORIES), lang
        assert any(r["crash"] for r in rows), lang
    texts = [str(r["text"]) for rows in eval_sets.values() for r in rows]
    assert len(set(texts)) == len(texts)
    seed = {str(r["text"]).lower().rstrip(".!?") for r in load_seed_records()}
    assert not [t for t in texts if t.lower().rstrip(".!?") in seed]


def test_eval_set_loader_rejects_bad_rows(tmp_path: Path) -> None:
    from tools.bench.local_eval import load_eval_set

    row: dict[str, object] = {"review_id": "x", "text": "hi", "lang": "en"}
    row |= {"category": "Praise", "urgency": "Urgent", "app": "A", "crash": False}
    (tmp_path / "english.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=r"english.jsonl line 1: unknown urgency 'Urgent'"):
        load_eval_set("english", tmp_path)
    with pytest.raises(ValueError, match="unknown evaluation set"):
        load_eval_set("nope", tmp_path)


def test_zero_setup_on_hand_written_sets(
    eval_sets: dict[str, list[dict[str, object]]], eval_preds: dict[str, list[Triage]]
) -> None:
    from tools.bench.local_eval import accuracy, accuracy_by, urgency_report, urgent_recall

    english = accuracy(eval_sets["english"], eval_preds["english"])
    multi = accuracy(eval_sets["multilingual"], eval_preds["multilingual"])
    by_lang = accuracy_by(eval_sets["multilingual"], eval_preds["multilingual"], "lang")
    recall = urgent_recall(eval_sets["urgency"], eval_preds["urgency"])
    report = urgency_report(eval_sets["urgency"], eval_preds["urgency"])
    print(
        f"\nhand-written: English-60 {english:.3f}, non-English {multi:.3f} "
        f"{ {k: round(v[0], 3) for k, v in by_lang.items()} }, urgency Critical+High recall "
        f"{recall:.3f}, High recall {report['High']['recall']:.3f}, Critical recall "
        f"{report['Critical']['recall']:.3f}"
    )
    assert english >= 0.82
    assert multi >= 0.85
    assert min(a for a, _ in by_lang.values()) >= 0.8
    assert recall >= 0.77
    # lost money and outages are Critical, so some High-labelled rows are called Critical (and
    # the other way round): the floors are per class, the goal is on both together (`recall`)
    assert report["High"]["recall"] >= 0.45
    assert report["Critical"]["recall"] >= 0.4


def test_no_crash_report_is_praise_in_any_language_of_the_sets(
    eval_sets: dict[str, list[dict[str, object]]], eval_preds: dict[str, list[Triage]]
) -> None:
    crashes = [
        (r, p)
        for name, rows in eval_sets.items()
        for r, p in zip(rows, eval_preds[name], strict=True)
        if r["crash"]
    ]
    assert len({r["lang"] for r, _ in crashes}) == 7
    misfiled = [(r["text"], p.category) for r, p in crashes if p.category in ("Praise", "Other")]
    assert not misfiled
    # the severity rules raise nearly all of them to High or Critical (an English phrasing
    # without a signal, "shuts down", is the one left at the learned urgency)
    urgent = statistics.fmean(p.urgency in ("Critical", "High") for _, p in crashes)
    assert urgent >= 0.9, [(r["text"], p.urgency) for r, p in crashes]


def test_summary_and_topic_rules_on_hand_written_sets(
    eval_sets: dict[str, list[dict[str, object]]], eval_preds: dict[str, list[Triage]]
) -> None:
    from gateway.local.extractive import STOP_WORDS
    from tools.bench.local_eval import SETS, summary_checks, topic_checks

    rows = [r for name in SETS for r in eval_sets[name]]
    preds = [p for name in SETS for p in eval_preds[name]]
    s = summary_checks(rows, preds)
    t = topic_checks(preds, STOP_WORDS)
    assert s["within_25_words"] == 1.0 and s["third_person"] == 1.0
    assert s["not_first_sentence"] == 1.0
    assert s["question_kept"] >= 0.95
    assert t["one_to_four_words"] == 1.0 and t["not_stop_words_only"] == 1.0


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Seit gestern schließt sich die App nach zwei Sekunden", {"crash"}),
        ("Beim Speichern beendet sich die App einfach", {"crash"}),
        ("Die App schließt sich nicht, alles gut", set()),
        ("Mir wurde das Abo zweimal abgebucht", {"money_lost"}),
        ("月額料金が2回請求されています", {"money_lost"}),
        ("Die Zahlung ist fehlgeschlagen", {"payment"}),
        ("Why was I charged twice this month?", {"payment", "money_lost"}),
        ("The payment failed but I was charged anyway", {"payment", "money_lost"}),
        ("Servers are down, nobody in the office can log in", {"outage"}),
        ("Los servidores están caídos desde esta mañana", {"outage"}),
        ("サーバーがダウンしています", {"outage"}),
        ("Someone took over my account and changed my email", {"security"}),
        ("Got a login alert from another country", {"security"}),
        ("My streak was reset to zero overnight", {"data_loss"}),
        ("All good, nothing is lost", set()),
        ("Everything is missing a dark mode", set()),
        ("No outage in months, very reliable", set()),
        ("The app is completely unusable now", {"crash"}),
        ("Support is completely useless", set()),
        ("La app no funciona para nada", {"crash"}),
        ("全く使えません", {"crash"}),
        ("My card never goes through at checkout", {"payment"}),
        ("Works fine, no payment errors so far", set()),
        ("Se nos borraron las fotos del viaje", {"data_loss"}),
        ("O jogo travou no meio da partida", {"crash"}),
        ("Parfait pour le travail, je recommande", set()),
        ("Je travaille avec tous les jours", set()),
    ],
)
def test_signals_cover_each_language_alike(text: str, kinds: set[str]) -> None:
    from gateway.local.signals import severity_signals

    assert set(severity_signals(text)) == kinds


def test_urgency_floor_per_kind() -> None:
    from gateway.local.signals import FLOORS, SIGNAL_KINDS, apply_signals, urgency_floor

    assert set(FLOORS) == set(SIGNAL_KINDS)
    assert urgency_floor(frozenset()) is None
    assert urgency_floor(frozenset({"crash", "lockout"})) == "High"
    for kind in ("money_lost", "data_loss", "security", "outage"):
        assert urgency_floor(frozenset({"crash", kind})) == "Critical"
    cats = ("Bug Report", "Praise", "Other", "Complaint")
    assert apply_signals("Praise", "Low", frozenset({"outage"}), cats) == ("Bug Report", "Critical")
    assert apply_signals("Complaint", "Low", frozenset({"payment"}), cats) == ("Complaint", "High")


def test_bench_writes_the_measured_block(tmp_path: Path) -> None:
    """`make bench-local-model` without the shared data: the block of the doc is replaced,
    every goal marked met, missed or not measured, the rest of the file kept."""
    from tools.bench import local_model as bench

    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\nbefore\n\n{bench.BEGIN}\nstale figures\n{bench.END}\n\nafter\n")
    out = tmp_path / "figures.json"
    readme = tmp_path / "README.md"
    readme.write_text("# Readme\n\n<!-- cascade:begin -->\nstale\n<!-- cascade:end -->\n\nend\n")
    argv = ["--skip-shared", "--doc", str(doc), "--readme", str(readme), "--out", str(out)]
    assert bench.main(argv) == 0
    assert readme.read_text() == (
        "# Readme\n\n<!-- cascade:begin -->\nRecommended cascade: not measured (the shared data"
        " was not found or left out).\n<!-- cascade:end -->\n\nend\n"
    )
    text = doc.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "stale figures" not in text and text.count(bench.BEGIN) == 1
    block = text.split(bench.BEGIN)[1].split(bench.END)[0]
    assert "make bench-local-model" in block and "left out (--skip-shared)" in block
    goal_rows = [line for line in block.splitlines() if line.startswith("| Zero-setup")]
    assert len(goal_rows) == 4
    assert all(line.rstrip(" |").endswith(("**met**", "**missed**")) for line in goal_rows)
    assert "| Strong model: MARC test accuracy | >= 0.90 | - | not measured |" in block
    figures = json.loads(out.read_text())
    z = figures["zero_setup"]
    assert z["split_templates_shared"] == 0 and z["crash_misfiled"] == []
    # --render writes the same blocks again from that JSON, measuring nothing
    again, readme_again = tmp_path / "again.md", tmp_path / "README-again.md"
    again.write_text(f"# Other\n\n{bench.BEGIN}\nold\n{bench.END}\n")
    readme_again.write_text("<!-- cascade:begin -->\nold\n<!-- cascade:end -->\n")
    argv = ["--render", str(out), "--doc", str(again), "--readme", str(readme_again)]
    assert bench.main(argv) == 0
    assert again.read_text() == f"# Other\n\n{bench.BEGIN}{block}{bench.END}\n"
    assert (
        readme_again.read_text()
        == readme.read_text().split("\n\n", 1)[1].rsplit("\n\n", 1)[0] + "\n"
    )
    assert set(z["non_english_by_language"]) == {
        "German",
        "Spanish",
        "French",
        "Portuguese",
        "Italian",
        "Japanese",
    }


def test_signals_of_mixed_scripts_come_in_reading_order() -> None:
    """Each pattern is searched on its own (Latin-script and Japanese ones alike): their spans
    still come back merged in reading order."""
    from gateway.local.signals import signal_spans

    text = "I was charged twice! ログインできない。 The app crashes, 写真が消えた"
    spans = signal_spans(text)
    kinds = list(dict.fromkeys(kind for kind, _, _ in spans))
    assert kinds == ["money_lost", "lockout", "crash", "data_loss"]
    assert [start for _, start, _ in spans] == sorted(start for _, start, _ in spans)
    assert all(text[start:end].strip() for _, start, end in spans)


def test_literal_prefilter_changes_no_signal(
    eval_sets: dict[str, list[dict[str, object]]],
) -> None:
    """A pattern is searched only in text holding one of its literals: every pattern has
    literals, each literal is in its pattern's every match, and the spans equal those of a
    search of every pattern, on the seed and hand-written reviews and on texts made of the
    literals themselves (where they overlap and sit inside other words)."""
    from gateway.local import signals

    assert signals._literals(r"\bcrash\w*") == {"crash"}
    assert signals._literals(r"\b(?:won'?t|can'?t) (?:open|start)\b") == {"open", "start"}
    assert signals._literals(r"\bcobr\w* (?:dos veces|doble)\b") == {"cobr"}
    assert signals._literals(r"(?i)crash") == frozenset()  # case-folded: never gated
    assert not signals._ALWAYS
    literals = {pattern: signals._literals(pattern) for _, pattern in signals._ORDER}
    regexes = [(kind, re.compile(pattern)) for kind, pattern in signals._ORDER]
    assert all(literals.values())

    def every_pattern(text: str) -> list[tuple[str, int, int]]:
        low = text.lower()
        found: dict[int, tuple[str, re.Match[str]]] = {}
        for kind, regex in regexes:
            for match in map(regex.match, itertools.repeat(low), range(len(low))):
                if match is not None:
                    found.setdefault(match.start(), (kind, match))
        return [
            (kind, start, match.end())
            for start, (kind, match) in sorted(found.items())
            if not signals._NEGATION_RE.search(low, max(0, start - 30), start)
            and not signals._NEGATED_AFTER_RE.match(low, match.end(), match.end() + 12)
        ]

    texts = [e.text for e in load_seed_examples()[::4]]
    texts += [str(r["text"]) for rows in eval_sets.values() for r in rows]
    words = sorted({w for lits in literals.values() for w in lits})
    texts += [" ".join(words[i::7]) + " charged me twice, ログインできない" for i in range(7)]
    texts += ["".join(words[i::5]) for i in range(5)]
    hits = 0
    for text in texts:
        spans = signals.signal_spans(text)
        assert spans == every_pattern(text), text
        every = list(range(len(signals._ORDER)))
        alone = signals._pattern_matches(text.lower(), every)
        together = signals._alternation_matches(text.lower())
        assert {k: (kind, m.span()) for k, (kind, m) in together.items()} == {
            k: (kind, m.span()) for k, (kind, m) in alone.items()
        }
        hits += bool(spans)
    assert hits > len(texts) // 10  # the check saw many signals, not only their absence
    # a text holding every literal takes the one alternation, with the same spans
    dense = " ".join(words) + " and then it crashed, stürzt ständig ab, ログインできない"
    assert signals.signal_spans(dense) == every_pattern(dense)
    # a lone surrogate (valid in a Python str, not in UTF-8) skips the prefilter, not the review
    odd = "the app crashes \ud800 and I was charged twice"
    assert [kind for kind, _, _ in signals.signal_spans(odd)] == ["crash", "money_lost"]
    for _, regex in regexes:  # a match holds one of its pattern's literals
        for text in texts:
            for match in regex.finditer(text.lower()):
                assert any(lit in match.group() for lit in literals[regex.pattern])


def test_word_caches_are_bounded_and_change_no_answer(
    baseline_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The char n-gram columns and the topic's word verdicts are kept per word: a cold model
    and a warm one answer alike, the caches never pass their bound, and a long word (a hostile
    review's) is not kept."""
    from gateway.local import extractive, tfidf

    texts = [e.text for e in load_seed_examples()[:300]]
    texts.append("crash " + "x" * 5_000 + " after the update")
    warm_model = load_tfidf(baseline_dir)
    assert isinstance(warm_model, TfidfLinearModel)
    counters = [
        v._count for v in warm_model._vectorizers if isinstance(v._count, tfidf._CharWbCounter)
    ]
    assert len(counters) == 1
    cold = []
    for text in texts:  # both caches emptied before each review
        counters[0].words.clear()
        extractive._TOKENS.clear()
        cold.append(warm_model.predict(text))
    monkeypatch.setattr(tfidf, "CACHED_WORDS", 64)
    monkeypatch.setattr(extractive, "_TOKENS_MAX", 64)
    for _ in range(2):
        assert [warm_model.predict(t) for t in texts] == cold
        assert 0 < len(counters[0].words) <= 64
        assert 0 < len(extractive._TOKENS) <= 64
    assert max(map(len, counters[0].words)) <= tfidf.CACHED_WORD_CHARS
    assert max(map(len, extractive._TOKENS)) <= extractive._TOKEN_CACHED_CHARS
