"""``make run``'s promise, in chromium: the real local run (``run-local`` on DynamoDB Local, its
schedules folding the insights), its console at ``/console/`` signed in with the demo key the
banner prints, shows the demo brand's figures and program as its API answers them."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from devtools.emulators import DynamoDBLocal
from devtools.local_run import DEMO_MEMBERS
from tests.browser.conftest import Console, console_tab
from tests.support import emulators
from tests.support.console_assets import ensure_console_assets
from tests.support.local_run import Started, running, stop_with_sigterm

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        DynamoDBLocal.unavailable() is not None and not emulators.required(),
        reason="DynamoDB Local not installed and LOYALTY_SKIP_DYNAMODB_LOCAL=1",
    ),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]
#: The insights' fold runs every second in this run, and sees an event once the feed's settle
#: window (5 s) has passed; on a busy machine it takes longer.
FOLDED_SECONDS = 90


def number(value: int) -> str:
    return f"{value:,}"


def card(screen: Any, testid: str) -> Any:
    return screen.get_by_test_id(testid).locator(".card-value")


def _folded_summary(run: Started, key: str, period: dict[str, str]) -> dict[str, Any]:
    """The API's summary for ``period`` once the fold has counted every demo member and their points."""
    members, issued = len(DEMO_MEMBERS), sum(m["points"] for m in DEMO_MEMBERS)
    deadline = time.monotonic() + FOLDED_SECONDS
    while True:
        answer = run.call("GET", "/v1/insights/summary?from={from}&to={to}".format(**period), key)
        assert answer.status_code == 200, answer.text
        summary: dict[str, Any] = answer.json()
        if summary["members"]["total"] == members and summary["points"]["issued"] == issued:
            return summary
        assert time.monotonic() < deadline, f"the demo's figures were not folded in {FOLDED_SECONDS}s: {summary}"
        time.sleep(1)


def _shows(screen: Any, summary: dict[str, Any]) -> None:
    """Wait until the overview's cards are ``summary``'s numbers, asking for the period again (Show)
    while they are not: the overview reads the figures once, when it is shown."""
    expected = {
        "kpi-members": number(summary["members"]["total"]),
        "kpi-enrolled": number(summary["members"]["enrolled"]),
        "kpi-issued": number(summary["points"]["issued"]),
        "kpi-redeemed": number(summary["points"]["redeemed"]),
        "kpi-liability": number(summary["liability"]["available"]["points"]),
    }
    deadline = time.monotonic() + FOLDED_SECONDS
    while True:
        try:
            for testid, value in expected.items():
                expect(card(screen, testid)).to_have_text(value, timeout=5_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            screen.get_by_role("button", name="Show").click()


def _program_shown_as_the_api_answers(console: Console, run: Started, key: str) -> None:
    screen = console.show("program")
    program = run.call("GET", "/v1/program", key).json()
    rules = run.call("GET", "/v1/program/rules", key).json()["data"]
    rewards = run.call("GET", "/v1/rewards?limit=100", key).json()["data"]
    settings = screen.get_by_test_id("program-settings")
    expect(settings).to_contain_text(f"Points per currency unit{program['points_per_currency_unit']}")
    expect(settings).to_contain_text(f"Rounding{program['rounding']}")
    for testid, listed, empty in (
        ("rules", rules, "No earning rule: the base rate applies."),
        ("rewards", rewards, "No rewards yet."),
    ):
        if not listed:
            expect(screen.get_by_test_id(testid)).to_have_text(empty)
            continue
        rows = screen.get_by_test_id(testid).locator("tbody tr")
        expect(rows).to_have_count(len(listed))
        expect(rows.locator("td:first-child")).to_have_text([item["name"] for item in listed])


def test_make_run_then_the_console_signed_in_with_the_demo_key_shows_the_demo_brand_working(
    browser: Any, tmp_path: Path
) -> None:
    ensure_console_assets()  # what make run does first
    # Given make run, started as a developer starts it, and the demo key its banner prints
    with running(tmp_path / "data", tmp_path / "run.log") as run:
        key = run.printed("Demo key")
        assert key == run.keys["admin_key"]
        console_url = run.printed("Console")
        assert console_url == run.base + "/console/"
        me = run.call("GET", "/v1/me", key).json()
        with console_tab(browser, run.base) as console:
            # When the console is opened and signed in with that key
            console.sign_in(key)
            # Then it is the demo brand's console
            expect(console.page.locator("#brand-name")).to_have_text(me["tenant"]["name"])
            assert me["tenant"]["name"] == "Demo Coffee"
            # And its overview shows the figures the insights API answers for the same key and period
            screen = console.show("overview")
            period = {
                "from": console.page.input_value("#period-from"),
                "to": console.page.input_value("#period-to"),
            }
            summary = _folded_summary(run, key, period)
            _shows(screen, summary)
            expect(screen.get_by_test_id("kpi-liability")).to_contain_text(summary["currency"])
            console.screenshot("local-run-overview")
            # And its program screen shows the program, the earning rules and the rewards the API lists
            _program_shown_as_the_api_answers(console, run, key)
            console.screenshot("local-run-program")
        # And make run stops cleanly, leaving no process behind
        stop_with_sigterm(run)
    assert "Traceback" not in run.log.read_text()
