"""API key secrets and the operator key never appear in logs."""

from __future__ import annotations

import io

from tests.support.http import OPERATOR_KEY, Api


def test_no_secret_is_logged_on_success_or_refusal(api: Api) -> None:
    # Given every log line of the app, at DEBUG level, written to a buffer
    from chalicelib.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    previous_stream, previous_level = handler.stream, logger.log_level
    handler.setStream(buffer)
    logger.setLevel("DEBUG")
    try:
        # When keys are created, used, refused for scope, mistyped and misused
        admin_key = api.create_tenant("acme")
        write_key = api.create_key(admin_key, "write")
        member = api.enrol(write_key, external_id="c-1")
        api.earn(write_key, member, "k1", points=5)
        api.call("GET", "/v1/api-keys", key=write_key)
        api.call("GET", "/v1/me", key=admin_key[:-1] + ("x" if admin_key[-1] != "x" else "y"))
        api.call("GET", "/v1/tenants", key=admin_key)
    finally:
        handler.setStream(previous_stream)
        logger.setLevel(previous_level)

    # Then the refusals and movements were logged, with key ids but no secret
    text = buffer.getvalue()
    assert text.count("request refused") == 3
    assert "points moved" in text
    assert '"api_key_id":"key_' in text.replace(" ", "")
    for secret in (admin_key, write_key, OPERATOR_KEY, admin_key.split("_", 2)[2], write_key.split("_", 2)[2]):
        assert secret not in text
