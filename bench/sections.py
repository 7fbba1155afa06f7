"""The printed sections of the bench and their PASS/FAIL verdicts."""

from __future__ import annotations

import statistics
from typing import Any

from bench.report import Report, verdict
from bench.units import KB, OperationCost, item_size, read_units, value_size

#: operation -> (unit kind, limit): earn/redeem in write units, balance in read units.
TARGETS = {
    "earn (points)": ("WRU", 5.0),
    "earn (amount)": ("WRU", 5.0),
    "redeem": ("WRU", 5.0),
    "balance read": ("RRU", 0.5),
}
#: Read targets of the earns (the verdicts table), beside TARGETS.
READ_TARGETS = {
    "earn (points)": ("RRU", 1.0),
    "earn (order, 20 lines, 10 rules)": ("RRU", 3.0),
}
LATENCY_TARGET = 1.5
COLD_TARGET = 1.25


def _units(cost: OperationCost, kind: str, *, incl_auth: bool) -> float:
    return cost.wru(incl_auth=incl_auth) if kind == "WRU" else cost.rru(incl_auth=incl_auth)


# --- 1. request units --------------------------------------------------------------------------


def print_units(report: Report, costs: list[OperationCost], clients_built: list[float]) -> None:
    report.heading("1. DynamoDB request units per operation (AWS on-demand rules, computed from the calls made)")
    rows = []
    for cost in costs:
        target = TARGETS.get(cost.name)
        auth_rru = cost.rru(incl_auth=True) - cost.rru(incl_auth=False)
        if target:
            kind, limit = target
            target_text = f"{kind} <= {limit:g}"
            op_ok = verdict(_units(cost, kind, incl_auth=False) <= limit)
            all_ok = verdict(_units(cost, kind, incl_auth=True) <= limit)
        else:
            target_text, op_ok, all_ok = ("info" if cost.info else "-"), "", ""
        rows.append(
            [
                cost.name,
                cost.rru(incl_auth=False),
                cost.wru(incl_auth=False),
                auth_rru,
                cost.rru(incl_auth=True),
                cost.wru(incl_auth=True),
                f"{cost.local(incl_auth=False):g} / {cost.local(incl_auth=True):g}",
                target_text,
                op_ok,
                all_ok,
            ]
        )
    report.table(
        [
            "operation",
            "op RRU",
            "op WRU",
            "auth RRU",
            "req RRU",
            "req WRU",
            "Local CU op/req",
            "target",
            "op units",
            "incl. auth",
        ],
        rows,
        right=(1, 2, 3, 4, 5, 6),
        title="op = operation units excluding the two control-plane auth reads; req = per request incl. auth. "
        "WRU include GSI writes.",
    )

    for cost in costs:
        report.text(f"{cost.name}:  {cost.summary()}")
        rows = []
        for index, c in enumerate(cost.charges, 1):
            local = "-" if c.local_total is None else f"{c.local_total:g}"
            if c.local_gsi:
                local += f" (table {c.local_table:g} + GSI {c.local_gsi:g})"
            rows.append(
                [
                    index,
                    c.label + (" [auth]" if c.auth else ""),
                    c.detail,
                    c.rru or "",
                    c.wru or "",
                    c.gsi_wru or "",
                    local,
                ]
            )
        rows.append(
            [
                "",
                "total",
                "",
                cost.rru(incl_auth=True),
                cost.wru(incl_auth=True) - cost.gsi_wru(),
                cost.gsi_wru(),
                f"{cost.local(incl_auth=True):g}",
            ]
        )
        report.table(
            ["#", "call", "what was billed", "RRU", "WRU", "GSI WRU", "DynamoDB Local CU"], rows, right=(3, 4, 5)
        )

    # Item sizes: how close each written item is to the next KB (where its cost steps up).
    seen: dict[str, Any] = {}
    for cost in costs:
        for c in cost.charges:
            for w in c.writes:
                seen.setdefault(f"{w.kind} ({cost.name})", w)
    rows = []
    for name, w in seen.items():
        size = w.billed_size
        rows.append(
            [
                name,
                w.before,
                w.after,
                -(-size // KB),
                w.table_wru,
                w.gsi_wru,
                (-(-size // KB)) * KB - size,
                "yes" if w.transactional else "no",
            ]
        )
    report.table(
        [
            "item written",
            "before B",
            "after B",
            "KB started",
            "table WRU",
            "GSI WRU",
            "bytes to next KB",
            "transactional",
        ],
        rows,
        right=(1, 2, 3, 4, 5, 6),
        title="Items written (sizes by DynamoDB's rules, from full item images)",
    )

    report.text(
        "DynamoDB Local's ConsumedCapacity is printed beside the computed figures for reference only: it is an "
        "emulator's estimate, not AWS's bill,\nso the verdicts use the computed figures. Where they differ in this "
        "run:"
    )
    rate = local_transaction_rate(costs)
    if rate:
        report.text(f"  {rate}")
    for line in local_discrepancies(costs):
        report.text(f"  - {line}")
    if clients_built:
        report.text(
            f"botocore DynamoDB clients the app built during this phase: {len(clients_built)} "
            f"(table-bound classes share one client per configuration), "
            f"{sum(clients_built) * 1000:.0f} ms in total, "
            f"median {statistics.median(clients_built) * 1000:.1f} ms each."
        )
    report.text()


def local_transaction_rate(costs: list[OperationCost]) -> str:
    """How this DynamoDB Local build counts TransactWriteItems, judged from this run's calls."""
    verdicts = []
    for cost in costs:
        for c in cost.charges:
            if c.operation != "TransactWriteItems" or c.local_table is None:
                continue
            single = sum(w.table_wru for w in c.writes) / 2
            gsi = c.gsi_wru
            table = "double" if c.local_table == 2 * single else "single" if c.local_table == single else "other"
            index = "double" if c.local_gsi == 2 * gsi else "single" if c.local_gsi == gsi else "other"
            verdicts.append((cost.name, table, index, c.local_table, single))
    if not verdicts:
        return ""

    def tally(position: int) -> str:
        counts: dict[str, int] = {}
        for v in verdicts:
            counts[v[position]] = counts.get(v[position], 0) + 1
        names = {"double": "doubled", "single": "at the single rate", "other": "at neither rate"}
        return ", ".join(f"{names[k]} in {n} of {len(verdicts)}" for k, n in sorted(counts.items()))

    text = f"TransactWriteItems in DynamoDB Local: table part {tally(1)}; GSI part {tally(2)}"
    odd = [
        f"{name}: Local {local:g} vs single {single:g} / double {2 * single:g}"
        for name, table, _, local, single in verdicts
        if table == "other"
    ]
    if odd:
        text += " (" + "; ".join(odd) + ")"
    return text + ". So Local alone cannot give the AWS bill."


def local_discrepancies(costs: list[OperationCost]) -> list[str]:
    lines = []
    for cost in costs:
        for c in cost.charges:
            if c.local_total is None:
                continue
            computed = c.rru + c.wru + c.gsi_wru
            if abs(computed - c.local_total) > 1e-9:
                part = ""
                if c.writes:
                    part = (
                        f" (computed table {c.wru:g} + GSI {c.gsi_wru:g}; Local table {c.local_table:g} + "
                        f"GSI {c.local_gsi:g})"
                    )
                lines.append(f"{cost.name}: {c.label}: computed {computed:g}, DynamoDB Local {c.local_total:g}{part}")
    if not lines:
        lines.append("DynamoDB Local agrees with the computed figures for every call of this run.")
    return lines


# --- where the units go -------------------------------------------------------------------------

#: Ledger attributes whose value is already in the item's keys.
_DERIVABLE = {
    "idempotency_key": "= pk without 'LEDGER#'",
    "member_id": "= gsi1pk without 'MEMBER#'/'#LEDGER'",
    "sequence": "= int(gsi1sk)",
}


def print_findings(report: Report, costs: list[OperationCost]) -> None:
    by_name = {cost.name: cost for cost in costs}
    lines: list[str] = []

    balance = by_name.get("balance read")
    if balance:
        auth = [c for c in balance.charges if c.auth]
        auth_rru = sum(c.rru for c in auth)
        total = balance.rru(incl_auth=True)
        reads = " + ".join(f"{c.label.removeprefix('GetItem ')} {c.size} B = {c.rru:g}" for c in auth)
        lines.append(
            f"Authentication: every tenant request reads {reads} = {auth_rru:g} RRU, "
            f"{auth_rru / total:.0%} of a balance read ({total:g} RRU). A short per-container cache of "
            f"(key, tenant) would make it ~0 on warm requests, at the price of revocations taking effect "
            f"only when the cache expires."
        )

    earn = by_name.get("earn (points)")
    if earn:
        reads = [c for c in earn.charges if not c.auth and c.label.startswith("GetItem balance") and c.rru == 1.0]
        if reads:
            lines.append(
                f"earn/redeem read the balance strongly consistently ({reads[0].size} B = 1 RRU) before the "
                f"conditional transaction; the version condition already rejects a stale read, so an eventually "
                f"consistent read (0.5 RRU) would be safe (a stale read costs one retry)."
            )
        for c in earn.charges:
            for w in c.writes:
                if w.kind == "ledger entry":
                    headroom = (-(-w.billed_size // KB)) * KB - w.billed_size
                    indexes = [part.split(" ")[0] for part in w.gsi_note.split(", ") if part]
                    others = [x for x in c.writes if x is not w]
                    other_wru = sum(x.table_wru + x.gsi_wru for x in others)
                    total = w.table_wru + w.gsi_wru + other_wru
                    lines.append(
                        f"earn's write units: ledger entry {w.billed_size} B ({w.table_wru} WRU transactional + "
                        f"{w.gsi_wru} for its {len(indexes)} GSI entries: {', '.join(indexes)}) + "
                        f"{' + '.join(f'{x.kind} {x.table_wru + x.gsi_wru}' for x in others)} = {total} WRU. "
                        f"Item sizes are not the cause ({headroom} B under the first KB): two items in a "
                        f"transaction are 4 WRU at any size under 1 KB, and every GSI the entry enters adds "
                        f"one, so this design's floor is 4 + {len(indexes)}. Once the entry passes 1 KB it "
                        f"costs {2 * w.table_wru + 2 * w.gsi_wru + other_wru} WRU; see the informational row."
                    )
                    pk = w.image.get("pk", {}).get("S", "") if w.image else ""
                    key = pk.removeprefix("LEDGER#")
                    copies = 2 if w.image and "idempotency_key" in w.image else 1
                    longest = w.billed_size + copies * (255 - len(key.encode()))
                    lines.append(
                        f"The client-chosen Idempotency-Key is stored {'twice' if copies == 2 else 'once (in pk)'}: "
                        f"this run used {len(key)} characters; the longest accepted key (255) makes the same entry "
                        f"{longest} B" + (", over 1 KB, so that earn costs 8 WRU." if longest > KB else ".")
                    )
                    derivable = sum(
                        len(name.encode()) + value_size(w.image[name])
                        for name in _DERIVABLE
                        if w.image and name in w.image
                    )
                    if derivable:
                        lines.append(
                            f"The ledger entry stores {derivable} B that its keys already hold "
                            f"({', '.join(_DERIVABLE)}); with the GSI's ALL projection every byte is written twice "
                            f"(table + index) and the whole entry is read by every transactions page."
                        )

    amount = by_name.get("earn (amount)")
    if amount:
        program = [c for c in amount.charges if c.label.startswith("GetItem program")]
        if program:
            lines.append(
                f"earn by amount reads the program item {len(program)} time(s) per request "
                f"({sum(c.rru for c in program):g} RRU"
                f"{', even when none is stored' if program[0].size == 0 else ''}); it changes rarely: a "
                f"per-container cache would save it at the price of program changes reaching warm containers late."
            )
    for cost in costs:
        tiers = [c for c in cost.charges if "tier versions" in c.short and not c.item_sizes]
        if tiers and cost.name in ("balance read", "earn (points)"):
            lines.append(
                f"{cost.name}: the tier version in force is queried ({tiers[0].rru:g} RRU) in a brand without "
                f"tiers too; only something the request already reads (the tenant item read by auth, or the "
                f"program item an earn reads) can say that the brand has no tiers."
            )

    page = by_name.get("transactions page (limit 20)")
    if page:
        query = next((c for c in page.charges if c.operation == "Query"), None)
        pre = [c for c in page.charges if not c.auth and c.operation == "GetItem"]
        if query and query.item_sizes:
            n = len(query.item_sizes)
            only = read_units(sum(query.item_sizes[: n - 1]), consistent=False)
            same = " (the same at these sizes, but each extra entry can cross a 4 KB step)" if only == query.rru else ""
            extra = (
                f" The balance GetItem before it ({sum(c.rru for c in pre):g} RRU) only turns an unknown member "
                f"into a 404 and could run only when the page comes back empty."
                if pre
                else ""
            )
            lines.append(
                f"transactions: the Query reads limit+1 = {n} entries ({query.size} B = {query.rru:g} RRU) to learn "
                f"whether a next page exists; {n - 1} entries would be {sum(query.item_sizes[: n - 1])} B = "
                f"{only:g} RRU{same}.{extra}"
            )

    report.heading("Where the units go (computed from the calls above)")
    for line in lines:
        report.text(f"- {line}")
    if earn:
        for c in earn.charges:
            for w in c.writes:
                if w.kind == "ledger entry" and w.image:
                    rows = sorted(
                        (
                            (name, len(name.encode()), value_size(value), _DERIVABLE.get(name, ""))
                            for name, value in w.image.items()
                        ),
                        key=lambda row: row[1] + row[2],
                        reverse=True,
                    )
                    report.table(
                        ["ledger entry attribute", "name B", "value B", "total B", "note"],
                        [[name, nb, vb, nb + vb, note] for name, nb, vb, note in rows]
                        + [["total", "", "", item_size(w.image), ""]],
                        right=(1, 2, 3),
                        title="The earn (points) ledger entry, attribute by attribute",
                    )
    report.text()


# --- 2. latency ----------------------------------------------------------------------------------


def print_latency(report: Report, timings: dict[str, list[float]], iterations: int, warmup: int) -> None:
    report.heading(
        f"2. Latency: Chalice handler vs bare boto3 doing the same DynamoDB calls "
        f"({iterations} iterations after {warmup} warm-up, interleaved)"
    )
    rows = []
    for op in ("earn", "balance"):
        handler, bare = timings[f"handler {op}"], timings[f"bare {op}"]
        h50, h95 = _pct(handler, 50), _pct(handler, 95)
        b50, b95 = _pct(bare, 50), _pct(bare, 95)
        ratio = h50 / b50
        rows.append(
            [
                op,
                f"{h50:.2f}",
                f"{h95:.2f}",
                f"{b50:.2f}",
                f"{b95:.2f}",
                f"{ratio:.2f}x",
                f"{h95 / b95:.2f}x",
                f"<= {LATENCY_TARGET}x",
                verdict(ratio <= LATENCY_TARGET),
            ]
        )
    order = timings.get("handler order earn (20 lines, 10 rules)")
    if order:
        earn50 = _pct(timings["handler earn"], 50)
        rows.append(
            [
                f"order earn, 20 lines, 10 rules ({_pct(order, 50) / earn50:.2f}x a points earn)",
                f"{_pct(order, 50):.2f}",
                f"{_pct(order, 95):.2f}",
                *[""] * 6,
            ]
        )
    if "handler health" in timings:
        health = timings["handler health"]
        rows.append(
            ["health (no DynamoDB)", f"{_pct(health, 50):.2f}", f"{_pct(health, 95):.2f}", "", "", "", "", "", ""]
        )
    report.table(
        [
            "operation",
            "handler p50 ms",
            "handler p95 ms",
            "bare p50 ms",
            "bare p95 ms",
            "ratio p50",
            "ratio p95",
            "target",
            "result",
        ],
        rows,
        right=(1, 2, 3, 4, 5, 6),
    )
    report.text("handler = chalice.test.Client request (API Gateway event, middleware, auth, validation, PynamoDB).")
    report.text(
        "bare    = one boto3 client: earn = GetItem api key (consistent) + GetItem tenant (eventual) + GetItem "
        "balance (consistent)\n          + TransactWriteItems[Put ledger, Update balance]; balance = the two "
        "auth GetItems + GetItem balance (eventual)."
    )
    if "dynamodb calls" in timings:
        calls = timings["dynamodb calls"]
        report.text(
            f"median DynamoDB Local round trip per call (bare): GetItem {calls[0]:.2f} ms, "
            f"TransactWriteItems {calls[1]:.2f} ms"
        )
    report.text()


def _pct(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    if pct == 50:
        return statistics.median(ordered) * 1000
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index] * 1000


# --- 3. cold start -------------------------------------------------------------------------------


def print_cold_start(report: Report, cold: dict[str, Any]) -> None:
    report.heading(f"3. Cold start in fresh interpreters (median of {cold['runs']} runs each)")
    app, bare = cold["app"], cold["bare"]
    ratio = app["first_client"] / bare["first_client"]
    rows = [
        [
            "import app + platform() + first DynamoDB client",
            f"{app['first_client'] * 1000:.0f}",
            "import chalice, boto3 + boto3.client('dynamodb')",
            f"{bare['first_client'] * 1000:.0f}",
            f"{ratio:.2f}x",
            f"<= {COLD_TARGET}x",
            verdict(ratio <= COLD_TARGET),
        ],
    ]
    if app.get("earn_first_use", -1.0) >= 0:
        # What a user waits for: the same, plus everything a first earn loads before its
        # DynamoDB calls (what the app imports lazily is paid here, not skipped).
        ready = app["first_client"] + app["first_request"] + app["earn_first_use"]
        rows.append(
            [
                "the same + a first earn's own work (services, schema, presenters)",
                f"{ready * 1000:.0f}",
                "the same",
                f"{bare['first_client'] * 1000:.0f}",
                f"{ready / bare['first_client']:.2f}x",
                "(shown)",
                "",
            ]
        )
    libraries = cold.get("libraries")
    if libraries:
        rows.append(
            [
                "(floor) bare + pydantic, PynamoDB, powertools: no module of the app",
                f"{libraries['first_client'] * 1000:.0f}",
                "the same",
                f"{bare['first_client'] * 1000:.0f}",
                f"{libraries['first_client'] / bare['first_client']:.2f}x",
                "(shown)",
                "",
            ]
        )
    report.table(["app", "ms", "bare", "ms", "ratio", "target", "result"], rows, right=(1, 3, 4))
    report.table(
        ["app phase (median)", "ms"],
        [
            ["import app", f"{app['import'] * 1000:.0f}"],
            [
                "platform() + first client (control-plane api key model)",
                f"{(app['first_client'] - app['import']) * 1000:.0f}",
            ],
            [
                "+ 2nd client: tenant model (also needed by the first authenticated request)",
                f"{app['second_client'] * 1000:.0f}",
            ],
            [
                "+ 3rd client: the tenant table's balance model (first earn/balance of a tenant)",
                f"{app['tenant_client'] * 1000:.0f}",
            ],
            [
                "first request after that (GET /v1/health as a Lambda event, no DynamoDB call)",
                _ms(app.get("first_request"), app.get("request_error")),
            ],
            ["second request (same)", _ms(app.get("second_request"), app.get("request_error"))],
            [
                "a first earn's own work before DynamoDB: its services built, body validated, presenters imported",
                _ms(app.get("earn_first_use"), app.get("request_error")),
            ],
            ["the same, warm", _ms(app.get("earn_warm_use"), app.get("request_error"))],
        ],
        right=(1,),
    )
    report.text(
        "Children: no endpoint override (regional endpoint resolved as in Lambda), fake credentials, "
        "POWERTOOLS_TRACE_DISABLED/METRICS_DISABLED as in the tests,\nbytecode cached in a temporary "
        "directory (one unmeasured warm-up run per side). Times are in-process, from before the first import."
    )
    report.text()
    report.table(
        ["module (python -X importtime -c 'import app')", "self ms", "cumulative ms"],
        [[name, f"{self_us / 1000:.1f}", f"{cum_us / 1000:.1f}"] for name, self_us, cum_us in cold["slowest"]],
        right=(1, 2),
        title="Top 10 slowest imports by self time",
    )
    report.table(
        ["top-level package", "self ms (summed)", "modules"],
        [[name, f"{us / 1000:.1f}", count] for name, us, count in cold["packages"]],
        right=(1, 2),
        title=f"Where 'import app' goes, by top-level package (total {cold['app_cumulative_us'] / 1000:.0f} ms "
        f"cumulative under importtime)",
    )


def _ms(seconds: float | None, error: str | None) -> str:
    if seconds is None or seconds < 0:
        return f"n/a ({error})" if error else "n/a"
    return f"{seconds * 1000:.0f}" if seconds >= 0.0095 else f"{seconds * 1000:.1f}"


# --- summary -------------------------------------------------------------------------------------


def _why_writes(cost: OperationCost) -> str:
    """Where an operation's write units go, from the writes measured."""
    writes = [write for charge in cost.charges if not charge.auth for write in charge.writes]
    items = ", ".join(f"{w.kind} {w.table_wru}" for w in writes)
    indexes = [w.gsi_note or w.kind for w in writes if w.gsi_wru]
    text = f"items: {items}"
    if any(w.transactional for w in writes):
        text += " (a transaction bills each item twice)"
    if indexes:
        text += f"; index writes: {sum(w.gsi_wru for w in writes)} ({', '.join(indexes)})"
    return text


def _why_cold(cold: dict[str, Any]) -> str:
    """How much of the app's cold start the required libraries take alone, and the packages
    whose import costs most, as measured."""
    heaviest = (cold.get("packages") or [])[:3]  # (package, its modules' own import time in µs, modules)
    text = "heaviest imports (-X importtime): " + ", ".join(
        f"{name} {us / 1000:.0f} ms ({count} modules)" for name, us, count in heaviest
    )
    libraries, bare = cold.get("libraries"), cold["bare"]
    if libraries:
        floor = libraries["first_client"] / bare["first_client"]
        own = (cold["app"]["first_client"] - libraries["first_client"]) * 1000
        text = (
            f"the required libraries alone (pydantic, PynamoDB, powertools) are {floor:.2f}x bare; "
            f"the app adds {own:.0f} ms to them; " + text
        )
    return text


def print_verdicts(report: Report, results: dict[str, Any]) -> None:
    """Every target with its verdict; a row that fails says why, from what this run measured."""
    report.heading("Targets")
    rows = []
    judged = [
        (measured, target)
        for measured in results.get("units", [])
        for target in (TARGETS.get(measured.name), READ_TARGETS.get(measured.name))
        if target
    ]
    for cost, (kind, limit) in judged:
        op_units, req_units = _units(cost, kind, incl_auth=False), _units(cost, kind, incl_auth=True)
        rows.append(
            [
                f"{cost.name} {kind}",
                f"<= {limit:g}",
                f"{op_units:g}",
                verdict(op_units <= limit),
                f"{req_units:g}",
                verdict(req_units <= limit),
                "" if op_units <= limit else (_why_writes(cost) if kind == "WRU" else ""),
            ]
        )
    timings = results.get("latency")
    if timings:
        for op in ("earn", "balance"):
            ratio = statistics.median(timings[f"handler {op}"]) / statistics.median(timings[f"bare {op}"])
            rows.append(
                [
                    f"{op} latency handler/bare (p50)",
                    f"<= {LATENCY_TARGET}x",
                    f"{ratio:.2f}x",
                    verdict(ratio <= LATENCY_TARGET),
                    "",
                    "",
                    ""
                    if ratio <= LATENCY_TARGET
                    else f"handler {statistics.median(timings[f'handler {op}']):.1f} ms vs bare "
                    f"{statistics.median(timings[f'bare {op}']):.1f} ms (p50): the HTTP server and the app's work",
                ]
            )
    cold = results.get("cold")
    if cold:
        ratio = cold["app"]["first_client"] / cold["bare"]["first_client"]
        rows.append(
            [
                "cold start app/bare",
                f"<= {COLD_TARGET}x",
                f"{ratio:.2f}x",
                verdict(ratio <= COLD_TARGET),
                "",
                "",
                "" if ratio <= COLD_TARGET else _why_cold(cold),
            ]
        )
    expiry = results.get("expiry")
    if expiry is not None:
        from bench.expiry import RATIO_TARGET

        small, large = expiry.tenants
        rows.append(
            [
                f"expiry job time, {large.seeded.size} / {small.seeded.size} members, same due lots",
                f"<= {RATIO_TARGET}x",
                f"{expiry.ratio:.2f}x",
                verdict(expiry.ratio <= RATIO_TARGET),
                "",
                "",
                "",
            ]
        )
        rows.append(
            [
                "expiry: every due lot expired once, nothing else touched",
                "all checks",
                f"{sum(c.ok for t in expiry.tenants for c in t.checks)}/{sum(len(t.checks) for t in expiry.tenants)}",
                verdict(expiry.verified),
                "",
                "",
                "",
            ]
        )
    report.table(
        ["target", "limit", "operation units / value", "result", "per request incl. auth", "result", "why, if not"],
        rows,
        right=(2, 4),
    )


def print_items(report: Report, costs: list[OperationCost]) -> None:
    """Which items each operation reads and writes (auth reads left out), with repeats counted."""
    from collections import Counter

    report.heading("What each operation reads and writes (items, auth left out)")
    rows = []
    for cost in costs:
        reads: Counter[str] = Counter()
        writes: Counter[str] = Counter()
        for charge in cost.charges:
            if charge.auth:
                continue
            if charge.writes:
                for write in charge.writes:
                    writes[write.kind + (" (+GSI)" if write.gsi_wru else "")] += 1
            elif charge.operation in ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"):
                reads[f"{charge.short} {charge.rru:g}"] += 1
        rows.append(
            [
                cost.name,
                "; ".join(f"{name}{f' x{n}' if n > 1 else ''}" for name, n in reads.items()) or "-",
                cost.rru(incl_auth=False),
                ", ".join(f"{name}{f' x{n}' if n > 1 else ''}" for name, n in writes.items()) or "-",
                cost.wru(incl_auth=False),
            ]
        )
    report.table(["operation", "reads (call, item, RRU each)", "RRU", "writes", "WRU"], rows, right=(2, 4))
