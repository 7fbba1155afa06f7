"""The brand console as a brand's team meets it, in chromium: sign-in and sign-out, every screen
showing what the API answers, a redemption, a key's secret shown once, a read-only key kept from
the write actions, member text rendered as text, at desktop and phone width."""

from __future__ import annotations

import gzip
import json
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import XSS_NAME, Brand, Console, unique
from tests.support.receiver import Receiver

pytestmark = pytest.mark.browser
KEY_SLOT = "loyalty-console-key"


def cards(screen: Any, testid: str) -> str:
    return screen.get_by_test_id(testid).locator(".card-value").inner_text()


def number(value: int) -> str:
    return f"{value:,}"


# --- sign-in, sign-out ------------------------------------------------------------------------


def test_sign_in_by_keyboard_keeps_the_key_in_the_tab_only_and_sign_out_forgets_it(
    console: Console, brand: Brand
) -> None:
    page = console.page
    console.open()
    # Given a wrong key, the console says so and stays on the sign-in form
    page.get_by_label("API key").fill("lk_not_a_key")
    page.keyboard.press("Enter")
    expect(page.locator("#sign-in-error")).to_contain_text("not valid")
    # When the brand's key is typed and sent with the keyboard only
    page.get_by_label("API key").fill(brand.admin_key)
    page.keyboard.press("Enter")
    page.locator("header.top").wait_for(state="visible")
    # Then the brand and the key's scopes are shown, and the key is in this tab's storage only
    assert page.locator("#brand-name").inner_text() == "Console Coffee"
    assert "admin" in page.locator("#who").inner_text()
    assert page.evaluate(f"sessionStorage.getItem('{KEY_SLOT}')") == brand.admin_key
    assert page.evaluate("localStorage.length") == 0
    assert brand.admin_key not in page.url
    console.show("members")
    console.screenshot("sign-in-done")
    # And a reload keeps the session (sessionStorage), while a new tab's context would not
    page.reload()
    page.locator("header.top").wait_for(state="visible")
    # When signing out
    page.get_by_role("button", name="Sign out").click()
    # Then the key is gone from memory and storage, and the sign-in form is back
    assert page.get_by_label("API key").is_visible()
    assert page.evaluate(f"sessionStorage.getItem('{KEY_SLOT}')") is None
    page.reload()
    assert page.get_by_label("API key").is_visible()
    assert page.locator("header.top").is_hidden()
    console.screenshot("sign-in", docs=True)


def test_pages_carry_a_strict_content_security_policy(brand: Brand) -> None:
    page = requests.get(brand.base + "/console/", timeout=10)
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert '<script type="module" src="app.js">' in page.text and " style=" not in page.text
    assert requests.get(brand.base + "/console/app.js", timeout=10).headers["Content-Security-Policy"] == policy
    moved = requests.get(brand.base + "/console", timeout=10, allow_redirects=False)
    assert moved.status_code == 301 and moved.headers["Location"] == "console/"
    assert requests.get(brand.base + "/console/nope.js", timeout=10).json()["error"]["code"] == "not_found"


# --- overview ---------------------------------------------------------------------------------

SUMMARY = {
    "as_of": "2026-06-30T12:00:00Z",
    "from": "2026-06-01",
    "to": "2026-06-30",
    "point_value": "0.01",
    "currency": "EUR",
    "members": {"total": 1234, "enrolled": 56, "active_30d": 789, "active_90d": 900},
    "points": {"issued": 150000, "redeemed": 42000, "expired": 1000, "reversed": 300, "adjusted": 50},
    "redemption": {"rate": "0.28", "active_redeemer_share": "0.1"},
    "breakage": {"rate": "0.05", "expired": 1000, "issued_matured": 20000},
    "liability": {"available": {"points": 98765, "value": "987.65"}, "pending": {"points": 10, "value": "0.10"}},
    "orders": {"count": 10, "revenue": "100.00", "aov": "10.00", "per_member": "1.2", "repeat_rate": "0.3"},
    "clv": "12.00",
    "tiers": {"mix": {"silver": 10}, "upgrades": 1, "downgrades": 0},
    "rewards": {
        "redemptions": [
            {"reward_id": "r1", "name": "Free coffee", "count": 12},
            {"reward_id": "r2", "name": "<b>Cake</b>", "count": 30},
        ],
        "coupons": {"issued": 42, "used": 30},
    },
    "referrals": {"codes_used": 1, "completed": 1, "conversion": "1"},
    "plans": {"active": 0, "started": 0, "lapsed": 0},
    "activities": {},
}
LIABILITY = {
    "as_of": "2026-06-30T12:00:00Z",
    "point_value": "0.01",
    "available": {
        "points": 98765,
        "value": "987.65",
        "by_expiry_month": [
            {"month": "2026-07", "points": 1000, "value": "10.00"},
            {"month": "2026-08", "points": 2500, "value": "25.00"},
        ],
        "without_expiry": {"points": 95265, "value": "952.65"},
    },
    "pending": {"points": 10, "value": "0.10", "by_maturity_month": []},
}


