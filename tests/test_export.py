"""Import labelled reviews, then export chat fine-tuning data: 1,000 corrected pairs in a real
Redis, a stratified leak-free split, balancing, the chat format checked line by line."""

from __future__ import annotations

import asyncio
import csv
import json
import random
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)
from pydantic import TypeAdapter
from rich.console import Console

from gateway.infra import redis_keys
from gateway.pairs.corrections import add_correction, taxonomy_lookup
from gateway.pairs.record import PairRecord
from gateway.request.triage import DEFAULT_TAXONOMY, system_prompt, user_prompt
from gateway.request.validate import validate_triage
from tests.servers import clean_env, run_module
from training.data import DataError
from training.export import PREFIX_CHARS, export_dataset, normalise
from training.importer import import_labelled, write_records

STREAM = "triage:pairs"
COUNTS = {
    "Bug Report": 300,
    "Feature Request": 250,
    "Complaint": 180,
    "Praise": 120,
    "Question": 90,
    "Other": 60,
}
PHRASES = {
    "Bug Report": ["the app crashes when I open the {x} screen and loses my draft"],
    "Feature Request": ["please add a way to export my {x} history as a spreadsheet"],
    "Complaint": ["the new {x} layout is confusing and the subscription is too pricey"],
    "Praise": ["really love how smooth the {x} feature feels after the latest update"],
    "Question": ["how do I change the {x} settings so notifications stop at night"],
    "Other": ["I mostly use this on my tablet while commuting, the {x} part is fine"],
}
WORDS = ["budget", "photo", "calendar", "playlist", "recipe", "map", "wallet", "chat", "story"]
OPENERS = ["Honestly,", "Update:", "Hi team,", "So", "Well", "Ok"]
MESSAGE_TYPES: dict[str, TypeAdapter[Any]] = {
    "system": TypeAdapter(ChatCompletionSystemMessageParam),
    "user": TypeAdapter(ChatCompletionUserMessageParam),
    "assistant": TypeAdapter(ChatCompletionAssistantMessageParam),
}


