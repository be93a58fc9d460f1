"""Export corrected pairs as chat fine-tuning data: `train.jsonl`, `val.jsonl`, `stats.json`.

Each line is `{"messages": [system, user, assistant]}`: the classify call's own system prompt
(`gateway.request.triage.system_prompt` of the pair's experiment taxonomy), the user prompt
built from the review (`gateway.request.triage.user_prompt`) and the corrected triage as compact
JSON. That is the chat format OpenAI and Together fine-tuning accept.

What is exported: served pairs (never shadow answers), each request_id once, that have at
least one correction; the last correction wins. Uncorrected pairs are not exported (a model
answer nobody checked is not a label). `include_confirmed=False` also drops confirmations
(corrections equal to the model answer, `changed: false`); imported labels are kept either way.
Eval pairs (`purpose: "eval"`, logged by `eval --gateway` forcing a variant) are left out and
counted (`skipped_eval`) unless `include_eval=True`.
A correction is exported only when all four answer fields (category, urgency, topic, summary)
were confirmed or changed by the reviewer (`gateway.pairs.corrections.field_status`): one that
kept the model's topic or summary unchecked is left out and counted (`skipped_unreviewed_fields`,
and `unreviewed_<field>` per field), unless `allow_unreviewed_fields=True`.

The split is stratified by category and leak-free: texts are normalised (lower case,
non-alphanumerics removed, spaces collapsed) and texts with the same normalised form, or the
same first `PREFIX_CHARS` normalised characters, form one near-duplicate group, which lands
wholly in train or in val. Groups are taken in a seeded random order per category and go to
val while that brings the category's val count closer to its target share.

`balance=True` caps each category at `max(BALANCE_MULTIPLE x the smallest category,
BALANCE_FLOOR)` examples (2x, floor 50), dropping whole near-duplicate groups at random (seeded)
from the larger categories: the class mix stays within 2:1 without letting one tiny class
shrink the whole set.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from rich.console import Console
from rich.table import Table

from gateway.infra.settings import Settings
from gateway.pairs import pairstore
from gateway.pairs.corrections import (
    Correction,
    TaxonomyFor,
    last_corrections,
    taxonomy_lookup,
    unreviewed_fields,
)
from gateway.pairs.record import PairRecord
from gateway.request.triage import Triage, system_prompt, user_prompt

PREFIX_CHARS = 60
BALANCE_MULTIPLE = 2
BALANCE_FLOOR = 50
CHUNK = 500

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
T = TypeVar("T")


class NothingToExport(Exception):
    """No pair passed the filters (`export_dataset(empty_ok=False)`): nothing was written."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts
        read = counts.get("pairs_read", 0)
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "pairs_read")
        where = f"{read} pairs read" + (f" ({skipped})" if skipped else "")
        super().__init__(f"no labelled example to export: {where}; nothing written")


def normalise(text: str) -> str:
    """Lower case, non-alphanumerics removed, spaces collapsed (near-duplicate detection)."""
    return " ".join(_NON_ALNUM.sub(" ", text.lower()).split())


@dataclass(frozen=True, slots=True)
class Labelled:
    request_id: str
    text: str
    app: str | None
    rating: int | None
    experiment: str
    triage: Triage

    @property
    def category(self) -> str:
        return self.triage.category


def to_chat(item: Labelled, taxonomy_for: TaxonomyFor) -> dict[str, Any]:
    """One fine-tuning line: system prompt, user prompt, the triage as the assistant answer."""
    answer = orjson.dumps(item.triage.to_json_dict()).decode()
    return {
        "messages": [
            {"role": "system", "content": system_prompt(taxonomy_for(item.experiment))},
            {"role": "user", "content": user_prompt(item.text, item.app, item.rating)},
            {"role": "assistant", "content": answer},
        ]
    }


def near_duplicate_groups(texts: list[str]) -> list[list[int]]:
    """Indices grouped so that texts with the same normalised form, or the same first
    `PREFIX_CHARS` normalised characters, share a group (union-find over both keys)."""
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_by_key: dict[str, int] = {}
    for i, text in enumerate(texts):
        norm = normalise(text)
        for key in (f"t:{norm}", f"p:{norm[:PREFIX_CHARS]}"):
            j = first_by_key.setdefault(key, i)
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(texts)):
        groups[find(i)].append(i)
    return list(groups.values())


def _group_category(group: list[int], items: list[Labelled]) -> str:
    return Counter(items[i].category for i in group).most_common(1)[0][0]


def _by_category(groups: list[list[int]], items: list[Labelled]) -> dict[str, list[list[int]]]:
    out: dict[str, list[list[int]]] = defaultdict(list)
    for group in groups:
        out[_group_category(group, items)].append(group)
    return dict(sorted(out.items()))