def _timeseries(url: str) -> dict[str, Any]:
    metric = re.search(r"metric=([a-z_]+)", url)
    values = {"points_issued": [300, 500, 800, 1300], "points_redeemed": [100, 250, 300, 420]}.get(
        metric.group(1) if metric else "", [3, 5, 8, 13]
    )
    return {
        "as_of": "2026-06-30T12:00:00Z",
        "metric": metric.group(1) if metric else "",
        "interval": "day",
        "points": [{"period": f"2026-06-0{i + 1}", "value": v} for i, v in enumerate(values)],
    }


def test_the_overview_shows_the_insights_numbers_with_charts_in_few_requests(console: Console, brand: Brand) -> None:
    # Given an insights API answering the shapes of its contract
    def fulfil(route: Any) -> None:
        url = route.request.url
        body = SUMMARY if "/summary" in url else LIABILITY if "/liability" in url else _timeseries(url)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    console.page.route(re.compile(r".*/v1/insights/.*"), fulfil)
    api_requests: list[str] = []
    console.page.on("request", lambda r: api_requests.append(r.url) if "/v1/insights/" in r.url else None)
    # When the brand signs in (the overview is the first screen)
    console.sign_in(brand.admin_key)
    screen = console.show("overview")
    screen.get_by_test_id("kpis").wait_for()
    # Then every card is the API's number, the charts are drawn, and the top rewards are ordered
    assert cards(screen, "kpi-members") == "1,234"
    assert cards(screen, "kpi-enrolled") == "56"
    assert cards(screen, "kpi-active-30d") == "789"
    assert cards(screen, "kpi-issued") == "150,000"
    assert cards(screen, "kpi-redeemed") == "42,000"
    assert cards(screen, "kpi-redemption-rate") == "28.0%"
    assert cards(screen, "kpi-liability") == "98,765"
    assert "987.65 EUR" in screen.get_by_test_id("kpi-liability").inner_text()
    expect(screen.locator(".chart canvas")).to_have_count(4)
    rows = screen.get_by_test_id("top-rewards").locator("tbody tr").all_inner_texts()
    assert rows[0].split("\t") == ["<b>Cake</b>", "30"] and rows[1].split("\t") == ["Free coffee", "12"]
    months = screen.get_by_test_id("liability-by-month").locator("tbody tr").all_inner_texts()
    assert [m.split("\t")[:2] for m in months] == [["2026-07", "1,000"], ["2026-08", "2,500"], ["No expiry", "95,265"]]
    console.screenshot("overview", docs=True)
    # And the overview needed one summary, five series and one liability read
    print(f"\nAPI requests behind the overview: {len(api_requests)}: {sorted(set(api_requests))}")
    assert len(api_requests) == 7, api_requests
    # And the period picker asks for days of the tenant's time zone
    today = datetime.now(ZoneInfo("Europe/Helsinki")).date()
    screen.get_by_label("Period", exact=True).select_option("7")
    with console.page.expect_request(lambda r: "/insights/summary" in r.url) as asked:
        screen.get_by_role("button", name="Show").click()
    assert f"from={today - timedelta(days=6)}&to={today}" in asked.value.url, asked.value.url
    expect(screen.get_by_test_id("kpis")).to_be_visible()


