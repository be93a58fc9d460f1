"""The review page in a real headless Chromium (Debian's `chromium`, driven by Playwright's
Python API; no browser download): sign in, see the queue, correct an item (changing the
category makes the page ask for topic and summary first), find the correction in the export,
and see the export leave out a correction whose topic and summary nobody checked. Fails, never
skips, when chromium is missing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from gateway.request.triage import DEFAULT_TAXONOMY
from tests.servers import CHROMIUM_ARGS, Gateway, Simulator, ab_routes, run_gateway
from training.export import export_dataset

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "reports" / "review-page.png"
REVIEWER_KEY = "reviewer-key-0123"
XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"
REVIEWS: list[dict[str, Any]] = [
    {"text": "The app crashes every time I open the photo editor", "review_id": "ui-1"},
    {"text": XSS, "review_id": "ui-xss", "app": "<b>EvilApp</b>", "rating": 1},
    {"text": "Please add an option to export my notes as PDF", "review_id": "ui-2"},
    {"text": "How do I change the language of the app?", "review_id": "ui-3"},
]


def chromium() -> str:
    exe = shutil.which("chromium")
    assert exe, "chromium is not installed: `apt-get install -y chromium` (Debian), see .ci/run"
    return exe


class DialogLog:
    """A page's `dialog` handler: dismisses each dialog and keeps its message."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __call__(self, dialog: Dialog) -> None:
        self.messages.append(dialog.message)
        dialog.dismiss()


