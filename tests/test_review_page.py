"""The review page in a real headless Chromium (Debian's `chromium`, driven by Playwright's
Python API; no browser download): sign in, see the queue, correct an item, find the
correction in the export. Fails, never skips, when chromium is missing."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from playwright.sync_api import Dialog, Page, expect, sync_playwright

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
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
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
            assert dialogs == []
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

            # correct the target through the form: change the category, save
            card.locator("select[name=category]").select_option(new_category)
            card.locator("select[name=urgency]").select_option("Critical")
            card.locator("input[name=note]").fill("crash, not what the model said")
            card.get_by_role("button", name="Save correction").click()
            expect(page.locator("#flash")).to_contain_text("Saved")
            expect(page.locator("#flash")).to_contain_text(new_category)
            expect(
                page.locator(f"article[data-request-id='{target['request_id']}']")
            ).to_have_count(0)
            expect(items).to_have_count(len(REVIEWS) - 1)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # "a" on the current (first) item confirms the model's answer
            first_id = items.nth(0).get_attribute("data-request-id")
            page.locator("h1").click()
            page.keyboard.press("a")
            expect(page.locator("#flash")).to_contain_text("answer confirmed")
            expect(page.locator(f"article[data-request-id='{first_id}']")).to_have_count(0)

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
            assert dialogs == []
        finally:
            browser.close()

    # no session: the page redirects to the sign-in form; the API knows the correction
    r = httpx.get(f"{gw.url}/review", follow_redirects=False, timeout=5)
    assert r.status_code == 303 and r.headers["location"] == "/review/login"
    with gw.client() as client:
        detail = client.get(f"/v1/pairs/{target['request_id']}").json()
    correction = detail["corrections"][-1]
    assert correction["category"] == new_category and correction["urgency"] == "Critical"
    assert correction["changed"] is True and correction["note"] == "crash, not what the model said"
    assert (
        correction["corrected_by"].startswith("reviewer:") and len(correction["corrected_by"]) == 17
    )
    assert REVIEWER_KEY not in json.dumps(detail)

    stats, lines = asyncio.run(export(redis_url, tmp / "export"))
    assert stats["train"] + stats["val"] == 2  # the correction and the confirmation
    found = [ln for ln in lines if REVIEWS[0]["text"] in ln["messages"][1]["content"]]
    assert len(found) == 1
    answer = json.loads(found[0]["messages"][2]["content"])
    assert answer["category"] == new_category and answer["urgency"] == "Critical"
    assert SCREENSHOT.stat().st_size > 10_000


async def export(redis_url: str, out: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        stats = await export_dataset(client, "triage:pairs", out)
    finally:
        await client.aclose()
    lines = []
    for name in ("train.jsonl", "val.jsonl"):
        lines += [json.loads(line) for line in (out / name).read_text().splitlines()]
    return stats, lines