def test_the_overview_says_so_when_the_insights_api_is_not_there(console: Console, brand: Brand) -> None:
    answer = requests.get(
        brand.base + "/v1/insights/summary",
        params={"from": "2026-01-01", "to": "2026-01-31"},
        headers={"Authorization": f"Bearer {brand.admin_key}"},
        timeout=10,
    )
    console.sign_in(brand.admin_key)
    screen = console.show("overview")
    if answer.status_code == 404:
        assert "insights API is not available" in screen.inner_text()
        assert screen.locator("[data-insights=unavailable]").count() == 1
    else:  # the insights API is deployed: the cards are its numbers
        screen.get_by_test_id("kpis").wait_for()
        summary = requests.get(
            brand.base + "/v1/insights/summary",
            params={
                "from": console.page.input_value("#period-from"),
                "to": console.page.input_value("#period-to"),
            },
            headers={"Authorization": f"Bearer {brand.admin_key}"},
            timeout=10,
        ).json()
        assert cards(screen, "kpi-members") == number(summary["members"]["total"])
        assert cards(screen, "kpi-issued") == number(summary["points"]["issued"])
    console.screenshot("overview-live")


# --- members ----------------------------------------------------------------------------------


def test_a_member_is_found_by_external_id_card_or_referral_code_and_shows_the_api_numbers(
    console: Console, brand: Brand
) -> None:
    console.sign_in(brand.admin_key)
    ada = brand.ids["ada"]
    for by, value in (
        ("external_id", "cust-1"),
        ("card_code", "CARD-0001"),
        ("referral_code", brand.ids["ada_referral"]),
    ):
        screen = console.show("members")
        finder = screen.get_by_test_id("find-member")
        finder.get_by_label("Find by").select_option(by)
        finder.get_by_label("Value").fill(value)
        finder.get_by_role("button", name="Find").click()
        console.page.wait_for_url(f"**/console/#/members/{ada}")
        member = console.page.locator(".screen[data-ready=true][data-screen=members]")
        member.wait_for(state="attached")
        assert member.get_by_test_id("member-name").inner_text() == "Ada Lovelace", by
    balance = brand.call("GET", f"/members/{ada}/balance")
    assert cards(member, "balance-available") == number(balance["available"])
    assert cards(member, "balance-earned") == number(balance["lifetime_earned"])
    assert (
        cards(member, "balance-expiring") == number(balance["expiring_soon"]["points"])
        if balance["expiring_soon"]
        else True
    )
    assert cards(member, "balance-tier") == (balance["tier"] or "—")
    # The ledger, page by page, is the API's
    first = brand.call("GET", f"/members/{ada}/transactions?limit=20")
    rows = member.get_by_test_id("ledger").locator("tbody tr")
    assert rows.count() == len(first["data"]) == 20
    assert [r.split("\t")[2] for r in rows.all_inner_texts()] == [number(t["points"]) for t in first["data"]]
    member.get_by_test_id("ledger-older").click()
    second = brand.call("GET", f"/members/{ada}/transactions?limit=20&cursor={first['next_cursor']}")
    expect(member.locator(".pager span")).to_have_text("Page 2")
    assert rows.count() == len(second["data"])
    assert [r.split("\t")[2] for r in rows.all_inner_texts()] == [number(t["points"]) for t in second["data"]]
    member.get_by_test_id("ledger-newer").click()
    expect(member.locator(".pager span")).to_have_text("Page 1")
    # Lots with their expiry, and the member's events
    lots = member.get_by_test_id("lots").locator("tbody tr")
    assert lots.count() == len([t for t in first["data"] if t["expires_at"]])
    assert member.get_by_test_id("events").locator("tbody tr").count() >= 1
    console.screenshot("member", docs=True)