@contextlib.contextmanager
def chromium_browser(exe: str) -> Iterator[tuple[Browser, DialogLog]]:
    """Headless chromium at `exe`, closed on exit, and a dialog handler for its pages."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            yield browser, DialogLog()
        finally:
            browser.close()


@pytest.fixture
def gw(tmp: Path, sim: Simulator, redis_url: str) -> Iterator[Gateway]:
    env = {"GATEWAY_REVIEWER_KEYS": f"other-key,{REVIEWER_KEY}"}
    with run_gateway(tmp, routes=ab_routes(sim.base_url), redis_url=redis_url, env=env) as g:
        yield g


def seed_queue(gw: Gateway) -> dict[str, dict[str, Any]]:
    """Classify through the gateway; wait until every pair is in the review queue."""
    with gw.client() as client:
        served = {}
        for body in REVIEWS:
            r = client.post("/v1/classify", json=body)
            assert r.status_code == 200, r.text
            served[body["review_id"]] = r.json()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            page = client.get("/v1/pairs", params={"status": "uncorrected"}).json()
            if len(page["items"]) == len(REVIEWS):
                return served
            time.sleep(0.25)
    raise AssertionError("the classified reviews did not reach the review queue")


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/review")
    expect(page).to_have_url(f"{base}/review/login")
    page.fill("input[name=key]", "wrong-key")
    page.click("button[type=submit]")
    expect(page.locator(".flash.bad")).to_contain_text("not accepted")
    page.fill("input[name=key]", REVIEWER_KEY)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/review")


def test_review_page_in_chromium(gw: Gateway, redis_url: str, tmp: Path) -> None:
    exe = chromium()
    served = seed_queue(gw)
    target = served["ui-1"]
    new_category = next(c for c in DEFAULT_TAXONOMY.categories if c != target["triage"]["category"])
    new_urgency = "Critical" if target["triage"]["urgency"] != "Critical" else "Low"
    with chromium_browser(exe) as (browser, on_dialog):
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        page.on("dialog", on_dialog)
        sign_in(page, gw.url)
        cookie = next(c for c in page.context.cookies() if c["name"] == "triage_review")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert REVIEWER_KEY not in cookie["value"]

        items = page.locator("article.item")
        expect(items).to_have_count(len(REVIEWS))
        # the untrusted review renders as literal text: no script ran, no <img> exists
        xss_item = page.locator(f"article[data-request-id='{served['ui-xss']['request_id']}']")
        expect(xss_item.locator(".review-text")).to_have_text(XSS)
        expect(xss_item).to_contain_text("<b>EvilApp</b>")
        assert xss_item.locator("img, script, b").count() == 0
        page.wait_for_timeout(300)
        assert on_dialog.messages == []
        html = page.content()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

        # each item shows the model answer, variant and the correction form
        card = page.locator(f"article[data-request-id='{target['request_id']}']")
        expect(card.locator(".model-category")).to_have_text(target["triage"]["category"])
        expect(card).to_contain_text(target["variant"])
        expect(card.locator("select[name=category] option")).to_have_count(6)
        expect(card.get_by_role("button", name="Answer is right")).to_be_visible()
        expect(page.get_by_text("Keyboard shortcuts")).to_be_visible()

        # keyboard: j moves to the next item, a digit picks a category there
        page.locator("h1").click()
        page.keyboard.press("j")
        expect(items.nth(1)).to_have_class("item current")
        page.keyboard.press("3")
        third = DEFAULT_TAXONOMY.categories[2]
        expect(items.nth(1).locator("select[name=category]")).to_have_value(third)
        page.keyboard.press("k")
        expect(items.nth(0)).to_have_class("item current")

        # correct the target through the form: change the category; the page asks for
        # topic and summary to be edited or ticked before it saves anything
        recheck = card.locator(".recheck")
        expect(recheck).to_be_hidden()
        card.locator("select[name=category]").select_option(new_category)
        card.locator("select[name=urgency]").select_option(new_urgency)
        expect(recheck).to_be_visible()
        card.locator("input[name=note]").fill("crash, not what the model said")
        card.get_by_role("button", name="Save correction").click()
        expect(recheck.get_by_role("alert")).to_contain_text("edit the topic and summary")
        expect(card.locator("input[name=topic]")).to_be_focused()
        expect(page.locator("#flash")).to_have_count(0)  # nothing was posted
        card.locator("input[name=topic]").fill("Photo editor crash")
        card.get_by_role("button", name="Save correction").click()
        expect(recheck.get_by_role("alert")).to_contain_text("edit the summary")
        card.get_by_label("Summary is still right").check()
        card.get_by_role("button", name="Save correction").click()
        expect(page.locator("#flash")).to_contain_text("Saved")
        expect(page.locator("#flash")).to_contain_text(new_category)
        expect(page.locator(f"article[data-request-id='{target['request_id']}']")).to_have_count(0)
        expect(items).to_have_count(len(REVIEWS) - 1)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # "a" on the current (first) item confirms the model's answer
        first_id = items.nth(0).get_attribute("data-request-id")
        page.locator("h1").click()
        page.keyboard.press("a")
        expect(page.locator("#flash")).to_contain_text("answer confirmed")
        expect(page.locator(f"article[data-request-id='{first_id}']")).to_have_count(0)
        # two reviews still waiting: one for a refused post, one for an API correction
        waiting = [r for r in ("ui-2", "ui-3", "ui-xss") if served[r]["request_id"] != first_id]
        refused_one, api_one = served[waiting[0]], served[waiting[1]]
        api_text = next(b["text"] for b in REVIEWS if b["review_id"] == waiting[1])

        # the server asks too: a relabelling post with topic and summary unchecked is
        # refused and stores nothing
        csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
        unchecked = page.request.post(
            f"{gw.url}/review/correct",
            form={
                "request_id": refused_one["request_id"],
                "csrf": csrf,
                "category": next(
                    c for c in DEFAULT_TAXONOMY.categories if c != refused_one["triage"]["category"]
                ),
                "urgency": refused_one["triage"]["urgency"],
                "topic": refused_one["triage"]["topic"],
                "summary": refused_one["triage"]["summary"],
            },
            max_redirects=0,
        )
        assert unchecked.status == 303 and "error=recheck" in unchecked.headers["location"]
        page.goto(gw.url + unchecked.headers["location"])
        expect(page.locator("#flash")).to_contain_text("tick them as still right")

        # CSRF: a form post with the session cookie but a wrong token is refused
        refused = page.request.post(
            f"{gw.url}/review/correct",
            form={"request_id": served["ui-2"]["request_id"], "csrf": "forged"},
            max_redirects=0,
        )
        assert refused.status == 403
        response = page.goto(f"{gw.url}/review")
        assert response is not None
        csp = response.headers["content-security-policy"]
        assert csp == "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'"
        expect(items).to_have_count(len(REVIEWS) - 2)
        assert on_dialog.messages == []

    # no session: the page redirects to the sign-in form; the API knows the correction
    r = httpx.get(f"{gw.url}/review", follow_redirects=False, timeout=5)
    assert r.status_code == 303 and r.headers["location"] == "/review/login"
    with gw.client() as client:
        detail = client.get(f"/v1/pairs/{target['request_id']}").json()
    correction = detail["corrections"][-1]
    assert len(detail["corrections"]) == 1
    assert correction["category"] == new_category and correction["urgency"] == new_urgency
    assert correction["changed"] is True and correction["note"] == "crash, not what the model said"
    assert correction["topic"] == "Photo editor crash"
    assert correction["summary"] == target["triage"]["summary"]
    assert correction["fields"] == {
        "category": "changed",
        "urgency": "changed",
        "topic": "changed",
        "summary": "confirmed",
    }
    assert (
        correction["corrected_by"].startswith("reviewer:") and len(correction["corrected_by"]) == 17
    )
    assert REVIEWER_KEY not in json.dumps(detail)
    with gw.client() as client:
        untouched = client.get(f"/v1/pairs/{refused_one['request_id']}").json()
        assert untouched["corrections"] == []  # the refused post stored nothing
        # an API client that sends category and urgency only: topic and summary unreviewed
        body = {
            "request_id": api_one["request_id"],
            "category": "Question",
            "urgency": "Low",
            "corrected_by": "api-client",
        }
        r = client.post("/v1/corrections", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["fields"]["topic"] == "unreviewed"
        assert r.json()["fields"]["summary"] == "unreviewed"

    stats, lines = asyncio.run(export(redis_url, tmp / "export"))
    assert stats["train"] + stats["val"] == 2  # the correction and the confirmation
    assert stats["counts"]["skipped_unreviewed_fields"] == 1
    assert stats["counts"]["unreviewed_topic"] == 1 == stats["counts"]["unreviewed_summary"]
    on_disk = json.loads((tmp / "export" / "stats.json").read_text())
    assert on_disk["counts"]["skipped_unreviewed_fields"] == 1
    assert not any(api_text in ln["messages"][1]["content"] for ln in lines)
    loose, loose_lines = asyncio.run(export(redis_url, tmp / "loose", allow_unreviewed=True))
    assert loose["train"] + loose["val"] == 3 and "skipped_unreviewed_fields" not in loose["counts"]
    assert any(api_text in ln["messages"][1]["content"] for ln in loose_lines)
    found = [ln for ln in lines if REVIEWS[0]["text"] in ln["messages"][1]["content"]]
    assert len(found) == 1
    answer = json.loads(found[0]["messages"][2]["content"])
    assert answer["category"] == new_category and answer["urgency"] == new_urgency
    assert answer["topic"] == "Photo editor crash"
    assert SCREENSHOT.stat().st_size > 10_000


async def export(
    redis_url: str, out: Path, *, allow_unreviewed: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        stats = await export_dataset(
            client, "triage:pairs", out, allow_unreviewed_fields=allow_unreviewed
        )
    finally:
        await client.aclose()
    lines = []
    for name in ("train.jsonl", "val.jsonl"):
        lines += [json.loads(line) for line in (out / name).read_text().splitlines()]
    return stats, lines