def balance_groups(
    groups: list[list[int]], items: list[Labelled], rng: random.Random
) -> tuple[list[list[int]], int]:
    """Cap every category (see the module docstring); returns (kept groups, the cap)."""
    by_cat = _by_category(groups, items)
    sizes = {c: sum(len(g) for g in gs) for c, gs in by_cat.items()}
    if not sizes:
        return [], 0
    cap = max(BALANCE_MULTIPLE * min(sizes.values()), BALANCE_FLOOR)
    kept: list[list[int]] = []
    for cat_groups in by_cat.values():
        order = list(cat_groups)
        rng.shuffle(order)
        total = 0
        for group in order:
            if total + len(group) <= cap:
                kept.append(group)
                total += len(group)
    return kept, cap


def split_groups(
    groups: list[list[int]], items: list[Labelled], train_share: float, rng: random.Random
) -> tuple[list[int], list[int]]:
    """Stratified, group-preserving split; returns (train indices, val indices)."""
    train: list[int] = []
    val: list[int] = []
    for cat_groups in _by_category(groups, items).values():
        order = list(cat_groups)
        rng.shuffle(order)
        target = round(sum(len(g) for g in order) * (1.0 - train_share))
        in_val = 0
        for group in order:
            if abs(in_val + len(group) - target) < abs(in_val - target):
                val.extend(group)
                in_val += len(group)
            else:
                train.extend(group)
    return train, val


def _since_ts(since: datetime | str | float | None) -> float | None:
    if since is None or isinstance(since, int | float):
        return since
    when = datetime.fromisoformat(since) if isinstance(since, str) else since
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _labelled(pair: PairRecord, correction: Correction) -> Labelled | None:
    model = pair.triage
    try:
        triage = Triage(
            category=correction["category"],
            urgency=correction["urgency"],
            topic=correction.get("topic") or model.topic,
            summary=correction.get("summary") or model.summary,
        )
    except (KeyError, ValueError):
        return None
    rating = pair.rating
    return Labelled(
        request_id=pair.request_id,
        text=pair.text,
        app=pair.app,
        rating=rating if isinstance(rating, int) else None,
        experiment=pair.experiment,
        triage=triage,
    )


async def collect(
    redis: aioredis.Redis,
    stream: str,
    *,
    since: datetime | str | float | None = None,
    experiment: str | None = None,
    include_confirmed: bool = True,
    allow_unreviewed_fields: bool = False,
    include_eval: bool = False,
) -> tuple[list[Labelled], Counter[str]]:
    """The labelled examples of the pair log, and counts of what was read and skipped."""
    cutoff = _since_ts(since)
    counts: Counter[str] = Counter()
    out: list[Labelled] = []
    batch: list[PairRecord] = []

    async def flush() -> None:
        last = await last_corrections(redis, [p.request_id for p in batch])
        for pair in batch:
            correction = last.get(pair.request_id)
            if correction is None:
                counts["skipped_uncorrected"] += 1
                continue
            confirmed = not correction.get("changed") and correction.get("source") != "import"
            if confirmed and not include_confirmed:
                counts["skipped_confirmed"] += 1
                continue
            unchecked = unreviewed_fields(correction)
            if unchecked and not allow_unreviewed_fields:
                counts["skipped_unreviewed_fields"] += 1
                counts.update(f"unreviewed_{name}" for name in unchecked)
                continue
            item = _labelled(pair, correction)
            if item is None or not item.text:
                counts["skipped_invalid"] += 1
                continue
            counts["confirmed" if confirmed else "corrected"] += 1
            out.append(item)
        batch.clear()

    async for pair in pairstore.iter_pairs(redis, stream, dedupe=True, with_archive=True):
        counts["pairs_read"] += 1
        if pair.shadow or not pair.request_id:
            counts["skipped_shadow"] += 1
            continue
        if pair.purpose == "eval" and not include_eval:
            counts["skipped_eval"] += 1
            continue
        if experiment is not None and pair.experiment != experiment:
            counts["skipped_experiment"] += 1
            continue
        if cutoff is not None and pair.ts < cutoff:
            counts["skipped_before_since"] += 1
            continue
        batch.append(pair)
        if len(batch) >= CHUNK:
            await flush()
    if batch:
        await flush()
    return out, counts


def _write_jsonl(path: Path, lines: list[dict[str, Any]]) -> None:
    with path.open("wb") as f:
        for line in lines:
            f.write(orjson.dumps(line) + b"\n")


def _table(per_category: dict[str, dict[str, int]]) -> Table:
    table = Table(title="Exported examples")
    for name in ("category", "train", "val", "total", "val share"):
        table.add_column(name, justify="left" if name == "category" else "right")
    for cat, c in per_category.items():
        total = c["train"] + c["val"]
        table.add_row(cat, str(c["train"]), str(c["val"]), str(total), f"{c['val'] / total:.1%}")
    train = sum(c["train"] for c in per_category.values())
    val = sum(c["val"] for c in per_category.values())
    share = f"{val / (train + val):.1%}" if train + val else "-"
    table.add_row("all", str(train), str(val), str(train + val), share, style="bold")
    return table