def test_a_redemption_from_the_console_double_clicked_debits_once(console: Console, brand: Brand) -> None:
    ada = brand.ids["ada"]
    before = brand.call("GET", f"/members/{ada}/balance")["available"]
    sent: list[dict[str, str]] = []
    console.page.on("request", lambda r: sent.append(r.headers) if r.url.endswith(f"/members/{ada}/redeem") else None)
    console.sign_in(brand.admin_key)
    screen = console.show(f"members/{ada}")
    redeem = screen.get_by_test_id("action-redeem")
    redeem.get_by_label("Points").fill("130")
    redeem.get_by_label("Reference").fill("console-redemption")
    # When the brand's agent double-clicks Redeem
    redeem.get_by_role("button", name="Redeem").dblclick()
    redeem.locator(".message.success").wait_for()
    # Then the member is debited once, and the console shows the API's new balance
    after = brand.call("GET", f"/members/{ada}/balance")["available"]
    assert after == before - 130
    assert cards(screen, "balance-available") == number(after)
    ledger = brand.call("GET", f"/members/{ada}/transactions?limit=5")["data"]
    assert [t["reference"] for t in ledger].count("console-redemption") == 1
    assert sent and all(h.get("idempotency-key", "").startswith("console-") for h in sent)
    assert len({h["idempotency-key"] for h in sent}) == 1
    # And a second redemption is a new action with a new key
    redeem.get_by_label("Points").fill("10")
    redeem.get_by_role("button", name="Redeem").click()
    expect(screen.get_by_test_id("balance-available").locator(".card-value")).to_have_text(number(after - 10))
    assert len({h["idempotency-key"] for h in sent}) == 2
    # And a reward redeemed from the member's catalogue issues a coupon and takes one from the stock
    reward = brand.ids["reward"]
    stock = brand.call("GET", f"/rewards/{reward}")["remaining_stock"]
    screen.get_by_test_id(f"redeem-reward-{reward}").click()
    expect(screen.get_by_test_id("coupon")).to_contain_text("Free coffee: coupon ")
    coupons = brand.call("GET", f"/members/{ada}/coupons")["data"]
    assert len(coupons) == 1 and coupons[0]["code"] in screen.get_by_test_id("coupon").inner_text()
    assert brand.call("GET", f"/rewards/{reward}")["remaining_stock"] == stock - 1
    assert cards(screen, "balance-available") == number(after - 10 - 150)
    console.screenshot("member-redeemed")


def ledger_is_the_apis(screen: Any, brand: Brand, member_id: str) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """The ledger the member page shows (its cells) and the API's: the same movements, newest
    first, with the same type, points, balance after and reference."""
    movements = brand.call("GET", f"/members/{member_id}/transactions?limit=20")["data"]
    rows = screen.get_by_test_id("ledger").locator("tbody tr")
    expect(rows).to_have_count(len(movements))
    shown = [[cell.strip() for cell in row.split("\t")] for row in rows.all_inner_texts()]
    assert [row[1:5] for row in shown] == [
        [t["type"], number(t["points"]), number(t["balance_after"]), t["reference"] or "—"] for t in movements
    ]
    return shown, movements


