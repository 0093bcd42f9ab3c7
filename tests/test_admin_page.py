"""The admin page in a real headless Chromium (Debian's `chromium`, driven by Playwright):
it loads, a breaker that a real upstream opens turns red within 2 s, and its reset button
closes it. A screenshot is written under the test's tmp dir (and to docs/ when
SEAWALL_DOCS_SCREENSHOT=1, to refresh the one docs/operations.md shows)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

import seawall
from integrations.upstream import respond
from seawall.httpx import ResilientTransport
from tests.admin_fronts import CONTROL, READ
from tests.tools import require

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RED = "rgb(198, 40, 40)"
GREEN = "rgb(46, 125, 50)"


@pytest.fixture
def browser(tmp_path):
    require("chromium", "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1100, "height": 640},
        )
        try:
            yield context
        finally:
            context.close()


def card(name: str, state: str | None = None) -> str:
    return f'section.card[data-dependency="{name}"]' + (f'[data-state="{state}"]' if state else "")


def colour_of(page, selector: str) -> str:
    # found and read in one step: the cards are redrawn on every event
    return page.evaluate(
        "s => getComputedStyle(document.querySelector(s)).borderTopColor", selector
    )


def test_a_breaker_the_upstream_opens_turns_red_and_reset_closes_it(browser, upstream, tmp_path):
    upstream.default = respond(200)
    upstream.script("/pay", respond(503), respond(503))
    pay = seawall.Policy(
        "payments", retry=None, breaker=seawall.CircuitBreaker(consecutive_failures=2, open_for=60)
    )
    search = seawall.Policy("search", retry=None)
    with (
        seawall.admin.serve(
            port=0,
            read_token=READ,
            control_token={"oncall": CONTROL},
            policies=[pay, search],
            service="shop",
            event_interval=0.5,
        ) as server,
        httpx.Client(transport=ResilientTransport(pay)) as pay_client,
        httpx.Client(transport=ResilientTransport(search)) as search_client,
    ):
        for _ in range(5):
            assert search_client.get(upstream.url + "/search").status_code == 200
        page = browser.new_page()
        page.goto(server.url + "/")
        assert page.title() == "seawall"
        page.fill("#token", CONTROL)
        page.click("#login button[type=submit]")
        page.wait_for_selector(card("payments", "closed"), timeout=5000)
        page.wait_for_selector("#mode:has-text('live')", timeout=5000)
        assert page.evaluate("sessionStorage.getItem('seawall-token')") == CONTROL
        assert page.context.cookies() == []  # the token is never a cookie
        assert f"pid {os.getpid()}" in page.inner_text("#process")

        assert [pay_client.get(upstream.url + "/pay").status_code for _ in range(2)] == [503, 503]
        opened = time.monotonic()
        page.wait_for_selector(card("payments", "open"), timeout=2000)
        assert time.monotonic() - opened < 2.0
        assert colour_of(page, card("payments")) == RED
        assert "circuit breaker payments of payments is open" in page.inner_text("#alerts")
        # sorted by error rate: the failing dependency comes first
        assert page.eval_on_selector_all(
            "section.card", "cs => cs.map(c => c.dataset.dependency)"
        ) == ["payments", "search"]
        shot = tmp_path / "admin-page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("SEAWALL_DOCS_SCREENSHOT") == "1":
            docs = Path(__file__).parent.parent / "docs" / "operations-page.png"
            docs.write_bytes(shot.read_bytes())

        page.once("dialog", lambda dialog: dialog.accept("upstream fixed"))
        page.click(f'{card("payments")} button[data-action="reset"]')
        page.wait_for_selector(card("payments", "closed"), timeout=2000)
        assert colour_of(page, card("payments")) == GREEN
        breaker = pay.dependency("payments").breaker()
        assert breaker is not None and breaker.state(pay.now()).value == "closed"
        manual = breaker.view(pay.now()).manual
        assert manual is not None and (manual.action, manual.by, manual.reason) == (
            "reset",
            "oncall",
            "upstream fixed",
        )

        page.click("#forget")  # a read token: the same cards, no buttons
        page.fill("#token", READ)
        page.click("#login button[type=submit]")
        page.wait_for_selector(card("search"), timeout=5000)
        page.wait_for_selector("#mode:has-text('live')", timeout=5000)
        assert page.locator("button[data-action]").count() == 0


def test_without_the_event_stream_the_page_falls_back_to_polling(browser, upstream):
    policy = seawall.Policy("polled", retry=None)
    with seawall.admin.serve(
        port=0, read_token=READ, policies=[policy], routes={"health", "status", "page"}
    ) as server:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.fill("#token", READ)
        page.click("#login button[type=submit]")
        page.wait_for_selector(card("polled", "closed"), timeout=5000)
        assert page.inner_text("#mode") == "polling every 3 s"
        policy.dependency("polled").breaker().isolate(policy.now())  # type: ignore[union-attr]
        page.wait_for_selector(card("polled", "isolated"), timeout=5000)  # the next poll
        assert "isolated (held open)" in page.inner_text(card("polled")).lower()


def test_a_fleet_breaker_shows_local_and_fleet_and_isolates_fleet_wide(browser):
    """A breaker in fleet mode: the card labels the local state and the fleet's, and its
    "isolate fleet-wide" button isolates the breaker of another process of the fleet."""
    from tests.redis_server import RedisServer

    with RedisServer() as redis_server:
        here, there = (
            seawall.Fleet(redis_server.url, namespace="page", start=False) for _ in range(2)
        )
        pay = seawall.Policy("payments", retry=None, store=here)
        other = seawall.Policy("payments", retry=None, store=there)
        pay.dependency("payments")
        other.dependency("payments")
        here.flush()  # a first flush: the fleet's view
        with seawall.admin.serve(
            port=0, control_token={"oncall": CONTROL}, policies=[pay], event_interval=0.5
        ) as server:
            page = browser.new_page()
            page.goto(server.url + "/")
            page.fill("#token", CONTROL)
            page.click("#login button[type=submit]")
            page.wait_for_selector(card("payments", "closed"), timeout=5000)
            text = page.inner_text(card("payments")).lower()  # the state is in capitals
            assert "local: closed" in text and "fleet\tclosed, 0 calls" in text, repr(text)
            page.once("dialog", lambda dialog: dialog.accept("drill"))
            page.click(f'{card("payments")} button[data-action="isolate"][data-scope="fleet"]')
            page.wait_for_selector(card("payments", "isolated"), timeout=2000)
            assert "isolate (fleet-wide) by oncall" in page.inner_text(card("payments")).lower()
        there.flush()  # the other process learns it at its next flush (or by pub/sub)
        breaker = other.dependency("payments").shared_breaker
        assert breaker is not None and breaker.state(other.now()).value == "isolated"


def test_a_breaker_held_open_as_unhealthy_shows_why(browser, upstream):
    policy = seawall.Policy("ledger", retry=None)
    with (
        seawall.admin.serve(
            port=0, read_token=READ, policies=[policy], event_interval=0.3
        ) as server,
        httpx.Client(transport=ResilientTransport(policy)) as client,
    ):
        assert client.get(upstream.url + "/ledger").status_code == 200
        page = browser.new_page()
        page.goto(server.url + "/")
        page.fill("#token", READ)
        page.click("#login button[type=submit]")
        page.wait_for_selector(card("ledger", "closed"), timeout=5000)
        assert page.locator(f"{card('ledger')} .unhealthy").count() == 0
        policy.update_health(False, reason="replica lag 40 s")
        page.wait_for_selector(card("ledger", "open"), timeout=3000)
        assert page.inner_text(f"{card('ledger')} .unhealthy") == (
            "unhealthy: manual: replica lag 40 s"
        )
        assert "held open as unhealthy (manual: replica lag 40 s)" in page.inner_text("#alerts")
        policy.update_health(True)
        page.wait_for_selector(card("ledger", "half_open"), timeout=3000)
        assert page.locator(f"{card('ledger')} .unhealthy").count() == 0


def letter_row(state: str | None = None) -> str:
    return "tr[data-letter]" + (f'[data-state="{state}"]' if state else "")


def test_dead_letters_are_listed_shown_and_replayed_or_resolved_after_confirmation(
    browser, upstream, tmp_path
):
    from seawall.deadletters import DeadLetters, SQLiteStore

    letters = DeadLetters(SQLiteStore(tmp_path / "letters.db"), replay_rate=100.0)
    policy = seawall.Policy("orders", retry=None, breaker=None, dead_letters=letters)
    upstream.script("/orders", respond(503), respond(503), then=respond(201))
    try:
        with (
            seawall.admin.serve(
                port=0,
                read_token=READ,
                control_token={"oncall": CONTROL},
                policies=[policy],
                dead_letters=letters,
                event_interval=0.3,
            ) as server,
            httpx.Client(transport=ResilientTransport(policy)) as client,
        ):
            for n in (1, 2):
                sent = client.post(upstream.url + f"/orders?n={n}", content=b'{"sku": 7}')
                assert sent.status_code == 503
            letters.flush()
            ids = {x.url.rpartition("=")[2]: x.id for x in letters.list()}
            assert sorted(ids) == ["1", "2"]

            page = browser.new_page()
            page.goto(server.url + "/")
            page.fill("#token", CONTROL)
            page.click("#login button[type=submit]")
            page.wait_for_selector("#dead-letters:not([hidden])", timeout=5000)
            page.wait_for_function(
                "document.querySelectorAll('tr[data-letter]').length === 2", timeout=5000
            )
            first = f'tr[data-letter="{ids["1"]}"]'
            row = page.inner_text(first)
            assert "orders" in row and "POST" in row and "failure (503)" in row
            assert "pending" in row
            assert "2 recorded, 0 dropped" in page.inner_text("#letter-counts")

            page.click(f"{first} td.url")  # the detail
            page.wait_for_selector("#letter:not([hidden])", timeout=3000)
            detail = page.inner_text("#letter")
            assert ids["1"] in detail and "replays: none yet" in detail
            key = letters.get(ids["1"]).idempotency_key  # type: ignore[union-attr]
            assert key and key in detail

            page.once("dialog", lambda dialog: dialog.dismiss())  # cancelled: nothing sent
            page.click(f'{first} button[data-letter-action="replay"]')
            time.sleep(0.3)
            assert upstream.hits("/orders") == 2
            assert letters.get(ids["1"]).state == "pending"  # type: ignore[union-attr]

            asked: list[str] = []

            def accept(dialog) -> None:
                asked.append(dialog.message)
                dialog.accept()

            page.once("dialog", accept)
            page.click(f'{first} button[data-letter-action="replay"]')
            page.wait_for_selector(
                f'tr[data-letter="{ids["1"]}"][data-state="resolved"]', timeout=5000
            )
            assert asked == [f"Replay dead letter {ids['1']} now, through its policy?"]
            assert upstream.hits("/orders") == 3
            assert upstream.requests[-1].headers["idempotency-key"] == key
            page.wait_for_selector("#letter ul.replays", timeout=3000)
            assert "ok 201" in page.inner_text("#letter")
            assert page.locator(f"{first} button").count() == 0  # resolved: no more actions

            second = f'tr[data-letter="{ids["2"]}"]'
            page.once("dialog", lambda dialog: dialog.dismiss())
            page.click(f'{second} button[data-letter-action="resolve"]')
            time.sleep(0.3)
            assert letters.get(ids["2"]).state == "pending"  # type: ignore[union-attr]
            page.once("dialog", lambda dialog: dialog.accept("refunded by hand"))
            page.click(f'{second} button[data-letter-action="resolve"]')
            page.wait_for_selector(f'{second}[data-state="resolved"]', timeout=5000)
            done = letters.get(ids["2"])
            assert done is not None and done.resolution == "refunded by hand"
            assert upstream.hits("/orders") == 3  # resolving sends nothing

            page.click("#forget")  # a read token sees the letters, with no buttons
            page.fill("#token", READ)
            page.click("#login button[type=submit]")
            page.wait_for_function(
                "document.querySelectorAll('tr[data-letter]').length === 2", timeout=5000
            )
            assert page.locator("button[data-letter-action]").count() == 0
    finally:
        letters.close()
