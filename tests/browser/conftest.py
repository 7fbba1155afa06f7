"""The brand console in a real browser: Debian's chromium driven by Playwright, against a
`chalice local` server (as `make run` serves it) on moto's server, seeded through the API."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.services import reset_platform
from tests.support.console_assets import ensure_console_assets
from tests.support.http import OPERATOR_KEY
from tests.support.live_server import chalice_local

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
#: Screenshots of each screen, for the test report (gitignored).
REPORT_DIR = ROOT / "reports" / "console"
#: Where ``LOYALTY_CONSOLE_DOCS_SCREENSHOTS=1`` also writes the docs page's screenshots.
DOCS_IMAGES = ROOT / "docs" / "guides" / "console"
XSS_NAME = "<img src=x onerror=alert(1)>"


def _chromium_missing() -> str | None:
    if Path(CHROMIUM).exists():
        return None
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing on CI: `make test` installs it (make console-browser)")
    return f"{CHROMIUM} not installed (make console-browser installs Debian's chromium)"


@dataclass
class Brand:
    """A brand seeded for the console, and the API it is served by."""

    base: str
    admin_key: str
    read_key: str
    ids: dict[str, str] = field(default_factory=dict)
    #: The server's settings (its emulator and table prefix), for running its jobs from here.
    server_env: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, body: Any = None, key: str | None = None, **headers: str) -> Any:
        reply = requests.request(
            method,
            self.base + "/v1" + path,
            json=body,
            headers={"Authorization": f"Bearer {key or self.admin_key}", **headers},
            timeout=30,
        )
        assert reply.status_code < 300, (method, path, reply.status_code, reply.text)
        return reply.json() if reply.text else None

    @contextmanager
    def _server_settings(self) -> Iterator[None]:
        """This process on the server's settings (its emulator, table prefix and stage), for
        running a job as ``make run``'s schedule (or the deployed queues) runs it: the test
        server runs no schedules."""
        with pytest.MonkeyPatch.context() as patch:
            for name, value in self.server_env.items():
                patch.setenv(name, value)
            reset_platform()
            try:
                yield
            finally:
                reset_platform()

    def run_import(self, import_id: str) -> None:
        """The import job on the server's tables."""
        from chalicelib.jobs.imports import run_import

        with self._server_settings():
            run_import("console", import_id, budget_seconds=30)

    def run_webhooks(self) -> dict[str, Any]:
        """The webhook job on the server's tables, run as if the feed's settle window had passed
        (readers see an event only then): new events become deliveries, and due endpoints are
        sent their outbox (in this process); what it did."""
        from chalicelib.domain.clock import utc_now
        from chalicelib.domain.events import SETTLE_WINDOW
        from chalicelib.jobs.webhooks import dispatch_tenant

        with self._server_settings():
            return dispatch_tenant("console", clock=lambda: utc_now() + SETTLE_WINDOW)

    def earn(self, member_id: str, points: int, reference: str) -> None:
        self.call(
            "POST",
            f"/members/{member_id}/earn",
            {"points": points, "reference": reference},
            **{"Idempotency-Key": f"seed-{reference}"},
        )