def test_an_earn_a_reversal_and_an_adjustment_from_the_member_page_are_the_apis_ledger(
    console: Console, brand: Brand
) -> None:
    # Given a member without points, on their page
    member = brand.call("POST", "/members", {"external_id": unique("actions"), "name": "Grace Hopper"})["id"]
    order = unique("order")
    console.sign_in(brand.admin_key)
    screen = console.show(f"members/{member}")
    expect(screen.get_by_test_id("ledger")).to_have_text("No movements yet.")
    available = screen.get_by_test_id("balance-available").locator(".card-value")

    # When 120 points are earned for an order
    earn = screen.get_by_test_id("action-earn")
    earn.get_by_label("Points").fill("120")
    earn.get_by_label("Reference").fill(order)
    earn.get_by_label("Description").fill("Order in store")
    earn.get_by_role("button", name="Earn").click()
    # Then the balance and the ledger's new row are the API's
    expect(earn.locator(".message.success")).to_have_text("Earn: 120 points · balance 120.")
    assert brand.call("GET", f"/members/{member}/balance")["available"] == 120
    expect(available).to_have_text("120")
    shown, movements = ledger_is_the_apis(screen, brand, member)
    assert shown[0][1:] == ["earn", "120", "120", order, "Order in store"]
    assert movements[0]["description"] == "Order in store"

    # When part of the order is refunded: 45 of its points taken back
    reverse = screen.get_by_test_id("action-reverse")
    reverse.get_by_label("Reference of the earn").fill(order)
    reverse.get_by_label("Points to take back").fill("45")
    reverse.get_by_role("button", name="Reverse").click()
    expect(reverse.locator(".message.success")).to_have_text("Reverse: -45 points · balance 75.")
    assert brand.call("GET", f"/members/{member}/balance")["available"] == 75
    expect(available).to_have_text("75")
    shown, movements = ledger_is_the_apis(screen, brand, member)
    assert shown[0][1:5] == ["reverse", "-45", "75", order]
    assert [t["type"] for t in movements] == ["reverse", "earn"]

    # When an admin credits 30 points with a reason
    reason = "Goodwill: the order came late"
    adjust = screen.get_by_test_id("action-adjust")
    adjust.get_by_label("Points (negative to remove)").fill("30")
    adjust.get_by_label("Reason").fill(reason)
    adjust.get_by_role("button", name="Adjust").click()
    expect(adjust.locator(".message.success")).to_have_text("Adjust: 30 points · balance 105.")
    balance = brand.call("GET", f"/members/{member}/balance")
    assert balance["available"] == 105
    expect(available).to_have_text("105")
    shown, movements = ledger_is_the_apis(screen, brand, member)
    assert movements[0]["type"] == "adjust" and movements[0]["reason"] == reason
    assert shown[0][1:4] == ["adjust", "30", "105"] and shown[0][5].endswith(f"(reason: {reason})")
    assert [t["type"] for t in movements] == ["adjust", "reverse", "earn"]
    # And the lifetime figures are the API's
    assert cards(screen, "balance-earned") == number(balance["lifetime_earned"])
    assert cards(screen, "balance-redeemed") == number(balance["lifetime_redeemed"])
    console.screenshot("member-actions")


def test_a_member_named_like_markup_is_shown_as_text(console: Console, brand: Brand) -> None:
    console.sign_in(brand.admin_key)
    screen = console.show("members")
    assert XSS_NAME in screen.get_by_test_id("members").inner_text()
    screen = console.show(f"members/{brand.ids['xss']}")
    assert screen.get_by_test_id("member-name").inner_text() == XSS_NAME
    assert console.page.locator("img").count() == 0
    assert console.dialogs == []
    console.screenshot("member-markup-as-text")


# --- program ----------------------------------------------------------------------------------


def test_the_program_screen_shows_the_api_settings_and_previews_an_order(console: Console, brand: Brand) -> None:
    console.sign_in(brand.admin_key)
    screen = console.show("program")
    settings = screen.get_by_test_id("program-settings").inner_text()
    program = brand.call("GET", "/program")
    assert f"Points per currency unit\n{program['points_per_currency_unit']}" in settings
    assert "fixed period: 365 days" in settings
    assert "Weekend double" in screen.get_by_test_id("rules").inner_text()
    assert [r.split("\t")[0] for r in screen.get_by_test_id("tiers").locator("tbody tr").all_inner_texts()] == [
        "silver",
        "gold",
    ]
    reward = brand.call("GET", f"/rewards/{brand.ids['reward']}")
    row = screen.get_by_test_id("rewards").locator("tbody tr").first.inner_text().split("\t")
    assert row[:6] == [
        "Free coffee",
        "free_product",
        "150",
        number(reward["stock"]),
        number(reward["remaining_stock"]),
        number(reward["issued"]),
    ]
    # What would an order earn: the API's preview
    preview = brand.call("POST", "/program/preview", {"order": {"id": "p", "total": "42.50", "currency": "EUR"}})
    form = screen.get_by_test_id("preview")
    form.get_by_label("Order total").fill("42.50")
    form.get_by_role("button", name="Preview").click()
    assert screen.get_by_test_id("preview-points").inner_text() == number(preview["points"])
    # An edit: the birthday bonus, saved through PUT /v1/program
    edit = screen.get_by_test_id("program-form")
    edit.get_by_label("Birthday bonus (points)").fill("75")
    edit.get_by_role("button", name="Save rates and expiry").click()
    expect(console.page.get_by_test_id("program-settings")).to_contain_text("Birthday bonus75")
    saved = brand.call("GET", "/program")
    assert saved["birthday_bonus"] == 75 and saved["expiry"]["days"] == 365
    assert saved["points_per_currency_unit"] == program["points_per_currency_unit"]
    console.screenshot("program", docs=True)


