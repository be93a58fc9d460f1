"""Every figure of the local model, measured: `make bench-local-model`.

    python -m tools.bench.local_model [--doc docs/local-model.md] [--readme README.md]
        [--out reports/local_model.json] [--render reports/local_model.json]
        [--approaches tfidf-baseline,tfidf-keep-other,tfidf,minilm] [--skip-minilm]
        [--skip-shared] [--minilm-epochs 3]

**The zero-setup model** (the `tfidf-linear` baseline `make serve` trains from the seed
reviews, `training.baseline`), always measured:

* template-disjoint accuracy: trained with the baseline's settings on the seed rows of some
  sentence templates, tested on the rows of the others (`training.seed.template_split`), all
  languages and English; Critical+High recall there; topic token-F1 against the seed rows'
  human topics;
* on the project's hand-labelled sets (`tools.bench.local_eval`, tests/data/local_eval/;
  never trained on), with the baseline trained on the whole seed set: accuracy on the 60
  English reviews, on the non-English set (per language), on the 100-review urgency set; its
  Critical+High recall and per-class precision/recall; crash reports filed as Praise or
  Other; topic and summary rule checks; p50/p99 of one `predict` call pinned to one core with
  one thread.

**The shared data** (`shared/data` beside the repository, when present; `--skip-shared` to
leave it out): the split fixed before any tuning: train on MARC `BOW Dataset.arff` plus the
de-duplicated, augmentation-filtered Huang `dataset_balanced_4000.xlsx` less 20% of it, held
out stratified with seed 20240611. Per approach: MARC `BOW Test.arff` accuracy (Bug Report /
Feature Request only; the model predicts over every category it knows, so "Other" or "Praise"
counts as wrong), Huang-20% macro-F1 over Bug Report, Feature Request, Praise, Other, the same
model's accuracy on the hand-written English and non-English sets and urgency recall, latency
(pinned, over the Huang held-out reviews), size on disk and training time. Approaches:

* `tfidf-baseline`: `training.local.train_tfidf` with the zero-setup baseline's settings
  (`training.baseline.BASELINE_TFIDF`), MARC's "Other" mapped to Other;
* `tfidf-keep-other`: `train-local --approach tfidf` with MARC's "Other" kept;
* `tfidf`: `train-local --approach tfidf` as shipped (MARC "Other" rows left out);
* `multilingual`: `train-local --approach multilingual --with-seed` (the local-multilingual
  extra): the frozen multilingual sentence encoder pooled with tfidf, trained on the same
  split plus the project's seed rows (six categories, seven languages). Run by default when
  the extra is installed.
* `minilm`: `train-local --approach minilm --with-seed` (the local-strong extra; minutes of
  CPU): the English encoder fine-tuned on the English rows, pooled with tfidf trained on every
  row, which alone answers reviews in other languages. Run by default when the extra is
  installed; `--skip-minilm` leaves it out.

Each of `multilingual` and `minilm` is judged against every goal of the strong model.

**The recommended cascade** (`tools.bench.local_cascade`), on the Huang-20% held-out split:
the strongest approach above (`strongest`) first, the LLM below the confidence threshold the
cascade sweep picks for the plan's target accuracy; what is measured and what is simulated is
said there.

With `--doc`, the figures and each goal of the local-model issue, marked met or missed from
its measured figure, replace the block between the `bench-local-model` markers of that file;
with `--readme`, the cascade's recommendation replaces that file's `cascade` block.
Nothing is copied out of the shared data, whose licences are unclear (internal evaluation
only); no model trained on it is kept.
"""

from __future__ import annotations

import os

# one thread everywhere, before numpy / onnxruntime load their thread pools
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TRIAGE_LOCAL_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import replace  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from sklearn.metrics import accuracy_score, f1_score  # noqa: E402