def labelled_rows(seed: int = 5) -> list[dict[str, Any]]:
    """1,000 rows, skewed classes; 40 exact near-duplicates (case/punctuation changed) and 30
    rows sharing their first 60 normalised characters with an earlier row."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    plan = [c for c, n in COUNTS.items() for _ in range(n)]
    rng.shuffle(plan)
    for i, category in enumerate(plan):
        if i >= 100 and i % 25 == 0:  # 36 of these
            src = rows[rng.randrange(len(rows))]
            rows.append({**src, "text": src["text"].upper().replace(",", " ,") + "!!"})
            continue
        if i >= 100 and i % 25 == 7:  # 36 of these
            src = rows[rng.randrange(len(rows))]
            rows.append({**src, "text": src["text"][:75] + " ... and then it got worse again"})
            continue
        phrase = rng.choice(PHRASES[category]).format(x=rng.choice(WORDS))
        text = f"{rng.choice(OPENERS)} review {i}: {phrase}. {rng.choice(WORDS)} {i * 7919}"
        row: dict[str, Any] = {"text": text, "category": category.lower()}
        if i % 3:
            row["urgency"] = rng.choice(DEFAULT_TAXONOMY.urgencies)
        if i % 4 == 0:
            row.update(topic=f"{category} {i}", summary=f"User writes about {category}.")
        if i % 5 == 0:
            row.update(review_id=f"ext-{i}", app="Shop", rating=1 + i % 5)
        rows.append(row)
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_line(line: dict[str, Any]) -> dict[str, str]:
    """One fine-tuning line: OpenAI's chat message types, roles in order, valid triage."""
    assert set(line) == {"messages"}
    messages = line["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    for m in messages:
        assert set(m) == {"role", "content"} and isinstance(m["content"], str) and m["content"]
        MESSAGE_TYPES[m["role"]].validate_python(m)
    assert messages[0]["content"] == system_prompt(DEFAULT_TAXONOMY)
    checked = validate_triage(messages[2]["content"], DEFAULT_TAXONOMY)
    assert not checked.repaired  # the exact JSON object, nothing to fix
    return checked.triage.to_json_dict()


def review_text(user_content: str) -> str:
    return user_content.split("Review:\n", 1)[-1]


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def served_pair(i: int, text: str, category: str, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": f"live-{i}",
        "served_request_id": None,
        "shadow": False,
        "review_id": f"live-review-{i}",
        "text": text,
        "app": "Shop",
        "rating": 3,
        "experiment": "triage",
        "variant": "control",
        "model": "openrouter/openai/gpt-4o",
        "triage": {"category": category, "urgency": "Low", "topic": "T", "summary": "S."},
        "confidence": None,
        "ts": 1_750_000_000.0 + i,
        **extra,
    }


async def test_export_1000_corrected_pairs(aredis: aioredis.Redis, tmp: Path) -> None:
    rows = labelled_rows()
    assert len(rows) == 1000
    assert await import_labelled(aredis, STREAM, write_jsonl(tmp / "labels.jsonl", rows)) == 1000

    # live traffic around it: uncorrected pairs and a shadow answer are never exported; a
    # confirmation (changed=false) is, unless include_confirmed=False
    live = [served_pair(i, f"Live uncorrected review text number {i}", "Praise") for i in range(5)]
    confirmed = served_pair(9, "Checkout button does nothing when I tap it", "Bug Report")
    shadow = {
        **confirmed,
        "request_id": "live-9:shadow",
        "served_request_id": "live-9",
        "shadow": True,
    }
    seeded = [PairRecord.from_dict(r) for r in (*live, confirmed, shadow)]
    await write_records(aredis, STREAM, seeded)
    lookup = taxonomy_lookup(None)
    everything_checked = ["category", "urgency", "topic", "summary"]
    body = {
        "request_id": "live-9",
        "category": "bug report",
        "urgency": "low",
        "reviewed_fields": everything_checked,
    }
    stored = await add_correction(aredis, STREAM, lookup, {**body, "corrected_by": "r"})
    assert stored["changed"] is False
    # a re-corrected imported pair: the last correction wins
    first = await anext(p async for p in _pairs(aredis) if p.variant == "import")
    for category in ("Other", "Question"):
        await add_correction(
            aredis,
            STREAM,
            lookup,
            {**body, "request_id": first.request_id, "category": category, "corrected_by": "r"},
        )

    console = Console(record=True, width=100)
    stats = await export_dataset(aredis, STREAM, tmp / "out", console=console)
    table = console.export_text()
    assert "Bug Report" in table and "val share" in table
    train = read_jsonl(tmp / "out" / "train.jsonl")
    val = read_jsonl(tmp / "out" / "val.jsonl")
    assert stats["train"] == len(train) and stats["val"] == len(val)
    assert len(train) + len(val) == 1001
    assert stats["counts"]["skipped_uncorrected"] == 5 and stats["counts"]["skipped_shadow"] == 1
    assert (
        json.loads((tmp / "out" / "stats.json").read_text())["per_category"]
        == (stats["per_category"])
    )
    print(json.dumps({k: stats[k] for k in ("train", "val", "near_duplicate_groups")}))
    print(json.dumps(stats["per_category"]))

    # stratified: every category's val share within 3 points of 20%
    by_side: dict[str, Counter[str]] = {"train": Counter(), "val": Counter()}
    texts: dict[str, set[str]] = {"train": set(), "val": set()}
    for side, lines in (("train", train), ("val", val)):
        for line in lines:
            triage = check_line(line)
            by_side[side][triage["category"]] += 1
            texts[side].add(review_text(line["messages"][1]["content"]))
    for category in DEFAULT_TAXONOMY.categories:
        total = by_side["train"][category] + by_side["val"][category]
        assert abs(by_side["val"][category] / total - 0.2) <= 0.03, (category, by_side)

    # leak-free: no normalised text, and no 60-character normalised prefix, on both sides
    norm = {side: {normalise(t) for t in texts[side]} for side in texts}
    assert not norm["train"] & norm["val"]
    prefixes = {side: {n[:PREFIX_CHARS] for n in norm[side]} for side in norm}
    assert not prefixes["train"] & prefixes["val"]
    assert stats["near_duplicate_groups"] < 1001 - 50  # the planted duplicates were grouped

    everything = {review_text(ln["messages"][1]["content"]): ln for ln in train + val}
    assert not any(t.startswith("Live uncorrected") for t in everything)
    recorrected = json.loads(everything[first.text]["messages"][2]["content"])
    assert recorrected["category"] == "Question"
    with_app = next(r for r in rows if r.get("app"))
    user = user_prompt(with_app["text"], with_app["app"], with_app["rating"])
    assert any(ln["messages"][1]["content"] == user for ln in train + val)
    no_urgency = next(r for r in rows if "urgency" not in r and "topic" not in r)
    answer = json.loads(everything[no_urgency["text"]]["messages"][2]["content"])
    assert answer["urgency"] == "Medium" and answer["topic"] and answer["summary"].endswith(".")

    # same seed, same files
    again = await export_dataset(aredis, STREAM, tmp / "again", console=Console(file=None))
    assert (tmp / "again" / "train.jsonl").read_bytes() == (
        tmp / "out" / "train.jsonl"
    ).read_bytes()
    assert again["val"] == stats["val"]

    # include_confirmed=False drops the confirmation, keeps imported labels
    strict = await export_dataset(
        aredis, STREAM, tmp / "strict", include_confirmed=False, console=console
    )
    assert strict["train"] + strict["val"] == 1000
    assert strict["counts"]["skipped_confirmed"] == 1

    # balance: every category capped at max(2 x smallest, 50); the split stays stratified
    balanced = await export_dataset(aredis, STREAM, tmp / "bal", balance=True, console=console)
    sizes = {c: v["train"] + v["val"] for c, v in balanced["per_category"].items()}
    assert balanced["balance_cap"] == max(2 * min(sizes.values()), 50)
    assert max(sizes.values()) <= balanced["balance_cap"]
    assert max(sizes.values()) <= 2 * min(sizes.values())
    for c, v in balanced["per_category"].items():
        assert abs(v["val"] / (v["train"] + v["val"]) - 0.2) <= 0.03, (c, v)
    bal_lines = read_jsonl(tmp / "bal" / "train.jsonl") + read_jsonl(tmp / "bal" / "val.jsonl")
    assert len(bal_lines) == balanced["train"] + balanced["val"]
    print(json.dumps({"balanced": balanced["per_category"], "cap": balanced["balance_cap"]}))


async def _pairs(client: aioredis.Redis) -> AsyncIterator[PairRecord]:
    from gateway.pairs.pairstore import iter_pairs

    async for pair in iter_pairs(client, STREAM):
        yield pair


async def test_import_rejects_unknown_labels_with_line_numbers(
    aredis: aioredis.Redis, tmp: Path
) -> None:
    rows = [
        {"text": "Crashes on launch", "category": "BUG REPORT"},
        {"text": "Love it", "category": "praise", "urgency": "low"},
        {"text": "What is this", "category": "Spam"},
    ]
    with pytest.raises(DataError, match=r"labels\.jsonl:3: category 'Spam'"):
        await import_labelled(aredis, STREAM, write_jsonl(tmp / "labels.jsonl", rows))
    bad_urgency = [{"text": "Slow", "category": "Complaint", "urgency": "someday"}]
    with pytest.raises(DataError, match=r":1: urgency"):
        await import_labelled(aredis, STREAM, write_jsonl(tmp / "u.jsonl", bad_urgency))
    assert await aredis.xlen(STREAM) == 0  # nothing written from a bad file

    path = tmp / "labels.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["text", "category", "urgency", "app", "rating"])
        writer.writeheader()
        writer.writerow({"text": "Sync fails. Every time.", "category": "bug report"})
        writer.writerow({"text": "Add widgets", "category": "Feature Request", "rating": "4"})
    assert await import_labelled(aredis, STREAM, path, corrected_by="csv") == 2
    pairs = [p async for p in _pairs(aredis)]
    assert [p.triage.category for p in pairs] == ["Bug Report", "Feature Request"]
    assert pairs[0].triage.urgency == "Medium"
    assert pairs[0].triage.summary == "Sync fails."
    assert pairs[0].triage.topic == "Sync Fails Every Time"
    assert pairs[1].rating == 4 and pairs[1].model == "human"


def cli(tmp: Path, redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m cli ARGS` on this Redis, with its data directory under `tmp`."""
    env = clean_env(GATEWAY_REDIS_URL=redis_url, GATEWAY_DATA_DIR=str(tmp / "data"))
    return run_module("cli", *args, env=env, timeout=60)


def test_cli_import_and_export(tmp: Path, redis_url: str) -> None:
    rows = labelled_rows()[:200]
    done = cli(tmp, redis_url, "import", str(write_jsonl(tmp / "l.jsonl", rows)))
    assert done.returncode == 0, done.stderr
    assert "imported 200" in done.stdout
    done = cli(tmp, redis_url, "export", "--out", str(tmp / "cli"), "--balance", "--seed", "7")
    assert done.returncode == 0, done.stderr
    stats = json.loads((tmp / "cli" / "stats.json").read_text())
    assert stats["seed"] == 7 and stats["balance"] is True and "val share" in done.stdout
    lines = read_jsonl(tmp / "cli" / "train.jsonl") + read_jsonl(tmp / "cli" / "val.jsonl")
    assert len(lines) == stats["train"] + stats["val"] > 0
    for line in lines:
        check_line(line)
    bad = write_jsonl(tmp / "bad.jsonl", [{"text": "x", "category": "Nonsense"}])
    done = cli(tmp, redis_url, "import", str(bad))
    assert done.returncode == 2 and "bad.jsonl:1" in done.stderr


async def test_export_leaves_out_unreviewed_fields(
    aredis: aioredis.Redis, tmp: Path, redis_url: str
) -> None:
    """Only corrections whose four answer fields a reviewer confirmed or changed are written;
    the rest are counted in stats.json, and `--allow-unreviewed-fields` keeps them."""
    texts = {
        "all": "The app crashes when I rotate the screen in the editor",
        "two": "Please add a dark mode to the reading view of the app",
        "topic": "How do I move my saved recipes to a new phone?",
        "legacy": "Love the new widgets, they make mornings easier",
        "legacy-import": "Sync to the tablet loses notes written offline",
    }
    pairs = [
        PairRecord.from_dict(served_pair(i, text, "Other", request_id=name))
        for i, (name, text) in enumerate(texts.items())
    ]
    await write_records(aredis, STREAM, pairs)
    lookup = taxonomy_lookup(None)

    async def correct(request_id: str, **extra: Any) -> dict[str, Any]:
        body = {"request_id": request_id, "corrected_by": "r", **extra}
        return dict(await add_correction(aredis, STREAM, lookup, body))

    # all four given: all reviewed (the default for a client that sends them)
    full = await correct(
        "all", category="Bug Report", urgency="High", topic="Editor crash", summary="Crashes."
    )
    assert full["fields"] == {
        "category": "changed",
        "urgency": "changed",
        "topic": "changed",
        "summary": "changed",
    }
    # category and urgency only: the model's topic and summary stay unreviewed
    two = await correct("two", category="Feature Request", urgency="Low")
    assert two["fields"]["topic"] == two["fields"]["summary"] == "unreviewed"
    assert two["fields"]["urgency"] == "confirmed"
    # the client says it checked the topic but not the summary
    topic = await correct(
        "topic",
        category="Question",
        urgency="Low",
        reviewed_fields=["category", "urgency", "topic"],
    )
    assert topic["fields"]["topic"] == "confirmed" and topic["fields"]["summary"] == "unreviewed"
    # stored before `fields` existed: category/urgency reviewed, topic/summary not (imports:
    # the labelled file's answer, all four)
    for rid, source in (("legacy", "review"), ("legacy-import", "import")):
        old = {**two, "id": f"old-{rid}", "request_id": rid, "source": source}
        del old["fields"]
        await aredis.rpush(redis_keys.corrections(rid), json.dumps(old))

    await export_dataset(aredis, STREAM, tmp / "strict", console=Console(file=None))
    lines = read_jsonl(tmp / "strict" / "train.jsonl") + read_jsonl(tmp / "strict" / "val.jsonl")
    written = {review_text(ln["messages"][1]["content"]) for ln in lines}
    assert written == {texts["all"], texts["legacy-import"]}
    counts = json.loads((tmp / "strict" / "stats.json").read_text())["counts"]
    assert counts["skipped_unreviewed_fields"] == 3
    assert counts["unreviewed_topic"] == 2 and counts["unreviewed_summary"] == 3
    assert "skipped_uncorrected" not in counts  # every pair here has a correction
    print(json.dumps({k: v for k, v in counts.items() if "unreviewed" in k}))

    loose_args = ("export", "--out", str(tmp / "loose"), "--allow-unreviewed-fields")
    done = await asyncio.to_thread(cli, tmp, redis_url, *loose_args)
    assert done.returncode == 0, done.stderr
    loose = json.loads((tmp / "loose" / "stats.json").read_text())
    assert loose["train"] + loose["val"] == 5
    assert loose["filters"]["allow_unreviewed_fields"] is True
    assert "skipped_unreviewed_fields" not in loose["counts"]