def test_a_rule_and_a_rewards_stock_edited_from_the_program_screen_are_the_apis(console: Console, brand: Brand) -> None:
    # Given a reward with a stock of 10
    name = unique("Tote bag")
    reward = brand.call(
        "POST",
        "/rewards",
        {"name": name, "type": "free_product", "points_cost": 400, "stock": 10, "sku": "TOTE"},
        **{"Idempotency-Key": unique("seed-reward")},
    )
    console.sign_in(brand.admin_key)
    screen = console.show("program")
    row = screen.get_by_test_id("rewards").locator("tbody tr").filter(has_text=name)
    expect(row.locator("td").nth(3)).to_have_text("10")
    # When its stock is set to 25 from the console
    stock = row.get_by_role("form", name=f"Stock of {name}")
    stock.get_by_label("New stock").fill("25")
    stock.get_by_role("button", name="Set stock").click()
    # Then the API has it, and the screen shows the API's stock, remaining stock and issued count
    expect(row.locator("td").nth(3)).to_have_text("25")
    saved = brand.call("GET", f"/rewards/{reward['id']}")
    assert saved["stock"] == 25
    assert [cell.strip() for cell in row.inner_text().split("\t")[:7]] == [
        name,
        "free_product",
        "400",
        "25",
        number(saved["remaining_stock"]),
        number(saved["issued"]),
        saved["status"],
    ]

    # When an earning rule is added from its JSON editor (the draft pre-filled, renamed, its factor changed)
    rule_name = unique("Triple weekend")
    editor = screen.locator("details.editor").filter(has_text="Edit: New earning rule")
    editor.locator("summary").click()
    document = editor.get_by_label("New earning rule (JSON, POST /v1/program/rules)")
    draft = json.loads(document.input_value())
    document.fill(json.dumps({**draft, "name": rule_name, "factor": "3"}))
    editor.get_by_role("button", name="Add rule").click()
    # Then the API has the rule, and the screen lists it as the API does
    rule_row = screen.get_by_test_id("rules").locator("tbody tr").filter(has_text=rule_name)
    expect(rule_row).to_have_count(1)
    (added,) = [r for r in brand.call("GET", "/program/rules")["data"] if r["name"] == rule_name]
    assert (added["kind"], added["factor"], added["weekdays"]) == ("order_multiplier", "3", draft["weekdays"])
    assert [c.strip() for c in rule_row.inner_text().split("\t")[:4]] == [
        rule_name,
        "order_multiplier",
        "3",
        added["status"],
    ]
    # When it is ended from the console
    rule_row.get_by_role("button", name="End").click()
    # Then the API's rule is ended, and so is the screen's
    expect(rule_row.get_by_role("button", name="End")).to_have_count(0)
    ended = brand.call("GET", f"/program/rules/{added['id']}")
    assert ended["status"] == "ended" and ended["ends_at"] is not None
    expect(rule_row.locator("td").nth(3)).to_have_text(ended["status"])
    console.screenshot("program-edited")


# --- integrations -----------------------------------------------------------------------------