from gateway.local.extractive import STOP_WORDS  # noqa: E402
from gateway.local.loader import LocalModel, load_local_model  # noqa: E402
from gateway.request.triage import DEFAULT_URGENCIES, Triage  # noqa: E402
from loadtest.bench import cpu_model  # noqa: E402
from tools.bench import local_cascade  # noqa: E402
from tools.bench.docblock import markers, write_block  # noqa: E402
from tools.bench.local_eval import (  # noqa: E402
    LANGUAGES,
    SETS,
    accuracy,
    accuracy_by,
    crash_misfiled,
    load_eval_set,
    summary_checks,
    token_f1,
    topic_checks,
    urgency_report,
    urgent_recall,
)
from training.baseline import BASELINE_TFIDF, ensure_baseline_model  # noqa: E402
from training.data import (  # noqa: E402
    Example,
    read_huang_xlsx,
    read_marc_arff,
    stratified_split,
)
from training.ensemble import multilingual_available  # noqa: E402
from training.local import (  # noqa: E402
    _strong_available,
    dir_size,
    measure_latency,
    train_local_examples,
    train_tfidf,
)
from training.seed import load_seed_records, records_to_examples, template_split  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
MARC_TRAIN = DATA / "jha-mahmoud-marc" / "BOW Dataset.arff"
MARC_TEST = DATA / "jha-mahmoud-marc" / "BOW Test.arff"
HUANG = DATA / "huang-gplay" / "dataset_balanced_4000.xlsx"
SPLIT_SEED = 20240611
APPROACHES = ("tfidf-baseline", "tfidf-keep-other", "tfidf", "multilingual", "minilm")
STRONG_APPROACHES = ("multilingual", "minilm")  # judged against the strong model's goals
BEGIN, END = markers("bench-local-model")
COMMAND = "make bench-local-model"

# The goals of the local-model issue.
ZERO_SETUP_ACCURACY = 0.85
ZERO_SETUP_P50_MS = 1.0
STRONG_P50_MS = 5.0
STRONG_MARC = 0.90
STRONG_HUANG = 0.80
STRONG_NON_ENGLISH = 0.80
URGENT_RECALL = 0.80


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _pinned_latency(model: LocalModel, texts: Sequence[str]) -> dict[str, float]:
    """`measure_latency` pinned to one core (training uses all of them)."""
    if not hasattr(os, "sched_setaffinity"):
        return measure_latency(model, texts)
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(cores)})
    try:
        return measure_latency(model, texts, repeat=3)
    finally:
        os.sched_setaffinity(0, cores)


# --------------------------------------------------------------------------------------------
# The hand-labelled sets
# --------------------------------------------------------------------------------------------


def eval_sets() -> dict[str, list[dict[str, Any]]]:
    return {name: load_eval_set(name) for name in SETS}


