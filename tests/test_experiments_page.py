"""The experiments page in a real headless Chromium (Debian's `chromium`, driven by Playwright):
a gateway under uvicorn in front of the simulator, a ramp in progress written the way the
promotion controller writes it (`RouteStore.set_weights(kind=RAMP_STEP, baseline_version=0)`
on the same Redis), live traffic and reviewer corrections. A reviewer sees shares, per-variant
figures, the ramp and its history, but no rollback button (and a forged rollback is refused);
an admin rolls the ramp back with the button. The test writes a screenshot of the page with the
ramp in progress (reports/experiments-page.png) and prints its path."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from playwright.sync_api import Browser, Page, expect

from gateway.experiments.config import load_routes
from gateway.experiments.store import ChangeKind, RouteStore, WeightChange
from gateway.experiments.table import RouteTable
from gateway.infra.metrics import GatewayMetrics
from tests.servers import Gateway, Simulator, ab_routes, run_gateway, write_routes
from tests.test_review_page import chromium, chromium_browser

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "reports" / "experiments-page.png"
REVIEWER_KEY = "reviewer-key-4567"
ADMIN_KEY = "admin-key-89abcdef"
HOSTILE = "<img src=x onerror=alert(1)>ramp step"
RAMP = (0.05, 0.25)  # the candidate's share at each step
TRAFFIC = 40
TOPICS = ["photo editor", "checkout", "dark mode", "sync", "login", "widgets", "search", "export"]


@pytest.fixture
def gw(tmp: Path, sim: Simulator, redis_url: str) -> Iterator[tuple[Gateway, Path]]:
    routes = write_routes(tmp / "routes.yaml", ab_routes(sim.base_url, control=1.0, candidate=0.0))
    env = {"GATEWAY_REVIEWER_KEYS": REVIEWER_KEY, "GATEWAY_ADMIN_KEYS": ADMIN_KEY}
    with run_gateway(tmp, routes=routes, redis_url=redis_url, env=env) as g:
        yield g, routes


async def ramp(redis_url: str, routes: Path) -> list[WeightChange]:
    """Two ramp steps from the routes file's weights (version 0), as `promote` writes them."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        store = RouteStore(client, RouteTable(load_routes(routes)), GatewayMetrics())
        await store.refresh()
        entries = []
        for n, share in enumerate(RAMP, start=1):
            reason = HOSTILE if n == len(RAMP) else f"step {n}: gates passed"
            entry = await store.set_weights(
                "triage",
                {"control": 1.0 - share, "candidate": share},
                actor="promotion:test",
                reason=reason,
                kind=ChangeKind.RAMP_STEP,
                baseline_version=0,
            )
            entries.append(entry)
        return entries
    finally:
        await client.aclose()


def wait_for_version(gw: Gateway, version: int) -> None:
    deadline = time.monotonic() + 15
    with gw.client() as client:
        while time.monotonic() < deadline:
            exp = client.get("/v1/routes").json()["experiments"][0]
            if exp["salt_version"] == version:
                return
            time.sleep(0.2)
    raise AssertionError(f"the gateway did not install weights version {version}")


def traffic(gw: Gateway) -> Counter[str]:
    """Classify TRAFFIC reviews; correct some of each variant (one of them wrongly answered)."""
    served: Counter[str] = Counter()
    by_variant: dict[str, list[dict[str, Any]]] = {}
    with gw.client() as client:
        for i in range(TRAFFIC):
            body = {
                "text": f"Review {i}: the {TOPICS[i % len(TOPICS)]} part stopped working today",
                "review_id": f"exp-{i}",
            }
            r = client.post("/v1/classify", json=body)
            assert r.status_code == 200, r.text
            served[r.json()["variant"]] += 1
            by_variant.setdefault(r.json()["variant"], []).append(r.json())
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            page = client.get("/v1/pairs", params={"status": "uncorrected", "limit": 100}).json()
            if len(page["items"]) >= TRAFFIC:
                break
            time.sleep(0.25)
        for answers in by_variant.values():
            for n, answer in enumerate(answers[:4]):
                triage = answer["triage"]
                category = triage["category"] if n else "Other"
                if category == triage["category"] and not n:
                    category = "Question"
                body = {
                    "request_id": answer["request_id"],
                    "category": category,
                    "urgency": triage["urgency"],
                    "topic": triage["topic"],
                    "summary": triage["summary"],
                    "corrected_by": "test",
                }
                r = client.post("/v1/corrections", json=body)
                assert r.status_code == 201, r.text
    return served


def sign_in(browser: Browser, base: str, key: str) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{base}/experiments")
    expect(page).to_have_url(f"{base}/review/login?next=%2Fexperiments")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/experiments")
    return page