def test_a_new_keys_secret_is_shown_once_and_works(console: Console, brand: Brand) -> None:
    console.sign_in(brand.admin_key)
    screen = console.show("integrations")
    name = unique("pos")
    form = screen.get_by_test_id("key-form")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Scope").select_option("read")
    form.get_by_role("button", name="Create key").click()
    secret = screen.get_by_test_id("secret-value").inner_text()
    console.screenshot("api-key-secret-once", docs=True)
    # The secret is a working key with the scope chosen
    me = brand.call("GET", "/me", key=secret)
    assert me["api_key"]["name"] == name and me["api_key"]["scopes"] == ["read"]
    # Once dismissed, it is nowhere in the page again, though the key is listed
    screen.get_by_test_id("secret-done").click()
    screen = console.show("integrations")
    assert name in screen.get_by_test_id("api-keys").inner_text()
    assert secret not in console.page.content()
    # And it is revoked from the console
    key_id = me["api_key"]["id"]
    screen.get_by_test_id(f"revoke-{key_id}").click()
    expect(console.page.get_by_test_id(f"revoke-{key_id}")).to_have_count(0)
    assert (
        requests.get(brand.base + "/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10).status_code
        == 401
    )


def test_integrations_show_partners_settlements_imports_and_exports(console: Console, brand: Brand) -> None:
    console.sign_in(brand.admin_key)
    screen = console.show("integrations")
    assert "Sky Air" in screen.get_by_test_id("partners").inner_text()
    screen.get_by_test_id("settle-skyair").click()
    settlement = brand.call("GET", "/partners/skyair/settlement")
    assert f"Issued\t{number(settlement['issued_points'])}" in screen.get_by_test_id("settlement-table").inner_text()
    # An import: its progress and its row errors, as the API reports them
    form = screen.get_by_test_id("import-form")
    csv = "external_id,email,name\nimp-1,imp1@example.com,Imported One\nimp-2,not-an-email,Imported Two\n"
    form.get_by_label("…or paste the CSV").fill(csv)
    form.get_by_role("button", name="Import").click()
    progress = screen.get_by_test_id("import-progress")
    expect(progress).to_contain_text("pasted.csv: queued · 0 of 2 rows")
    latest = brand.call("GET", "/imports?limit=1")["data"][0]
    # When the import job runs, the console's progress follows it to the end, with the row in error
    brand.run_import(latest["id"])
    expect(progress).to_contain_text("completed · 2 of 2 rows · 1 imported, 0 skipped, 1 failed", timeout=10_000)
    errors = brand.call("GET", f"/imports/{latest['id']}/errors")["data"]
    rows = progress.get_by_test_id("import-errors").locator("tbody tr")
    expect(rows).to_have_count(len(errors))  # the errors table follows the status line
    shown = rows.all_inner_texts()
    assert (
        [row.split("\t")[:2] for row in shown]
        == [[str(e["row"]), e["external_id"]] for e in errors]
        == [["3", "imp-2"]]
    )
    # Webhooks: one added from the console, its signing secret shown once
    hook = screen.get_by_test_id("webhook-form")
    hook.get_by_label("URL").fill("http://127.0.0.1:9/loyalty")  # loopback: allowed in local mode
    hook.get_by_role("button", name="Add webhook").click()
    assert len(screen.get_by_test_id("secret-value").inner_text()) >= 20
    screen.get_by_test_id("secret-done").click()
    screen = console.show("integrations")
    screen.get_by_test_id("webhook").first.locator("summary").click()
    screen.get_by_role("button", name="Show the delivery log").click()
    screen.get_by_test_id("deliveries").wait_for()
    # An export download is the API's CSV
    with console.page.expect_download() as download:
        screen.get_by_test_id("export-members").click()
    exported = download.value.path().read_text()
    assert exported.splitlines()[0].startswith("member_id,external_id")
    assert "cust-1" in exported
    console.screenshot("integrations")


def test_a_webhooks_delivery_log_and_its_redelivery_from_the_console_are_the_apis(
    console: Console, brand: Brand
) -> None:
    with Receiver() as receiver:
        # Given a webhook on a receiver, and one event delivered to it by the webhook job
        path = "/" + unique("hook")
        webhook = brand.call("POST", "/webhooks", {"url": receiver.url(path), "events": ["points.earned"]})["id"]
        member = brand.call("POST", "/members", {"external_id": unique("hooked")})["id"]
        brand.earn(member, 60, unique("hooked-order"))
        brand.run_webhooks()
        assert len(receiver.at(path)) == 1
        (delivered,) = brand.call("GET", f"/webhooks/{webhook}/deliveries")["data"]
        assert (delivered["event_type"], delivered["status"], delivered["attempts"], delivered["response_code"]) == (
            "points.earned",
            "succeeded",
            1,
            200,
        )
        # When its delivery log is opened in the console
        console.sign_in(brand.admin_key)
        screen = console.show("integrations")
        hook = screen.get_by_test_id("webhook").filter(has_text=receiver.url(path))
        hook.locator("summary").click()
        hook.get_by_test_id(f"deliveries-{webhook}").click()
        # Then it shows the API's delivery
        rows = hook.get_by_test_id("deliveries").locator("tbody tr")
        expect(rows).to_have_count(1)
        assert rows.first.inner_text().split("\t")[:4] == ["points.earned", "succeeded", "1", "200"]
        console.screenshot("webhook-deliveries")
        # When Redeliver is clicked
        rows.first.get_by_role("button", name="Redeliver").click()
        # Then the API's delivery list shows the same delivery queued again, and so does the log
        expect(rows.first.locator("td").nth(1)).to_have_text("pending")
        (queued,) = brand.call("GET", f"/webhooks/{webhook}/deliveries")["data"]
        assert (queued["id"], queued["status"], queued["attempts"]) == (delivered["id"], "pending", 1)
        assert rows.first.inner_text().split("\t")[:3] == ["points.earned", "pending", "1"]
        # And the next run of the job sends it again: the same message, a second attempt
        brand.run_webhooks()
        first, again = receiver.at(path)
        assert again.headers["webhook-id"] == first.headers["webhook-id"] and again.body == first.body
        (resent,) = brand.call("GET", f"/webhooks/{webhook}/deliveries")["data"]
        assert (resent["id"], resent["status"], resent["attempts"]) == (delivered["id"], "succeeded", 2)
        hook.get_by_test_id(f"deliveries-{webhook}").click()
        expect(rows.first.locator("td").nth(2)).to_have_text("2")
        assert rows.first.inner_text().split("\t")[:4] == ["points.earned", "succeeded", "2", "200"]


# --- a read-only key --------------------------------------------------------------------------


def test_a_read_only_key_sees_the_numbers_and_no_write_action(console: Console, brand: Brand) -> None:
    console.sign_in(brand.read_key)
    assert console.page.get_by_role("link", name="Integrations").is_hidden()
    member = console.show(f"members/{brand.ids['ada']}")
    assert cards(member, "balance-available") == number(
        brand.call("GET", f"/members/{brand.ids['ada']}/balance")["available"]
    )
    assert member.locator("form").count() == 0
    assert member.get_by_role("button", name=re.compile("Earn|Redeem|Reverse|Adjust")).count() == 0
    members = console.show("members")
    assert members.get_by_test_id("enrol").count() == 0
    program = console.show("program")
    assert program.get_by_test_id("program-form").count() == 0 and program.locator("details.editor").count() == 0
    assert program.get_by_test_id("reward-form").count() == 0
    assert program.get_by_role("button", name="End").count() == 0
    assert program.get_by_test_id("preview").count() == 1  # a read: allowed
    screen = console.show("integrations")
    assert "needs an admin key" in screen.inner_text()
    console.screenshot("read-only-member")


# --- phone width, and the weight of the first load ----------------------------------------------


def test_the_console_fits_a_phone_and_its_first_load_is_measured(browser: Any, brand: Brand) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    sizes: dict[str, int] = {}
    page.on(
        "requestfinished",
        lambda r: (
            sizes.__setitem__(r.url.rsplit("/", 1)[-1] or "index.html", r.sizes()["responseBodySize"])
            if "/console" in r.url
            else None
        ),
    )
    tab = Console(page=page, base=brand.base)
    tab.sign_in(brand.admin_key)
    for route in ("overview", "members", "program", f"members/{brand.ids['ada']}"):
        tab.show(route)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 390, (route, overflow)
    tab.screenshot("phone-member", docs=True)
    context.close()
    total = sum(sizes.values())
    compressed = 0
    for name in sizes:
        body = requests.get(brand.base + "/console/" + ("" if name == "index.html" else name), timeout=10).content
        compressed += len(gzip.compress(body))
    print(f"\nconsole first load: {len(sizes)} files, {total:,} bytes ({compressed:,} gzipped): {sorted(sizes)}")
    assert total < 400_000