def on_eval_sets(model: LocalModel, sets: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The model's figures on the hand-labelled sets."""
    preds: dict[str, list[Triage]] = {
        name: [model.predict(r["text"]).triage for r in rows] for name, rows in sets.items()
    }
    all_rows = [r for name in SETS for r in sets[name]]
    all_preds = [p for name in SETS for p in preds[name]]
    urg_rows, urg_preds = sets["urgency"], preds["urgency"]
    report = urgency_report(urg_rows, urg_preds)
    crash_rows = [r for r in all_rows if r["crash"]]
    return {
        "english60_accuracy": accuracy(sets["english"], preds["english"]),
        "non_english_accuracy": accuracy(sets["multilingual"], preds["multilingual"]),
        "non_english_by_language": {
            LANGUAGES[k]: {"accuracy": v[0], "n": v[1]}
            for k, v in accuracy_by(sets["multilingual"], preds["multilingual"], "lang").items()
        },
        "urgency_set_accuracy": accuracy(urg_rows, urg_preds),
        "urgency_set_urgent_recall": urgent_recall(urg_rows, urg_preds),
        "urgency_set_n_urgent": sum(r["urgency"] in ("Critical", "High") for r in urg_rows),
        "urgency_report": {
            k: report[k] for k in (*DEFAULT_URGENCIES, "accuracy", "macro avg") if k in report
        },
        "all_sets_urgent_recall": urgent_recall(all_rows, all_preds),
        "crash_reports": len(crash_rows),
        "crash_misfiled": crash_misfiled(all_rows, all_preds),
        "topic_checks": topic_checks(all_preds, STOP_WORDS),
        "summary_checks": summary_checks(all_rows, all_preds),
        "n": {name: len(rows) for name, rows in sets.items()},
    }


# --------------------------------------------------------------------------------------------
# The zero-setup model
# --------------------------------------------------------------------------------------------


def zero_setup(work: Path, sets: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    records = load_seed_records()
    train, test = template_split(records)
    split_dir = work / "zero-setup-split"
    train_tfidf(records_to_examples(train), split_dir, name="split", config=BASELINE_TFIDF)
    split_model = load_local_model(split_dir)
    preds = [split_model.predict(str(r["text"])).triage for r in test]
    pairs = list(zip(test, preds, strict=True))
    english = [(r, p) for r, p in pairs if r["lang"] == "en"]
    urgent = [(r, p) for r, p in pairs if r["urgency"] in ("Critical", "High")]
    by_lang = accuracy_by(test, preds, "lang")
    out: dict[str, Any] = {
        "split_n_train": len(train),
        "split_n_test": len(test),
        "split_templates_shared": len(
            {r["template"] for r in train} & {r["template"] for r in test}
        ),
        "split_accuracy": statistics.fmean(p.category == r["category"] for r, p in pairs),
        "split_accuracy_english": statistics.fmean(p.category == r["category"] for r, p in english),
        "split_accuracy_non_english": statistics.fmean(
            p.category == r["category"] for r, p in pairs if r["lang"] != "en"
        ),
        "split_by_language": {
            LANGUAGES.get(k, k): {"accuracy": a, "n": n} for k, (a, n) in by_lang.items()
        },
        "split_urgent_recall": statistics.fmean(
            p.urgency in ("Critical", "High") for _, p in urgent
        ),
        "split_topic_f1": statistics.fmean(token_f1(p.topic, str(r["topic"])) for r, p in pairs),
        "split_topic_f1_english": statistics.fmean(
            token_f1(p.topic, str(r["topic"])) for r, p in english
        ),
    }
    baseline = load_local_model(ensure_baseline_model(work / "zero-setup"))
    out["n_seed"] = len(records)
    out.update(on_eval_sets(baseline, sets))
    texts = [r["text"] for name in SETS for r in sets[name]]
    out["latency_ms"] = _pinned_latency(baseline, texts)
    return out


# --------------------------------------------------------------------------------------------
# The shared data
# --------------------------------------------------------------------------------------------


def load_split(*, keep_marc_other: bool) -> tuple[list[Example], list[Example], list[Example]]:
    """(train, MARC test, Huang held-out 20%)."""
    huang_train, huang_test = stratified_split(read_huang_xlsx(HUANG), 0.2, SPLIT_SEED)
    train = read_marc_arff(MARC_TRAIN, keep_other=keep_marc_other) + huang_train
    return train, read_marc_arff(MARC_TEST, keep_other=True), huang_test


def score(model: LocalModel, marc: Sequence[Example], huang: Sequence[Example]) -> dict[str, Any]:
    marc_pred = [model.predict(e.text).triage.category for e in marc]
    huang_pred = [model.predict(e.text).triage.category for e in huang]
    gold_h = [e.category for e in huang]
    labels = sorted(set(gold_h))
    return {
        "marc_test_accuracy": float(accuracy_score([e.category for e in marc], marc_pred)),
        "huang20_macro_f1": float(f1_score(gold_h, huang_pred, labels=labels, average="macro")),
    }


def run_shared(
    approach: str, work: Path, minilm_epochs: float, sets: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    keep_other = approach in ("tfidf-baseline", "tfidf-keep-other")
    train, marc_test, huang_test = load_split(keep_marc_other=keep_other)
    out = work / approach
    n_train = len(train)
    pool_weights: dict[str, float] | None = None
    t0 = time.perf_counter()
    if approach == "tfidf-baseline":
        # as the baseline trains: an urgency on every row; the sets have none and urgency is
        # not scored on them, so a fixed one per category stands in
        urgency = {"Bug Report": "High"}
        rows = [replace(e, urgency=urgency.get(e.category, "Low")) for e in train]
        train_tfidf(rows, out, name=approach, config=BASELINE_TFIDF)
    else:
        options = {"epochs": minilm_epochs} if approach == "minilm" else None
        card = train_local_examples(
            train,
            None,
            out,
            approach=approach if approach in STRONG_APPROACHES else "tfidf",  # type: ignore[arg-type]
            name=approach,
            include_seed=approach in STRONG_APPROACHES,
            progress=lambda m: say(f"  [{approach}] {m}"),
            minilm_options=options,
        )
        n_train = int(card["data"]["n_train"])
        if "members" in card:  # an ensemble: the weights its trainer picked
            pool_weights = {str(m["path"]): float(m["weight"]) for m in card["members"]}
    seconds = time.perf_counter() - t0
    model = load_local_model(out)
    hand = on_eval_sets(model, sets)
    latency = _pinned_latency(model, [e.text for e in huang_test])
    return {
        "approach": approach,
        **score(model, marc_test, huang_test),
        "english60_accuracy": hand["english60_accuracy"],
        "non_english_accuracy": hand["non_english_accuracy"],
        "urgency_set_urgent_recall": hand["urgency_set_urgent_recall"],
        "crash_misfiled": hand["crash_misfiled"],
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "size_mb": round(dir_size(out) / 1e6, 2),
        "train_s": round(seconds, 1),
        "n_train": n_train,
        "pool_weights": pool_weights,
    }


# --------------------------------------------------------------------------------------------
# Goals and the doc block
# --------------------------------------------------------------------------------------------


def strongest(shared: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The shared-data row of the strong model the goals judge: best MARC test accuracy."""
    return max(shared, key=lambda r: r["marc_test_accuracy"], default=None)


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**met**" if ok else "**missed**")


def goals(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(goal, target, measured, verdict) for each goal of the local-model issue."""
    z = result["zero_setup"]
    rows: list[tuple[str, str, str, str]] = []

    def add(goal: str, target: str, measured: str, ok: bool | None) -> None:
        rows.append((goal, target, measured, _verdict(ok)))

    add(
        "Zero-setup: accuracy, template-disjoint seed split (all languages)",
        f">= {ZERO_SETUP_ACCURACY:.2f}",
        f"{z['split_accuracy']:.3f} (English {z['split_accuracy_english']:.3f})",
        z["split_accuracy"] >= ZERO_SETUP_ACCURACY,
    )
    add(
        "Zero-setup: accuracy, 60 hand-written English reviews",
        f">= {ZERO_SETUP_ACCURACY:.2f}",
        f"{z['english60_accuracy']:.3f}",
        z["english60_accuracy"] >= ZERO_SETUP_ACCURACY,
    )
    add(
        "Zero-setup: no crash report called Praise (or Other), any language",
        "0",
        f"{len(z['crash_misfiled'])} of {z['crash_reports']}",
        not z["crash_misfiled"],
    )
    lat = z["latency_ms"]["p50"]
    add(
        "Zero-setup: p50 predict, one thread",
        f"<= {ZERO_SETUP_P50_MS:g} ms",
        f"{lat:.3f} ms",
        lat <= ZERO_SETUP_P50_MS,
    )
    add(
        "Urgency: Critical+High recall, 100-review set (zero-setup)",
        f">= {URGENT_RECALL:.2f}",
        f"{z['urgency_set_urgent_recall']:.3f} ({z['urgency_set_n_urgent']} urgent)",
        z["urgency_set_urgent_recall"] >= URGENT_RECALL,
    )
    add("Urgency: per-class precision/recall reported", "reported", "below", True)
    strong_rows = [r for r in result.get("shared") or [] if r["approach"] in STRONG_APPROACHES]
    for strong in strong_rows or [None]:
        name = f"Strong model `{strong['approach']}`" if strong else "Strong model"
        add(
            f"{name}: MARC test accuracy",
            f">= {STRONG_MARC:.2f}",
            f"{strong['marc_test_accuracy']:.3f}" if strong else "-",
            strong["marc_test_accuracy"] >= STRONG_MARC if strong else None,
        )
        add(
            f"{name}: Huang-20% macro-F1",
            f">= {STRONG_HUANG:.2f}",
            f"{strong['huang20_macro_f1']:.3f}" if strong else "-",
            strong["huang20_macro_f1"] >= STRONG_HUANG if strong else None,
        )
        add(
            f"{name}: p50 predict, one thread",
            f"<= {STRONG_P50_MS:g} ms",
            f"{strong['p50_ms']:.2f} ms" if strong else "-",
            strong["p50_ms"] <= STRONG_P50_MS if strong else None,
        )
        add(
            f"{name}: non-English set accuracy",
            f">= {STRONG_NON_ENGLISH:.2f}",
            f"{strong['non_english_accuracy']:.3f}" if strong else "-",
            strong["non_english_accuracy"] >= STRONG_NON_ENGLISH if strong else None,
        )
    add(
        "Strong model: reviews of other apps (a set the project does not hold)",
        ">= 0.85",
        "-",
        None,
    )
    t = z["topic_checks"]
    add(
        "Topic: 1-4 words, not stop words only (all hand-written sets)",
        "all",
        f"{t['one_to_four_words']:.3f} / {t['not_stop_words_only']:.3f}",
        t["one_to_four_words"] == 1.0 and t["not_stop_words_only"] == 1.0,
    )
    add(
        "Topic: token-F1 vs the seed set's human topics, template-disjoint split",
        "reported",
        f"{z['split_topic_f1']:.3f} (English {z['split_topic_f1_english']:.3f})",
        True,
    )
    s = z["summary_checks"]
    add(
        "Summary: <= 25 words, third person (English), question kept, not the first sentence",
        "all",
        f"{s['within_25_words']:.3f} / {s['third_person']:.3f} / {s['question_kept']:.3f}"
        f" / {s['not_first_sentence']:.3f}",
        all(
            s[k] == 1.0
            for k in ("within_25_words", "third_person", "question_kept", "not_first_sentence")
        ),
    )
    return rows


def render(result: dict[str, Any]) -> str:
    z = result["zero_setup"]
    lines = [
        BEGIN,
        f"Measured by `{COMMAND}` (`{result['command']}`) on {result['machine']},"
        f" {result['date']}. Written by the command; do not edit by hand.",
        "",
        "| goal | target | measured | |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {g} | {t} | {m} | {v} |" for g, t, m, v in goals(result)]
    lines += [
        "",
        "**Zero-setup model** (`tfidf-linear`, baseline settings). Template-disjoint split: "
        f"{z['split_n_train']} seed rows to train, {z['split_n_test']} to test, "
        f"{z['split_templates_shared']} templates shared; non-English rows "
        f"{z['split_accuracy_non_english']:.3f}; Critical+High recall "
        f"{z['split_urgent_recall']:.3f}. Hand-labelled sets (tests/data/local_eval/, never "
        f"trained on; the baseline trained on all {z['n_seed']} seed rows): urgency set category "
        f"accuracy {z['urgency_set_accuracy']:.3f}; Critical+High recall over all three sets "
        f"{z['all_sets_urgent_recall']:.3f}; p50 {z['latency_ms']['p50']:.3f} ms, p99 "
        f"{z['latency_ms']['p99']:.3f} ms (one core, one thread, {z['latency_ms']['n']} calls).",
        "",
        "| non-English set | " + " | ".join(z["non_english_by_language"]) + " | all |",
        "| --- |" + " --- |" * (len(z["non_english_by_language"]) + 1),
        "| zero-setup accuracy | "
        + " | ".join(
            f"{v['accuracy']:.3f} (n={v['n']})" for v in z["non_english_by_language"].values()
        )
        + f" | {z['non_english_accuracy']:.3f} |",
        "",
        "Urgency on the 100-review set (zero-setup; `sklearn.metrics.classification_report`):",
        "",
        "| urgency | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
    ]
    rep = z["urgency_report"]
    for k in (*DEFAULT_URGENCIES, "macro avg"):
        if k in rep:
            r = rep[k]
            lines.append(
                f"| {k} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1-score']:.3f} |"
                f" {int(r['support'])} |"
            )
    s = z["summary_checks"]
    lines += [
        "",
        f"Summary checks over {s['n']} reviews: longest {s['max_words']} words; third person"
        f" over the {s['n_english']} English ones (non-English clauses are quoted as written);"
        f" question kept over {s['n_questions']} questions.",
    ]
    shared = result.get("shared")
    if shared:
        lines += [
            "",
            "**Shared data** (MARC + 80% Huang to train; see the split above; `multilingual`"
            " and `minilm` also train on the seed rows). The hand-written columns are the same"
            " model on the project's sets (the models trained on the shared data alone never"
            " see a Question or Complaint row, so they cannot reach the 6-category figures).",
            "",
            "| approach | train rows | MARC test acc | Huang-20% macro-F1 | English-60 acc"
            " | non-English acc | urgent recall | p50 ms | p99 ms | size MB | train s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in shared:
            lines.append(
                f"| `{r['approach']}` | {r['n_train']} | {r['marc_test_accuracy']:.3f} |"
                f" {r['huang20_macro_f1']:.3f} | {r['english60_accuracy']:.3f} |"
                f" {r['non_english_accuracy']:.3f} | {r['urgency_set_urgent_recall']:.3f} |"
                f" {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['size_mb']:.1f} |"
                f" {r['train_s']:.0f} |"
            )
        cascade = result.get("cascade")
        if cascade is not None and cascade["best"] is not None:
            lines += local_cascade.doc_lines(cascade, result["cascade_approach"])
    else:
        lines += ["", f"Shared data: {result.get('shared_note', 'not measured')}."]
    lines.append(END)
    return "\n".join(lines)


def _machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--approaches",
        default=None,
        help="shared-data approaches (default: the tfidf ones, and multilingual and minilm "
        "with their extras)",
    )
    parser.add_argument("--skip-minilm", action="store_true", help="leave the encoder out")
    parser.add_argument("--skip-shared", action="store_true", help="leave the shared data out")
    parser.add_argument("--minilm-epochs", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    parser.add_argument("--doc", type=Path, default=None, help="rewrite this file's block")
    parser.add_argument(
        "--readme", type=Path, default=None, help="rewrite this file's cascade block"
    )
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        help="measure nothing: write --doc and --readme from this earlier run's --out JSON",
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        write_docs(json.loads(args.render.read_text(encoding="utf-8")), args.doc, args.readme)
        return 0
    if args.approaches is None:
        approaches = ["tfidf-baseline", "tfidf-keep-other", "tfidf"]
        if multilingual_available():
            approaches.append("multilingual")
        if _strong_available() and not args.skip_minilm:
            approaches.append("minilm")
    else:
        approaches = [a.strip() for a in args.approaches.split(",") if a.strip()]
        if args.skip_minilm:
            approaches = [a for a in approaches if a != "minilm"]
    unknown = sorted(set(approaches) - set(APPROACHES))
    if unknown:
        parser.error(f"unknown approaches {unknown} (known: {', '.join(APPROACHES)})")
    command = (
        "python -m tools.bench.local_model"
        + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    )
    result: dict[str, Any] = {
        "command": command,
        "machine": _machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    sets = eval_sets()
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        say("== zero-setup model")
        result["zero_setup"] = zero_setup(Path(tmp), sets)
        if args.skip_shared:
            result["shared_note"] = "left out (--skip-shared)"
        elif not (MARC_TRAIN.is_file() and HUANG.is_file()):
            result["shared_note"] = "not found beside the repository"
        else:
            result["shared"] = []
            for approach in approaches:
                say(f"== {approach}")
                row = run_shared(approach, Path(tmp), args.minilm_epochs, sets)
                say(json.dumps(row))
                result["shared"].append(row)
            cheap = strongest(result["shared"])
            if cheap is not None:
                say(f"== recommended cascade ({cheap['approach']} first)")
                huang_test = load_split(keep_marc_other=False)[2]
                work = Path(tmp)
                result["cascade"] = local_cascade.measure(
                    work / cheap["approach"], huang_test, work
                )
                result["cascade_approach"] = cheap["approach"]
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    write_docs(result, args.doc, args.readme)
    return 0


def write_docs(result: dict[str, Any], doc: Path | None, readme: Path | None) -> None:
    """Print the figures' block and write it into `doc`, and the cascade block into `readme`
    (each when given), from a run's result (measured now, or read back with `--render`)."""
    block = render(result)
    print(block)
    if doc is not None:
        write_block(doc, block, BEGIN, END)
    if readme is not None:
        stamp = f"by `{COMMAND}` on {result['machine']}, {result['date']}"
        text = local_cascade.readme_block(
            result.get("cascade"), result.get("cascade_approach"), stamp
        )
        write_block(readme, text, local_cascade.README_BEGIN, local_cascade.README_END)


if __name__ == "__main__":
    raise SystemExit(main())