def _seed(base: str, server_env: dict[str, str]) -> Brand:
    created = requests.post(
        base + "/v1/tenants",
        json={"tenant_id": "console", "name": "Console Coffee", "currency": "EUR", "timezone": "Europe/Helsinki"},
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    admin_key = created.json()["api_key"]["secret"]
    brand = Brand(base=base, admin_key=admin_key, read_key="", server_env=server_env)
    brand.read_key = brand.call("POST", "/api-keys", {"name": "analyst", "scopes": ["read"]})["secret"]
    brand.call(
        "PUT",
        "/program",
        {"points_per_currency_unit": "2", "rounding": "floor", "expiry": {"kind": "fixed_period", "days": 365}},
    )
    brand.call(
        "POST",
        "/program/rules",
        {"name": "Weekend double", "kind": "order_multiplier", "factor": "2", "weekdays": ["sat", "sun"]},
    )
    brand.call(
        "PUT",
        "/program/tiers",
        {
            "metric": "points",
            "window": {"kind": "rolling_months", "months": 12},
            "tiers": [{"name": "silver", "threshold": 500}, {"name": "gold", "threshold": 5000, "multiplier": "1.5"}],
        },
    )
    reward = brand.call(
        "POST",
        "/rewards",
        {"name": "Free coffee", "type": "free_product", "points_cost": 150, "stock": 40, "sku": "COFFEE"},
        **{"Idempotency-Key": "seed-reward"},
    )
    brand.ids["reward"] = reward["id"]
    brand.call(
        "POST", "/partners", {"partner_id": "skyair", "name": "Sky Air", "earn_rate": "0.01", "redeem_rate": "0.008"}
    )
    ada = brand.call(
        "POST",
        "/members",
        {"external_id": "cust-1", "name": "Ada Lovelace", "email": "ada@example.com", "card_code": "CARD-0001"},
    )
    brand.ids["ada"] = ada["id"]
    brand.ids["ada_referral"] = ada["referral_code"]
    for n in range(24):  # more than a page of the ledger (20)
        brand.earn(ada["id"], 100 + n, f"order-{n}")
    brand.ids["xss"] = brand.call("POST", "/members", {"external_id": "cust-xss", "name": XSS_NAME})["id"]
    brand.earn(brand.ids["xss"], 50, "xss-order")
    return brand


@pytest.fixture(scope="module")
def brand(moto_server_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brand]:
    ensure_console_assets()  # what make run and make install do first
    log = tmp_path_factory.mktemp("console") / "server.log"
    server_env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "LOYALTY_DYNAMODB_ENDPOINT": moto_server_endpoint,
        "LOYALTY_TABLE_PREFIX": f"b{uuid.uuid4().hex[:12]}",
        "LOYALTY_OPERATOR_KEY": OPERATOR_KEY,
        "LOYALTY_STAGE": "local",  # as the server's stage sets it: KMS on the emulator, webhooks to loopback
    }
    with chalice_local(moto_server_endpoint, prefix_letter="b", log=log, env=server_env) as base:
        yield _seed(base, server_env)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _chromium_missing()
    if reason is not None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Console:
    """One browser tab on the console, and what it saw: dialogs, page errors, CSP reports."""

    page: Any
    base: str
    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def open(self, route: str = "") -> None:
        self.page.goto(self.base + "/console/" + (f"#/{route}" if route else ""))

    def sign_in(self, key: str) -> None:
        self.open()
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.locator("header.top").wait_for(state="visible")

    def show(self, route: str) -> Any:
        """Go to a screen and wait until it has rendered; the screen's element."""
        self.page.evaluate("route => { location.hash = '#/' + route; }", route)
        screen = self.page.locator(f".screen[data-ready=true][data-screen={route.split('/')[0]}]")
        screen.wait_for(state="attached", timeout=20_000)
        return screen

    def screenshot(self, name: str, docs: bool = False) -> Path:
        REPORT_DIR.mkdir(parents=True, exist_ok=True)
        path = REPORT_DIR / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        if docs and os.environ.get("LOYALTY_CONSOLE_DOCS_SCREENSHOTS") == "1":  # the top of the screen
            self.page.evaluate("window.scrollTo(0, 0)")
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(DOCS_IMAGES / f"{name}.png"), full_page=False)
        return path


@contextmanager
def console_tab(browser: Any, base: str) -> Iterator[Console]:
    """A new browser context on the console served at ``base``; on leaving, what it saw is
    asserted clean: no page error and no error on the browser's console."""
    context = browser.new_context(viewport={"width": 1100, "height": 800}, accept_downloads=True)
    page = context.new_page()
    tab = Console(page=page, base=base)
    page.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            tab.problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )

    def dialog(d: Any) -> None:
        tab.dialogs.append(d.message)
        d.accept()

    page.on("dialog", dialog)
    try:
        yield tab
    finally:
        context.close()
    assert tab.problems == [], tab.problems


@pytest.fixture
def console(browser: Any, brand: Brand) -> Iterator[Console]:
    with console_tab(browser, brand.base) as tab:
        yield tab


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
