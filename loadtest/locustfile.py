"""Locust users for the gateway: services calling the classify API, services using the OpenAI
SDK, and (opt-in) reviewers correcting pairs. Run by `make loadtest` (see run_loadtest.py).

Every answer is checked inside its task (a valid triage in the experiment's taxonomy, a known
variant, the same variant for a repeated review id); at the end the share of each variant is
compared with the weights from `GET /v1/routes` and the process exit code is set to 1 when a
request failed or a share is off by more than 2 points.

Environment: LOADTEST_API_KEY (Bearer key of the gateway, if it has keys), LOADTEST_SEED,
LOADTEST_EXPERIMENT (default `triage`), LOADTEST_REVIEWER_WEIGHT (0: reviewers off) and
LOADTEST_REVIEWER_KEY (their key; the API key when unset).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Any

from locust import FastHttpUser, between, events, task

from loadtest.reviews import ReviewGenerator
from loadtest.shares import Tally, share_report

log = logging.getLogger("loadtest")

API_KEY = os.environ.get("LOADTEST_API_KEY", "")
EXPERIMENT = os.environ.get("LOADTEST_EXPERIMENT", "triage")
SEED = int(os.environ.get("LOADTEST_SEED", "2026"))
REVIEWER_WEIGHT = int(os.environ.get("LOADTEST_REVIEWER_WEIGHT", "0"))
REVIEWER_KEY = os.environ.get("LOADTEST_REVIEWER_KEY", "") or API_KEY


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


TALLY = Tally()
REVIEWS = ReviewGenerator(seed=SEED)  # one stream for all users of this process
BATCH_SIZES = itertools.cycle((5, 12, 20, 8, 15, 6, 18, 10))  # 5..20, deterministic


def _load_routes(host: str) -> None:
    req = urllib.request.Request(f"{host.rstrip('/')}/v1/routes", headers=_headers(API_KEY))
    with urllib.request.urlopen(req, timeout=10) as resp:
        data = json.loads(resp.read())
    exp = next((e for e in data["experiments"] if e["name"] == EXPERIMENT), None)
    if exp is None:
        raise LookupError(f"experiment {EXPERIMENT!r} not in /v1/routes")
    TALLY.categories = frozenset(exp["categories"])
    TALLY.urgencies = frozenset(exp["urgencies"])
    TALLY.expected = {v["name"]: float(v["share"]) for v in exp["variants"] if not v["shadow"]}


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def _on_start(environment: Any, **_: Any) -> None:
    start = time.perf_counter()
    try:
        _load_routes(environment.host or "")
    except (OSError, ValueError, KeyError, LookupError, urllib.error.URLError) as exc:
        TALLY.routes_error = f"GET /v1/routes failed: {exc}"
    environment.events.request.fire(
        request_type="GET",
        name="/v1/routes (setup)",
        response_time=(time.perf_counter() - start) * 1000,
        response_length=0,
        exception=RuntimeError(TALLY.routes_error) if TALLY.routes_error else None,
        context={},
    )


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _on_stop(environment: Any, **_: Any) -> None:
    failures = environment.stats.total.num_failures
    lines, problems = share_report(TALLY)
    if TALLY.routes_error:
        problems.append(TALLY.routes_error)
    if failures:
        problems.append(f"{failures} request(s) failed")
    print("\n".join(lines))
    if problems:
        print("LOAD TEST FAILED: " + "; ".join(problems))
        environment.process_exit_code = 1  # never set to 0: locust's own checks stay in force
    else:
        print("load test passed: no failed request, shares within 2 points")


class _GatewayUser(FastHttpUser):
    abstract = True
    wait_time = between(0.0, 0.05)
    network_timeout = 30.0
    connection_timeout = 10.0

    def _post(self, path: str, body: dict[str, Any], name: str | None = None) -> Any:
        return self.client.post(
            path, json=body, headers=_headers(API_KEY), name=name or path, catch_response=True
        )


class ServiceUser(_GatewayUser):
    """A service calling the native API: single reviews, and now and then a batch of 5..20."""

    weight = 3

    @task(8)
    def classify(self) -> None:
        review = REVIEWS.next()
        body = {**review.classify_body(), "experiment": EXPERIMENT}
        with self._post("/v1/classify", body) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
                return
            data = resp.json()
            problem = TALLY.check(
                review, data.get("triage"), data.get("variant"), data.get("fallback_from")
            )
            if problem:
                resp.failure(problem)

    @task(1)
    def classify_batch(self) -> None:
        reviews = REVIEWS.batch(next(BATCH_SIZES))
        body = {"items": [r.classify_body() for r in reviews], "experiment": EXPERIMENT}
        with self._post("/v1/classify/batch", body) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
                return
            items = resp.json().get("items") or []
            if len(items) != len(reviews):
                resp.failure(f"{len(items)} items for {len(reviews)} reviews")
                return
            for item in items:
                result = item.get("result") or {}
                if not item.get("ok"):
                    resp.failure(f"item {item.get('index')}: {item.get('error')}")
                    return
                review = reviews[item["index"]]
                problem = TALLY.check(
                    review, result.get("triage"), result.get("variant"), result.get("fallback_from")
                )
                if problem:
                    resp.failure(f"item {item['index']}: {problem}")
                    return


class OpenAISDKUser(_GatewayUser):
    """A service that kept the OpenAI SDK: chat completions with model=experiment and a
    review id in the body (the SDK's `extra_body`)."""

    weight = 2

    @task
    def chat(self) -> None:
        review = REVIEWS.next()
        body = {
            "model": EXPERIMENT,
            "messages": [{"role": "user", "content": review.text}],
            "temperature": 0,
            "review_id": review.review_id,
        }
        with self._post("/v1/chat/completions", body) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
                return
            variant = resp.headers.get("x-triage-variant")
            if not variant:
                resp.failure("no x-triage-variant header")
                return
            data = resp.json()
            try:
                triage = json.loads(data["choices"][0]["message"]["content"])
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                resp.failure(f"no triage JSON in the message ({type(exc).__name__})")
                return
            meta = data.get("triage_gateway") or {}
            if meta.get("variant") not in (None, variant):
                resp.failure(f"header variant {variant} != body variant {meta.get('variant')}")
                return
            problem = TALLY.check(review, triage, variant, meta.get("fallback_from"))
            if problem:
                resp.failure(problem)


class ReviewerUser(_GatewayUser):
    """A reviewer: fetch uncorrected pairs, correct one. Off unless LOADTEST_REVIEWER_WEIGHT > 0
    (locust cannot spawn a weight-0 class, so it is abstract then). Any non-2xx is a failure.

    `GET /v1/pairs?status=uncorrected&limit=5` answers `{"items": [pair, ...], "next_cursor"}`,
    each pair with `request_id` and `triage`; `POST /v1/corrections` takes `request_id`,
    `category`, `urgency` and `corrected_by` (topic and summary default to the model's).
    """

    abstract = REVIEWER_WEIGHT <= 0
    weight = max(1, REVIEWER_WEIGHT)
    wait_time = between(0.5, 2.0)

    @task
    def correct_one(self) -> None:
        with self.client.get(
            "/v1/pairs?status=uncorrected&limit=5",
            headers=_headers(REVIEWER_KEY),
            name="/v1/pairs?status=uncorrected",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
                return
            pairs = resp.json().get("items")
            if not isinstance(pairs, list):
                resp.failure("no `items` list in the answer")
                return
        if not pairs:
            return  # nothing logged yet (or all corrected): not a failure
        pair = pairs[0]
        served = pair.get("triage") or {}
        # Flip the urgency so the correction is a real change.
        urgencies = sorted(TALLY.urgencies - {served.get("urgency")}) or ["Low"]
        body = {
            "request_id": pair.get("request_id"),
            "category": served.get("category", "Other"),
            "urgency": urgencies[0],
            "corrected_by": "loadtest-reviewer",
        }
        with self.client.post(
            "/v1/corrections",
            json=body,
            headers=_headers(REVIEWER_KEY),
            name="/v1/corrections",
            catch_response=True,
        ) as resp:
            if not 200 <= resp.status_code < 300:
                resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