def test_experiments_page_in_chromium(gw: tuple[Gateway, Path], redis_url: str) -> None:
    exe = chromium()
    gateway, routes = gw
    entries = asyncio.run(ramp(redis_url, routes))
    latest = entries[-1]["version"]
    wait_for_version(gateway, latest)
    served = traffic(gateway)
    assert served["candidate"] > 0 and served["control"] > 0, served
    with chromium_browser(exe) as (browser, on_dialog):
        # a reviewer: everything but the rollback button
        page = sign_in(browser, gateway.url, REVIEWER_KEY)
        page.on("dialog", on_dialog)
        section = page.locator("section.experiment[data-experiment='triage']")
        expect(section.locator("h2")).to_contain_text(f"weights v{latest}")
        control = section.locator("tr.variant[data-variant='control']")
        candidate = section.locator("tr.variant[data-variant='candidate']")
        expect(candidate.locator(".share")).to_have_text("25.0%")
        expect(control.locator(".share")).to_have_text("75.0%")
        expect(candidate.locator(".weight")).to_have_text("0.25")
        for name, row in (("control", control), ("candidate", candidate)):
            expect(row.locator(".requests")).to_have_text(str(served[name]))
            expect(row.locator(".errors")).to_contain_text("0 (0.0%)")
            expect(row.locator(".validity")).to_have_text("100.0%")
            expect(row.locator(".p95")).to_contain_text(" ms")
            expect(row.locator(".cost")).to_contain_text("$")
            expect(row.locator(".corrected")).to_contain_text(f"{min(4, served[name])} of")
        # 4 corrected, the first judged wrong: 75% with a Wilson interval
        expect(control.locator(".accuracy")).to_contain_text("75.0% (")
        ramp_box = section.locator(".ramp")
        expect(ramp_box.locator("h3")).to_have_text("Ramp in progress: candidate")
        expect(ramp_box).to_contain_text("From baseline v0 (control 100.0%, candidate 0.0%)")
        steps = ramp_box.locator("li.step")
        expect(steps).to_have_count(len(RAMP))
        expect(steps.nth(0)).to_contain_text("candidate at 5.0%")
        expect(steps.nth(1)).to_contain_text("candidate at 25.0%")
        expect(steps.nth(1)).to_contain_text(HOSTILE)  # shown as text, never as markup
        assert section.locator("img").count() == 0
        expect(section.locator("tr.change.kind-ramp_step")).to_have_count(len(RAMP))
        expect(section.locator("form.rollback")).to_have_count(0)
        response = page.goto(f"{gateway.url}/experiments")
        assert response is not None
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
        assert page.locator("script").count() == 0
        csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
        refused = page.request.post(
            f"{gateway.url}/review/experiments/triage/rollback",
            form={"csrf": csrf},
            max_redirects=0,
        )
        assert refused.status == 403 and "admin key" in refused.json()["detail"]
        page.close()

        # an admin: the rollback button, CSRF-protected
        page = sign_in(browser, gateway.url, ADMIN_KEY)
        page.on("dialog", on_dialog)
        section = page.locator("section.experiment[data-experiment='triage']")
        button = section.get_by_role("button", name="Roll back to v0")
        expect(button).to_be_visible()
        expect(section.locator(".ramp")).to_be_visible()
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        print(f"\nscreenshot: {SCREENSHOT}")
        forged = page.request.post(
            f"{gateway.url}/review/experiments/triage/rollback",
            form={"csrf": "forged"},
            max_redirects=0,
        )
        assert forged.status == 403 and "CSRF" in forged.json()["detail"]
        expect(section.locator("h2")).to_contain_text(f"weights v{latest}")
        button.click()
        rolled = latest + 1
        expect(page.locator("#flash")).to_have_text(
            f"Rolled back triage: weights version {rolled} is in force."
        )
        expect(section.locator(".no-ramp")).to_have_text("No ramp in progress.")
        expect(section.locator("tr.variant[data-variant='candidate'] .share")).to_have_text("0.0%")
        expect(section.locator("tr.change.kind-manual_rollback")).to_have_count(1)
        # rolling back again changes nothing (the baseline is in force)
        section.get_by_role("button", name="Roll back to v0").click()
        expect(page.locator("#flash")).to_contain_text("Nothing to roll back")
        assert on_dialog.messages == []

    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    history = httpx.get(
        f"{gateway.url}/admin/experiments/triage/history", headers=admin, timeout=10
    ).json()["history"]
    assert history[0]["kind"] == "manual_rollback" and history[0]["version"] == rolled
    assert history[0]["weights"] == {"control": 1.0, "candidate": 0.0}
    assert history[0]["actor"].startswith("admin:") and ADMIN_KEY not in str(history)
    assert SCREENSHOT.stat().st_size > 20_000
    # no session: the page sends the browser to the sign-in form
    r = httpx.get(f"{gateway.url}/experiments", follow_redirects=False, timeout=5)
    assert r.status_code == 303 and r.headers["location"] == "/review/login?next=%2Fexperiments"
