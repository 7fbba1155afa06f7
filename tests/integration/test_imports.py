"""Bulk import of members with opening balances, over HTTP, on both emulators.

Given/When/Then, asserting what the brand sees: the import's record and row errors, the
members, their balances and ledgers. The job unit runs in-process here, as it does locally
(the ``resume-imports`` schedule) or, for the deployed path, from a jobs-queue message.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain import imports as import_domain
from chalicelib.jobs import imports as import_jobs
from chalicelib.persistence.imports import ImportRepository
from chalicelib.services import platform, reset_platform
from tests.support.checks import all_pages, assert_error, assert_invalid, tenant_state
from tests.support.http import Api, Reply

IMPORTS = "/v1/imports"
TIERS = {
    "metric": "points",
    "window": {"kind": "rolling_months", "months": 12},
    "grace_periods": 1,
    "tiers": [
        {"name": "silver", "threshold": "500", "multiplier": "1.5"},
        {"name": "gold", "threshold": "2000", "multiplier": "2"},
    ],
}


@pytest.fixture
def brand(api: Api, admin_key: str) -> Api:
    """Tenant "acme" with Silver and Gold tiers."""
    assert api.call("PUT", "/v1/program/tiers", key=admin_key, body=TIERS).status == 200
    return api


def submit(api: Api, key: str, text: str | bytes, *, media: str = "text/csv") -> Reply:
    return api.call("POST", IMPORTS, key=key, raw_body=text, headers={"Content-Type": media})


def run_imports(api: Api) -> dict[str, Any]:
    """The ``resume-imports`` schedule, invoked as EventBridge would: locally it runs every
    unfinished import of every active tenant in-process."""
    event = api.client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    return dict(api.client.lambda_.invoke(import_jobs.SCHEDULE, event).payload)


def member_by_external_id(api: Api, key: str, external_id: str) -> dict[str, Any] | None:
    found = api.call("GET", f"/v1/members?external_id={external_id}", key=key)
    assert found.status == 200, found
    return found.body["data"][0] if found.body["data"] else None


def errors_of(api: Api, key: str, import_id: str) -> list[dict[str, Any]]:
    return all_pages(api, key, f"{IMPORTS}/{import_id}/errors")


HAPPY = (
    "external_id,email,name,birthday,marketing_consent,points,tier\n"
    "c-1,Ada@Example.com,Ada Lovelace,1985-12-10,true,1200,gold\n"
    'c-2,alan@example.com,"Turing, Alan",1992-06-23,false,350,\n'
    "c-3,,Grace Hopper,,,0,silver\n"
    "c-4,,,,,,\n"
)


def test_a_csv_file_lands_members_with_opening_balances_and_tiers(brand: Api, admin_key: str) -> None:
    api = brand
    # When the brand uploads its file as text/csv
    submitted = submit(api, admin_key, HAPPY)

    # Then it is accepted at once, queued, nothing landed yet
    assert submitted.status == 202, submitted
    job = submitted.body
    assert job["id"].startswith("imp_") and job["status"] == "queued", job
    assert job["columns"] == ["external_id", "email", "name", "birthday", "marketing_consent", "points", "tier"]
    assert job["counts"] == {"total": 4, "processed": 0, "imported": 0, "skipped": 0, "failed": 0}
    assert (job["errors"], job["error_count"], job["chunks"], job["chunks_done"]) == ([], 0, 1, 0)
    assert member_by_external_id(api, admin_key, "c-1") is None

    # When the job unit runs
    assert run_imports(api)["resumed"] == 1

    # Then the import is completed with every row imported
    done = api.call("GET", f"{IMPORTS}/{job['id']}", key=admin_key)
    assert done.status == 200, done
    assert done.body["status"] == "completed" and done.body["finished_at"] is not None, done.body
    assert done.body["counts"] == {"total": 4, "processed": 4, "imported": 4, "skipped": 0, "failed": 0}
    assert (done.body["errors"], done.body["error_count"], done.body["chunks_done"]) == ([], 0, 1)

    # And each member has the profile, the balance and the tier of its row
    ada = member_by_external_id(api, admin_key, "c-1")
    assert ada is not None
    assert (ada["email"], ada["name"], ada["birthday"], ada["marketing_consent"]) == (
        "ada@example.com",
        "Ada Lovelace",
        "1985-12-10",
        True,
    )
    balance = api.balance(admin_key, ada["id"])
    assert (balance["available"], balance["lifetime_adjusted"], balance["lifetime_earned"]) == (1200, 1200, 0)
    assert balance["tier"] == "gold" and balance["tier_status"]["tier"] == "gold", balance
    # the opening balance is one ledger entry, under the key the import mints from the external id
    (entry,) = api.ledger(admin_key, ada["id"])
    assert (entry["type"], entry["points"], entry["sequence"], entry["balance_after"]) == ("adjust", 1200, 1, 1200)
    assert entry["idempotency_key"] == "import:c-1" and entry["reference"] == job["id"]
    assert entry["metadata"] == {"import_id": job["id"], "row": "2"} and job["id"] in entry["reason"]

    alan = member_by_external_id(api, admin_key, "c-2")
    assert alan is not None and alan["name"] == "Turing, Alan" and alan["marketing_consent"] is False
    assert api.balance(admin_key, alan["id"])["available"] == 350
    assert api.balance(admin_key, alan["id"])["tier"] is None
    grace = member_by_external_id(api, admin_key, "c-3")
    assert grace is not None and grace["email"] is None
    assert api.balance(admin_key, grace["id"])["tier"] == "silver"
    assert api.ledger(admin_key, grace["id"]) == []  # a zero opening balance moves nothing
    bare = member_by_external_id(api, admin_key, "c-4")
    assert bare is not None and api.balance(admin_key, bare["id"])["available"] == 0

    # And the import is listed, newest first
    listed = api.call("GET", IMPORTS, key=admin_key)
    assert listed.status == 200 and [i["id"] for i in listed.body["data"]] == [job["id"]], listed
    assert "errors" not in listed.body["data"][0] and listed.body["data"][0]["status"] == "completed"

    # And running the schedule again changes nothing
    before = tenant_state(api, admin_key)
    assert run_imports(api)["imports"] == 0
    assert tenant_state(api, admin_key) == before


def test_an_imports_rows_carry_a_ttl_until_it_completes_and_then_leave(brand: Api, admin_key: str) -> None:
    import boto3

    from chalicelib.persistence.imports import chunk_pk

    settings = platform().settings
    client = boto3.client("dynamodb", region_name=settings.aws_region, endpoint_url=settings.dynamodb_endpoint)
    table = settings.tenant_table_name("acme")

    # Given an import submitted and not yet run (its rows, personal data, stored in one chunk)
    submitted = submit(brand, admin_key, "external_id,name,email\nttl-1,Ada,ada@example.com\nttl-2,Alan,\n")
    assert submitted.status == 202, submitted
    key = {"pk": {"S": chunk_pk(submitted.body["id"], 0)}, "sk": {"S": "#CHUNK"}}
    chunk = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]

    # Then the chunk carries the table's TTL attribute: 30 days after the import was submitted,
    # in epoch seconds (as DynamoDB's TTL reads it), and the table's TTL is on that attribute
    created = datetime.fromisoformat(submitted.body["created_at"].replace("Z", "+00:00"))
    assert import_domain.CHUNK_RETENTION == timedelta(days=30)
    assert abs(int(chunk["expires_at"]["N"]) - (created + timedelta(days=30)).timestamp()) <= 1, chunk["expires_at"]
    assert "ada@example.com" in chunk["rows"]["S"]
    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at"), ttl

    # When the import completes, its rows leave at once
    run_imports(brand)
    done = brand.call("GET", f"{IMPORTS}/{submitted.body['id']}", key=admin_key)
    assert done.status == 200 and done.body["counts"]["imported"] == 2, done
    assert "Item" not in client.get_item(TableName=table, Key=key, ConsistentRead=True)


def test_the_file_may_come_as_json_with_its_name(brand: Api, admin_key: str) -> None:
    reply = brand.call("POST", IMPORTS, key=admin_key, body={"csv": "external_id,points\nj-1,7\n", "filename": "a.csv"})
    assert reply.status == 202 and reply.body["filename"] == "a.csv", reply
    run_imports(brand)
    member = member_by_external_id(brand, admin_key, "j-1")
    assert member is not None and brand.balance(admin_key, member["id"])["available"] == 7
    # a byte-order mark and CRLF line ends are fine
    reply = submit(brand, admin_key, "\ufeffexternal_id,points\r\nj-2,8\r\n".encode())
    assert reply.status == 202, reply
    run_imports(brand)
    member = member_by_external_id(brand, admin_key, "j-2")
    assert member is not None and brand.balance(admin_key, member["id"])["available"] == 8


def test_bad_files_are_refused_and_nothing_is_written(brand: Api, admin_key: str) -> None:
    api = brand
    before = tenant_state(api, admin_key)

    missing = assert_invalid(submit(api, admin_key, "email,points\na@example.com,5\n"), "header")
    assert "external_id column is required" in missing[0]["message"]
    unknown = submit(api, admin_key, "external_id,emial,points\nx-1,a@example.com,5\n")
    fields = assert_invalid(unknown, "header.1")
    assert "emial" in fields[0]["message"]
    assert unknown.body["error"]["details"]["columns"][0] == "external_id"
    assert unknown.body["error"]["details"]["required_columns"] == ["external_id"]
    assert_invalid(submit(api, admin_key, "external_id,points,points\nx-1,5,6\n"), "header.2")
    assert_invalid(submit(api, admin_key, ""), "header")
    assert_invalid(submit(api, admin_key, "external_id,points\n"), "body")
    assert_invalid(submit(api, admin_key, "external_id\nx-\xff\n".encode("latin-1")), "body")
    assert_invalid(api.call("POST", IMPORTS, key=admin_key, body={"csv": ""}), "csv")
    assert_invalid(api.call("POST", IMPORTS, key=admin_key, body={"file": "external_id\nx\n"}), "file")

    # Then nothing was written: no import, no member
    assert api.call("GET", IMPORTS, key=admin_key).body == {"data": [], "next_cursor": None}
    assert tenant_state(api, admin_key) == before


def test_a_file_over_the_import_limit_is_refused(brand: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOYALTY_MAX_IMPORT_BODY_BYTES", "200")
    reset_platform()
    platform()
    text = "external_id,points\n" + "".join(f"big-{i},1\n" for i in range(30))
    details = assert_invalid(submit(brand, admin_key, text), "body")
    assert details[0]["type"] == "too_long"
    # while other routes keep their own (smaller) limit
    assert_invalid(brand.call("POST", "/v1/members", key=admin_key, body={"name": "x" * 20_000}), "body")
    assert brand.call("GET", IMPORTS, key=admin_key).body["data"] == []


def test_invalid_rows_are_reported_one_by_one_and_write_nothing(brand: Api, admin_key: str) -> None:
    api = brand
    text = (
        "external_id,email,points,tier,birthday,marketing_consent\n"  # row 1
        "ok-1,ok1@example.com,10,,,\n"  # 2
        "bad-email,not-an-email,10,,,\n"  # 3
        "neg,,-5,,,\n"  # 4
        "frac,,12.5,,,\n"  # 5
        "platinum,,10,platinum,,\n"  # 6
        "ok-1,dup@example.com,99,,,\n"  # 7: the same external id as row 2
        "extra,,1,,,,surplus\n"  # 8: one field too many
        "born,,1,,2999-01-01,\n"  # 9
        "consent,,1,,,maybe\n"  # 10
        ",,1,,,\n"  # 11: no external id
        "\n"  # 12: a blank line is not a row
        "ok-2,,20,silver,2000-02-29,yes\n"  # 13
    )
    job = submit(api, admin_key, text)
    assert job.status == 202 and job.body["counts"]["total"] == 11, job
    run_imports(api)

    done = api.call("GET", f"{IMPORTS}/{job.body['id']}", key=admin_key).body
    assert done["status"] == "completed"
    assert done["counts"] == {"total": 11, "processed": 11, "imported": 2, "skipped": 0, "failed": 9}
    assert done["error_count"] == 9
    by_row = {e["row"]: e for e in done["errors"]}
    assert [e["row"] for e in done["errors"]] == [3, 4, 5, 6, 7, 8, 9, 10, 11], "in row order"
    assert sorted(by_row) == [3, 4, 5, 6, 7, 8, 9, 10, 11], sorted(by_row)
    assert {row: e["code"] for row, e in by_row.items()} == {
        3: "invalid_email",
        4: "invalid_points",
        5: "invalid_points",
        6: "unknown_tier",
        7: "duplicate_external_id",
        8: "malformed_row",
        9: "invalid_birthday",
        10: "invalid_marketing_consent",
        11: "invalid_external_id",
    }
    assert all(e["outcome"] == "failed" for e in done["errors"])
    assert by_row[3]["external_id"] == "bad-email" and by_row[3]["details"]["fields"][0]["path"] == "email"
    assert by_row[7]["details"] == {"first_row": 2} and by_row[7]["external_id"] == "ok-1"
    assert by_row[8]["details"] == {"expected": 6, "found": 7}
    assert by_row[6]["details"]["fields"][0]["type"] == "unknown_tier"
    assert by_row[11]["external_id"] is None

    # And the same list pages through the errors route
    paged = errors_of(api, admin_key, job.body["id"])
    assert paged == done["errors"]
    first = api.call("GET", f"{IMPORTS}/{job.body['id']}/errors?limit=4", key=admin_key).body
    assert [e["row"] for e in first["data"]] == [3, 4, 5, 6] and first["next_cursor"]
    second = api.call("GET", f"{IMPORTS}/{job.body['id']}/errors?limit=4&cursor={first['next_cursor']}", key=admin_key)
    assert [e["row"] for e in second.body["data"]] == [7, 8, 9, 10], second
    bad_cursor = api.call("GET", f"{IMPORTS}/{job.body['id']}/errors?cursor=nonsense", key=admin_key)
    assert_invalid(bad_cursor, "cursor")

    # Then only the valid rows exist: the first of the duplicates, with its own row's balance
    members = {m["external_id"]: m for m in all_pages(api, admin_key, "/v1/members")}
    assert sorted(members) == ["ok-1", "ok-2"]
    assert members["ok-1"]["email"] == "ok1@example.com"
    assert api.balance(admin_key, members["ok-1"]["id"])["available"] == 10
    ok2 = api.balance(admin_key, members["ok-2"]["id"])
    assert (ok2["available"], ok2["tier"]) == (20, "silver")
    assert members["ok-2"]["birthday"] == "2000-02-29" and members["ok-2"]["marketing_consent"] is True


def test_an_existing_member_is_skipped_and_left_unchanged(brand: Api, admin_key: str) -> None:
    api = brand
    # Given a member enrolled through the API who has earned 10 points
    existing = api.enrol(admin_key, external_id="c-1", email="kept@example.com")
    assert api.earn(admin_key, existing, "e-1", points=10).status == 201

    # When a file names that external id with another balance and email
    job = submit(api, admin_key, "external_id,email,points\nc-1,new@example.com,500\nc-9,,5\n").body
    run_imports(api)

    # Then that row is skipped, naming the member, and the member is untouched
    done = api.call("GET", f"{IMPORTS}/{job['id']}", key=admin_key).body
    assert done["counts"] == {"total": 2, "processed": 2, "imported": 1, "skipped": 1, "failed": 0}
    (skipped,) = done["errors"]
    assert (skipped["row"], skipped["outcome"], skipped["code"]) == (2, "skipped", "member_exists")
    assert skipped["details"] == {"member_id": existing} and skipped["external_id"] == "c-1"
    assert api.balance(admin_key, existing)["available"] == 10
    assert api.call("GET", f"/v1/members/{existing}", key=admin_key).body["email"] == "kept@example.com"
    assert [e["idempotency_key"] for e in api.ledger(admin_key, existing)] == ["e-1"]

    # And a client can never forge the import's ledger keys
    forged = api.earn(admin_key, existing, "import:c-9", points=1)
    assert_invalid(forged, "Idempotency-Key")


def test_a_crash_mid_chunk_then_reruns_land_every_row_exactly_once(
    brand: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = brand
    # Given chunks of 7 rows, rows landed one at a time (a transaction each), and a file of 30 members
    monkeypatch.setattr(import_domain, "CHUNK_ROWS", 7)
    monkeypatch.setattr(import_domain, "ROWS_PER_TRANSACTION", 1)
    monkeypatch.setenv("LOYALTY_IMPORT_ROW_WORKERS", "1")
    # a run's time budget out of the way: on a loaded machine 15 s may not land the file in one run
    monkeypatch.setenv("LOYALTY_IMPORT_TIME_BUDGET_SECONDS", "600")
    reset_platform()
    platform()
    points = {f"m-{n:02d}": n * 10 for n in range(1, 31)}
    text = "external_id,points,tier\n" + "".join(
        f"{ext},{value},{'silver' if value % 3 == 0 else ''}\n" for ext, value in points.items()
    )
    job = submit(api, admin_key, text).body
    assert job["chunks"] == 5, job

    # When the unit crashes on the 10th row (chunk 2), and the 9th row's commit succeeded but
    # its answer was lost (the worker saw an error after the transaction was applied)
    real_land = ImportRepository.land
    calls = {"n": 0}

    def flaky(self: ImportRepository, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 9:
            real_land(self, *args, **kwargs)
            raise TimeoutError("the answer of a committed transaction was lost")
        if calls["n"] == 10:
            raise RuntimeError("the function crashed")
        return real_land(self, *args, **kwargs)

    monkeypatch.setattr(ImportRepository, "land", flaky)
    with pytest.raises(TimeoutError):
        import_jobs.run_import("acme", job["id"], budget_seconds=None)

    # Then the first chunk is recorded, the failed attempt is shown, and the import is still open
    crashed = api.call("GET", f"{IMPORTS}/{job['id']}", key=admin_key).body
    assert crashed["status"] == "running" and crashed["chunks_done"] == 1, crashed
    assert crashed["counts"]["imported"] == 7 and crashed["attempts"] == 1
    assert "TimeoutError" in crashed["last_error"]
    landed = {m["external_id"] for m in all_pages(api, admin_key, "/v1/members")}
    assert landed == {f"m-{n:02d}" for n in range(1, 10)}  # row 9 was committed despite the error

    # When it is run again (the crash again on its 10th row of this run), then again
    calls["n"] = 0
    monkeypatch.setattr(ImportRepository, "land", lambda self, *a, **k: _crash_on(calls, 10, real_land, self, a, k))
    with pytest.raises(RuntimeError):
        import_jobs.run_import("acme", job["id"], budget_seconds=None)
    monkeypatch.setattr(ImportRepository, "land", real_land)
    outcome = import_jobs.run_import("acme", job["id"], budget_seconds=None)

    # Then the import completes, each row counted once, every balance exactly the file's
    done = api.call("GET", f"{IMPORTS}/{job['id']}", key=admin_key).body
    assert outcome.job.status == "completed" and done["status"] == "completed", done
    assert done["counts"] == {"total": 30, "processed": 30, "imported": 30, "skipped": 0, "failed": 0}
    assert (done["attempts"], done["chunks_done"]) == (2, 5)
    members = all_pages(api, admin_key, "/v1/members")
    assert sorted(m["external_id"] for m in members) == sorted(points)
    for member in members:
        balance = api.balance(admin_key, member["id"])
        ledger = api.ledger(admin_key, member["id"])
        expected = points[member["external_id"]]
        assert balance["available"] == expected, (member, balance)
        assert [(e["points"], e["idempotency_key"]) for e in ledger] == [(expected, f"import:{member['external_id']}")]
        assert balance["tier"] == ("silver" if expected % 3 == 0 else None)

    # And running it once more, or importing the same file again, credits nothing twice
    before = tenant_state(api, admin_key)
    again = import_jobs.run_import("acme", job["id"], budget_seconds=None)
    assert not again.claimed and again.job.status == "completed"
    second = submit(api, admin_key, text).body
    run_imports(api)
    repeat = api.call("GET", f"{IMPORTS}/{second['id']}", key=admin_key).body
    assert repeat["counts"] == {"total": 30, "processed": 30, "imported": 0, "skipped": 30, "failed": 0}
    assert {e["code"] for e in errors_of(api, admin_key, second["id"])} == {"member_exists"}
    after = tenant_state(api, admin_key)
    assert after["members"] == before["members"] and after["balances"] == before["balances"]
    assert after["ledgers"] == before["ledgers"]


def _crash_on(calls: dict[str, int], n: int, land: Callable[..., Any], self: Any, args: Any, kwargs: Any) -> Any:
    calls["n"] += 1
    if calls["n"] == n:
        raise RuntimeError("the function crashed again")
    return land(self, *args, **kwargs)


def test_a_chunk_result_is_counted_once_even_when_two_runs_record_it(brand: Api, admin_key: str) -> None:
    job = submit(brand, admin_key, "external_id,points\nr-1,5\n").body
    import_jobs.run_import("acme", job["id"], budget_seconds=None)
    repository = ImportRepository(_models("acme"))
    result = import_domain.ChunkResult(index=0, imported=1, skipped=0, failed=0, issues=())
    from datetime import UTC, datetime

    # When a late run records the same chunk again, Then it is refused and nothing is added
    assert repository.finish_chunk(job["id"], result, now=datetime.now(UTC)) is False
    done = brand.call("GET", f"{IMPORTS}/{job['id']}", key=admin_key).body
    assert done["counts"]["imported"] == 1 and done["chunks_done"] == 1


def _models(tenant_id: str) -> Any:
    from chalicelib.persistence.factory import tenant_models

    services = platform()
    return tenant_models(tenant_id, services.settings.tenant_table_name(tenant_id), services.connection)


def test_imports_belong_to_their_tenant_and_to_admin_keys(brand: Api, admin_key: str, other_admin_key: str) -> None:
    api = brand
    job = submit(api, admin_key, "external_id,points\nt-1,5\nt-2,x\n").body
    run_imports(api)

    # Another tenant's admin key finds nothing of it
    assert_error(api.call("GET", f"{IMPORTS}/{job['id']}", key=other_admin_key), 404, "not_found")
    assert_error(api.call("GET", f"{IMPORTS}/{job['id']}/errors", key=other_admin_key), 404, "not_found")
    assert api.call("GET", IMPORTS, key=other_admin_key).body == {"data": [], "next_cursor": None}
    assert member_by_external_id(api, other_admin_key, "t-1") is None
    # and an import of the other tenant lands in its own table only
    theirs = submit(api, other_admin_key, "external_id,points\nt-1,99\n").body
    run_imports(api)
    mine = member_by_external_id(api, admin_key, "t-1")
    other = member_by_external_id(api, other_admin_key, "t-1")
    assert mine is not None and other is not None and mine["id"] != other["id"]
    assert api.balance(admin_key, mine["id"])["available"] == 5
    assert api.balance(other_admin_key, other["id"])["available"] == 99
    assert api.call("GET", f"{IMPORTS}/{theirs['id']}", key=admin_key).status == 404

    # Malformed ids are 400 or 404, never a 500
    assert_error(api.call("GET", f"{IMPORTS}/imp_nope", key=admin_key), 404, "not_found")
    assert_invalid(api.call("GET", f"{IMPORTS}/{'x' * 80}", key=admin_key))

    # And only admin keys import or read imports (bulk enrolment with balances and tiers)
    write = api.create_key(admin_key, "write")
    read = api.create_key(admin_key, "read")
    for key in (write, read):
        assert_error(submit(api, key, "external_id\nz-1\n"), 403, "forbidden")
        assert_error(api.call("GET", f"{IMPORTS}/{job['id']}", key=key), 403, "forbidden")


def test_deployed_a_submitted_import_runs_from_the_jobs_queue_message_by_message(
    backend: str, brand: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "moto":
        pytest.skip("the jobs queue is moto's SQS (in-process)")
    import boto3

    from chalicelib.jobs.lifecycle import JOBS_QUEUE

    api = brand
    sqs = boto3.client("sqs", region_name="eu-west-1")
    queue_url = sqs.create_queue(QueueName="loyalty-test-jobs")["QueueUrl"]
    monkeypatch.setenv("LOYALTY_JOBS_QUEUE_URL", queue_url)
    # a budget of 0 s: each message lands one chunk, then enqueues the continuation
    monkeypatch.setenv("LOYALTY_IMPORT_TIME_BUDGET_SECONDS", "0")
    monkeypatch.setattr(import_domain, "CHUNK_ROWS", 2)
    reset_platform()
    platform()

    def messages() -> list[str]:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in got:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [m["Body"] for m in got]

    # When a file of 5 rows (3 chunks) is submitted, Then one message asks for its run
    job = submit(api, admin_key, "external_id,points\nq-1,1\nq-2,2\nq-3,3\nq-4,4\nq-5,5\n").body
    (first,) = messages()
    assert json.loads(first) == {"kind": "import", "tenant_id": "acme", "import_id": job["id"]}

    # When the jobs handler takes the messages one by one, Then each lands a chunk and asks for the next
    handled, bodies = 0, [first]
    while bodies:
        for body in bodies:
            event = api.client.events.generate_sqs_event(message_bodies=[body], queue_name=JOBS_QUEUE)
            api.client.lambda_.invoke("run-tenant-job", event)
            handled += 1
        bodies = messages()
    assert handled == 3
    done = api.call("GET", f"{IMPORTS}/{job['id']}", key=admin_key).body
    assert done["status"] == "completed" and done["counts"]["imported"] == 5, done

    # And the schedule, deployed, only re-enqueues imports that stalled (none here)
    assert run_imports(api) == {"tenants": 1, "imports": 0, "resumed": 0}
    assert messages() == []
    # And a malformed message is dropped
    event = api.client.events.generate_sqs_event(message_bodies=['{"kind": "import"}'], queue_name=JOBS_QUEUE)
    api.client.lambda_.invoke("run-tenant-job", event)


def test_rows_land_in_batches_and_a_batch_whose_answer_was_lost_is_recognised_on_rerun(
    brand: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = brand
    # Given 4 rows per transaction, and a member enrolled through the API under one of the file's ids
    monkeypatch.setattr(import_domain, "ROWS_PER_TRANSACTION", 4)
    existing = api.enrol(admin_key, external_id="b-05")
    text = "external_id,points\n" + "".join(f"b-{n:02d},{n}\n" for n in range(1, 11))
    job = submit(api, admin_key, text).body

    # When the second transaction commits but its answer is lost
    real_land = ImportRepository.land
    calls = {"n": 0}

    lock = threading.Lock()

    def lost_answer(self: ImportRepository, *args: Any, **kwargs: Any) -> Any:
        with lock:  # batches land from several threads on DynamoDB Local
            calls["n"] += 1
            mine = calls["n"]
        result = real_land(self, *args, **kwargs)
        if mine == 2:
            raise TimeoutError("the answer of a committed transaction was lost")
        return result

    monkeypatch.setattr(ImportRepository, "land", lost_answer)
    with pytest.raises(TimeoutError):
        import_jobs.run_import("acme", job["id"], budget_seconds=None)
    crashed = api.call("GET", f"{IMPORTS}/{job['id']}", key=admin_key).body
    assert (crashed["status"], crashed["counts"]["processed"], crashed["attempts"]) == ("running", 0, 1), crashed

    # Then the rerun counts the rows it had written as imported, skips the existing member only
    monkeypatch.setattr(ImportRepository, "land", real_land)
    import_jobs.run_import("acme", job["id"], budget_seconds=None)
    done = api.call("GET", f"{IMPORTS}/{job['id']}", key=admin_key).body
    assert done["counts"] == {"total": 10, "processed": 10, "imported": 9, "skipped": 1, "failed": 0}, done
    assert [(e["row"], e["code"], e["details"]) for e in done["errors"]] == [
        (6, "member_exists", {"member_id": existing})
    ]
    for member in all_pages(api, admin_key, "/v1/members"):
        n = int(member["external_id"].removeprefix("b-"))
        expected = [] if member["id"] == existing else [n]
        assert [e["points"] for e in api.ledger(admin_key, member["id"])] == expected, member
        assert api.balance(admin_key, member["id"])["available"] == sum(expected)
