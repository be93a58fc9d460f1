"""Review traffic for the data loop (examples/data-loop.sh, the README's "The whole loop"):
classify seed reviews, correct them as a reviewer would, or send live traffic. Standard library
only, so any python3 runs it; every loop is bounded in count (and `live` in time).

    python3 examples/review_traffic.py classify --gateway URL --key KEY --count 300
    python3 examples/review_traffic.py correct  --gateway URL --key KEY --count 300
    python3 examples/review_traffic.py live     --gateway URL --key KEY --count 4000 --seconds 150

`classify` sends the first COUNT reviews of the project's seed set through
`POST /v1/classify/batch` with review ids `seed-0`, `seed-1`, ...; `correct` posts, for each of
them, a correction (`POST /v1/corrections`) carrying the seed set's labels for all four fields
(category, urgency, topic, summary), all named in `reviewed_fields`, so each one can go to
`export`; `live` sends single classify calls of made-up reviews until COUNT calls or SECONDS
have passed (or SIGTERM), then prints what it got back (exit 1 if any call failed).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

SEED = Path(__file__).resolve().parent.parent / "gateway" / "data" / "seed_reviews.jsonl"
BATCH = 100  # /v1/classify/batch takes up to 100 items
FIELDS = ["category", "urgency", "topic", "summary"]


def post(gateway: str, key: str, path: str, body: object, timeout: float = 60) -> Any:
    request = urllib.request.Request(
        f"{gateway.rstrip('/')}{path}",
        json.dumps(body).encode(),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        sys.exit(f"error: POST {path} answered {exc.code}: {detail}")


def seed_rows(count: int) -> list[dict[str, Any]]:
    with SEED.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in itertools.islice(lines, count)]


def classify(args: argparse.Namespace) -> None:
    rows = seed_rows(args.count)
    served: collections.Counter[str] = collections.Counter()
    for start in range(0, len(rows), BATCH):
        items = [
            {
                "text": r["text"],
                "review_id": f"seed-{start + i}",
                "app": r["app"],
                "rating": r["rating"],
            }
            for i, r in enumerate(rows[start : start + BATCH])
        ]
        body = post(args.gateway, args.key, "/v1/classify/batch", {"items": items})
        failed = [item for item in body["items"] if not item["ok"]]
        if failed:
            sys.exit(f"error: {len(failed)} reviews of a batch failed, e.g. {failed[0]}")
        served.update(item["result"]["variant"] for item in body["items"])
    shares = ", ".join(f"{name} {n}" for name, n in served.most_common())
    print(f"classified {sum(served.values())} reviews: {shares}")


def correct(args: argparse.Namespace) -> None:
    rows = seed_rows(args.count)
    changed = collections.Counter[str]()
    for i, r in enumerate(rows):
        body = {name: r[name] for name in FIELDS}
        body.update(review_id=f"seed-{i}", corrected_by=args.reviewer, reviewed_fields=FIELDS)
        stored = post(args.gateway, args.key, "/v1/corrections", body)
        changed.update(name for name, status in stored["fields"].items() if status == "changed")
    fixed = ", ".join(f"{name} {changed[name]}" for name in FIELDS)
    print(f"{len(rows)} corrections stored, all four fields reviewed; changed: {fixed}")


def live(args: argparse.Namespace) -> None:
    stop = False

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    texts = [
        "The app crashes when I open the camera",
        "Please add a dark mode",
        "Love it, works great",
        "How do I export my data?",
        "Too many ads, the subscription is a rip-off",
    ]
    statuses: collections.Counter[int] = collections.Counter()
    deadline = time.monotonic() + args.seconds
    for i in range(args.count):
        if stop or time.monotonic() > deadline:
            break
        body = {"text": f"{texts[i % len(texts)]} (#{i})", "review_id": f"live-{i}"}
        request = urllib.request.Request(
            f"{args.gateway.rstrip('/')}/v1/classify",
            json.dumps(body).encode(),
            {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                statuses[answer.status] += 1
        except urllib.error.HTTPError as exc:
            statuses[exc.code] += 1
        except OSError:
            statuses[0] += 1  # no answer (connection refused, timeout)
    print(f"live traffic: {sum(statuses.values())} requests, by status {dict(statuses)}")
    if set(statuses) - {200}:
        sys.exit("error: some live calls failed (status 0: no answer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, run in (("classify", classify), ("correct", correct), ("live", live)):
        sub = commands.add_parser(name)
        sub.set_defaults(run=run)
        sub.add_argument("--gateway", required=True, help="gateway base URL")
        sub.add_argument("--key", required=True, help="a GATEWAY_API_KEYS key")
        sub.add_argument("--count", type=int, required=True, help="reviews (live: most calls)")
        if name == "correct":
            sub.add_argument("--reviewer", default="reviewer-1", help="corrected_by")
        if name == "live":
            sub.add_argument("--seconds", type=float, default=150, help="most seconds")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    args.run(args)


if __name__ == "__main__":
    main()
