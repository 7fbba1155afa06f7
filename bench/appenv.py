"""Configuring the app exactly as the integration tests do, and driving it through chalice.test."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"
OPERATOR_KEY = "bench-operator-key-0123456789"


def base_environment(prefix: str) -> dict[str, str]:
    """What every bench process (this one and the cold-start children) runs with."""
    return {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "LOYALTY_OPERATOR_KEY": OPERATOR_KEY,
        "LOYALTY_TABLE_PREFIX": prefix,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        # As .chalice/config.json sets for every stage: pydantic looks for no plugin among the
        # installed distributions' entry points (a scan of every one, on the first model built).
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }


def configure_process(endpoint: str) -> str:
    """Set this process's environment for the app; return the table prefix used."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ.update(base_environment(prefix))
    os.environ["LOYALTY_DYNAMODB_ENDPOINT"] = endpoint
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "LOYALTY_OPERATOR_KEY_SHA256",
        "LOYALTY_OPERATOR_KEY_SSM_PARAMETER",
    ):
        os.environ.pop(name, None)
    return prefix


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any


class AppClient:
    """The HTTP API through ``chalice.test.Client`` (API Gateway event -> app -> response)."""

    def __init__(self) -> None:
        import warnings

        warnings.filterwarnings("ignore", message="No application metrics to publish")
        from chalice.test import Client

        from app import app
        from chalicelib.services import platform, reset_platform

        reset_platform()
        platform().provisioner.ensure_control_table()
        # The "local" stage of .chalice/config.json: what `make run` and the tests exercise.
        self.client = Client(app, stage_name="local", project_dir=str(ROOT))
        self.client.__enter__()

    def close(self) -> None:
        self.client.__exit__(None, None, None)

    @staticmethod
    def headers(key: str | None, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def call(
        self, method: str, path: str, *, key: str | None = None, body: Any = None, idempotency_key: str | None = None
    ) -> Reply:
        payload = json.dumps(body) if body is not None else None
        response = getattr(self.client.http, method.lower())(
            path, headers=self.headers(key, idempotency_key), body=payload
        )
        text = response.body.decode() if isinstance(response.body, bytes) else response.body
        return Reply(status=response.status_code, body=json.loads(text) if text else None)

    def expect(self, status: int, method: str, path: str, **kwargs: Any) -> Any:
        reply = self.call(method, path, **kwargs)
        drop_buffered_metrics()
        if reply.status != status:
            raise RuntimeError(f"{method} {path}: expected {status}, got {reply.status}: {reply.body}")
        return reply.body


def drop_buffered_metrics() -> None:
    """With POWERTOOLS_METRICS_DISABLED, powertools never flushes, so metrics pile up across requests and
    every 100th value is printed to stdout anyway. Emptying the buffer between requests (never inside a
    timed region) keeps the bench output clean; it does not change what a request does."""
    try:
        from chalicelib.observability import metrics
    except ImportError:
        return
    clear = getattr(metrics, "clear_metrics", None)
    if clear is not None:
        clear()


def key_id_of(secret: str) -> str:
    """``lk_<ULID>_<secret>`` -> ``key_<ULID>`` (the API key item's id)."""
    return "key_" + secret.split("_")[1]


@contextmanager
def recorded_app() -> Iterator[tuple[Any, Any]]:
    """A bench section's setting: DynamoDB Local, the app configured on it, every DynamoDB call
    recorded (for request units) and a chalice.test client: ``(api, recorder)``."""
    from bench.capture import Recorder
    from tests.support.emulators import dynamodb_local

    with dynamodb_local() as endpoint:
        configure_process(endpoint)
        recorder = Recorder(endpoint=endpoint, region=REGION)
        recorder.install()
        api = AppClient()
        try:
            yield api, recorder
        finally:
            recorder.uninstall()
            api.close()


def bench_tenant(api: AppClient, tenant_id: str, *, points_per_euro: str | None = "10") -> str:
    """A tenant in EUR (Helsinki), with 10 points per euro rounded down unless told otherwise: its admin key."""
    body = {"tenant_id": tenant_id, "name": "Bench", "currency": "EUR", "timezone": "Europe/Helsinki"}
    admin = str(api.expect(201, "POST", "/v1/tenants", key=OPERATOR_KEY, body=body)["api_key"]["secret"])
    if points_per_euro is not None:
        program = {"points_per_currency_unit": points_per_euro, "rounding": "floor"}
        api.expect(200, "PUT", "/v1/program", key=admin, body=program)
    return admin
