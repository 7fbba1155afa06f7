"""The parts of ``make run`` that need no server: the answers to requests no route takes, the
one-line summary of a job run, and what DynamoDB Local needs before it starts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from devtools import emulators
from devtools.devserver import unrouted_answer
from devtools.local_run import JobLog, LocalRun

ROUTES = {
    "/v1/health": {"GET": object()},
    "/v1/members": {"GET": object(), "POST": object()},
    "/v1/members/{member_id}": {"GET": object(), "PATCH": object()},
}


def _body(answer: dict[str, object] | None) -> dict[str, object]:
    assert answer is not None
    assert isinstance(answer["body"], str)
    loaded = json.loads(answer["body"])
    assert isinstance(loaded, dict)
    return loaded


def test_a_path_no_route_matches_is_not_found_in_the_error_shape() -> None:
    answer = unrouted_answer(ROUTES, "GET", "/v1/nothing/here?x=1")
    assert answer is not None and answer["statusCode"] == 404
    assert answer["headers"] == {"Content-Type": "application/json"}
    assert _body(answer) == {"error": {"code": "not_found", "message": "no route matches this path", "details": {}}}


def test_a_method_the_route_does_not_take_is_405_naming_the_ones_it_does() -> None:
    answer = unrouted_answer(ROUTES, "DELETE", "/v1/members/mem_1")
    assert answer is not None and answer["statusCode"] == 405
    assert answer["headers"] == {"Content-Type": "application/json", "Allow": "GET, PATCH"}
    assert _body(answer) == {
        "error": {
            "code": "method_not_allowed",
            "message": "this path does not accept DELETE",
            "details": {"allowed": ["GET", "PATCH"]},
        }
    }


def test_head_answers_without_a_body() -> None:
    answer = unrouted_answer(ROUTES, "HEAD", "/v1/nothing")
    assert answer is not None and answer["statusCode"] == 404 and answer["body"] is None


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/health"), ("POST", "/v1/members/"), ("PATCH", "/v1/members/mem_1"), ("OPTIONS", "/v1/members")],
)
def test_a_request_a_route_takes_is_left_to_the_app(method: str, path: str) -> None:
    assert unrouted_answer(ROUTES, method, path) is None


def test_every_route_of_the_app_is_left_to_the_app() -> None:
    from app import app

    for path, methods in app.routes.items():
        concrete = path.replace("{", "x").replace("}", "")
        for method in methods:
            assert unrouted_answer(app.routes, method, concrete) is None, (method, path)


def _record(message: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("loyalty", level, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def test_a_job_run_that_did_nothing_says_nothing() -> None:
    records = [_record("job run", job="expire-points", tenant_id="demo", counts={"expired": 0, "members": 0})]
    assert JobLog.summary("expire-points", records) is None
    assert JobLog.summary("dispatch-webhooks", []) is None


def test_a_job_run_that_did_something_says_it_in_one_line() -> None:
    records = [
        _record("job run", tenant_id="demo", counts={"expired": 3, "members": 0}),
        _record("job run", tenant_id="acme", counts={"expired": 0}),
        _record("webhooks dispatched", tenant_id="acme", events=2, deliveries=2, sent=2, succeeded=1, due=1),
        _record("job unit failed", logging.ERROR, tenant_id="shop", exc_info=(ValueError, ValueError("bad"), None)),
    ]
    assert JobLog.summary("expire-points", records) == (
        "expire-points: demo expired=3; acme webhooks dispatched events=2 deliveries=2 sent=2 succeeded=1; "
        "shop error: job unit failed (ValueError: bad)"
    )


def test_without_java_dynamodb_local_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulators.shutil, "which", lambda name: None)
    assert emulators.DynamoDBLocal.unavailable() == "DynamoDB Local needs Java 17 on the PATH"
    with pytest.raises(emulators.EmulatorUnavailable, match="Java 17"):
        emulators.DynamoDBLocal().start()


def test_the_banner_names_the_key_a_curl_the_data_the_reset_and_the_docs(tmp_path: Path) -> None:
    run = LocalRun(port=8123, data_dir=tmp_path, say=lambda line: None)
    run.admin_key, run.operator_key, run.member_ids = "lk_demo", "op_local_x", ["mem_1"]
    run._database = emulators.DynamoDBLocal(tmp_path / "dynamodb")  # as started (never launched here)
    banner = "\n".join(run.banner())
    assert "lk_demo" in banner and "op_local_x" in banner
    assert "http://127.0.0.1:8123/v1/docs" in banner  # the interactive API reference
    assert "curl -s http://127.0.0.1:8123/v1/members/mem_1/balance -H 'Authorization: Bearer lk_demo'" in banner
    assert f"{tmp_path}  (DynamoDB Local, kept across restarts; `make reset` wipes it)" in banner
    assert "make docs-serve" in banner
    assert ".venv/bin/loyalty --help" in banner
    assert "http://127.0.0.1:8123/console/" in banner  # the brand console
    assert len(run.banner()) <= 9