def write_dataset(
    items: list[Labelled],
    out_dir: Path | str,
    *,
    split: float = 0.8,
    balance: bool = False,
    seed: int = 42,
    taxonomy_for: TaxonomyFor | None = None,
) -> dict[str, Any]:
    """Group, balance, split and write `train.jsonl` / `val.jsonl`; returns the split stats."""
    if not 0.0 < split <= 1.0:
        raise ValueError("split must be in (0, 1]: the share of examples for training")
    lookup = taxonomy_for or taxonomy_lookup(None)
    rng = random.Random(seed)
    groups = near_duplicate_groups([i.text for i in items])
    n_groups = len(groups)
    cap = None
    if balance:
        groups, cap = balance_groups(groups, items, rng)
    train_idx, val_idx = split_groups(groups, items, split, rng)
    rng.shuffle(train_idx)
    rng.shuffle(val_idx)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "train.jsonl", [to_chat(items[i], lookup) for i in train_idx])
    _write_jsonl(out / "val.jsonl", [to_chat(items[i], lookup) for i in val_idx])
    per_category: dict[str, dict[str, int]] = defaultdict(lambda: {"train": 0, "val": 0})
    for side, idx in (("train", train_idx), ("val", val_idx)):
        for i in idx:
            per_category[items[i].category][side] += 1
    return {
        "seed": seed,
        "split": split,
        "balance": balance,
        "balance_cap": cap,
        "labelled": len(items),
        "near_duplicate_groups": n_groups,
        "dropped_by_balance": len(items) - len(train_idx) - len(val_idx),
        "train": len(train_idx),
        "val": len(val_idx),
        "per_category": dict(sorted(per_category.items())),
        "files": {"train": "train.jsonl", "val": "val.jsonl"},
    }


def _write_stats(out_dir: Path | str, stats: dict[str, Any]) -> None:
    (Path(out_dir) / "stats.json").write_bytes(orjson.dumps(stats, option=orjson.OPT_INDENT_2))


async def export_dataset(
    redis: aioredis.Redis,
    stream: str,
    out_dir: Path | str,
    since: datetime | str | float | None = None,
    experiment: str | None = None,
    split: float = 0.8,
    balance: bool = False,
    seed: int = 42,
    include_confirmed: bool = True,
    *,
    allow_unreviewed_fields: bool = False,
    include_eval: bool = False,
    empty_ok: bool = True,
    taxonomy_for: TaxonomyFor | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Write `train.jsonl`, `val.jsonl` and `stats.json` under `out_dir`; returns the stats
    (also printed as a table of counts per category and split).

    `split` is the train share (0.8: 80% train, 20% val per category); `since` keeps pairs
    logged at or after that time (ISO 8601, naive = UTC); `experiment` keeps one experiment."""
    if not 0.0 < split <= 1.0:
        raise ValueError("split must be in (0, 1]: the share of examples for training")
    items, counts = await collect(
        redis,
        stream,
        since=since,
        experiment=experiment,
        include_confirmed=include_confirmed,
        allow_unreviewed_fields=allow_unreviewed_fields,
        include_eval=include_eval,
    )
    if not items and not empty_ok:
        raise NothingToExport(counts)
    written = write_dataset(
        items, out_dir, split=split, balance=balance, seed=seed, taxonomy_for=taxonomy_for
    )
    stats: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "stream": stream,
        "filters": {
            "since": str(since) if since is not None else None,
            "experiment": experiment,
            "include_confirmed": include_confirmed,
            "allow_unreviewed_fields": allow_unreviewed_fields,
            "include_eval": include_eval,
        },
        "counts": dict(sorted(counts.items())),
        **written,
    }
    _write_stats(out_dir, stats)
    (console or Console()).print(_table(stats["per_category"]))
    return stats


async def with_redis(settings: Settings, work: Callable[[aioredis.Redis, str], Awaitable[T]]) -> T:
    """Run `work(redis, stream)` against the gateway's Redis: GATEWAY_REDIS_URL, or the
    embedded server under the data directory, started for the call and stopped after."""
    from gateway.infra import redis_keys
    from gateway.infra.redis_client import async_connect

    async with async_connect(settings, timeout_s=None) as client:
        return await work(client, redis_keys.pairs_stream(settings.pairs_stream))


def run_export(settings: Settings, out: Path, **options: Any) -> dict[str, Any]:
    """The `export` command: the routes file's taxonomies, the configured Redis."""
    from gateway.experiments.config import load_routes

    lookup = taxonomy_lookup(load_routes(settings.routes))

    async def work(redis: aioredis.Redis, stream: str) -> dict[str, Any]:
        return await export_dataset(
            redis, stream, out, taxonomy_for=lookup, empty_ok=False, **options
        )

    return asyncio.run(with_redis(settings, work))


def run_import(settings: Settings, path: Path, corrected_by: str = "import") -> int:
    """The `import` command: labelled rows into the configured Redis as corrected pairs."""
    from training.importer import import_labelled

    async def work(redis: aioredis.Redis, stream: str) -> int:
        return await import_labelled(redis, stream, path, corrected_by)

    return asyncio.run(with_redis(settings, work))
