"""Cold start: ``import app`` + the first DynamoDB client, in fresh interpreters, against a bare baseline.

No network call is made: building a botocore client only loads models and resolves the
endpoint. The children run with a deployed-like configuration (no endpoint override), so
both sides resolve the regional AWS endpoint the same way.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from typing import Any

from bench.appenv import REGION, ROOT, base_environment

APP_SCRIPT = """
import json, time
t0 = time.perf_counter()
import app
t1 = time.perf_counter()
from chalicelib.services import platform
from chalicelib.persistence.factory import control_models, tenant_models
services = platform()
control = control_models(services.settings.control_table_name, services.connection)
control.api_key._get_connection().connection.client      # what authentication reads first
t2 = time.perf_counter()
control.tenant._get_connection().connection.client       # then the tenant: a second session + client
t3 = time.perf_counter()
tenant = tenant_models("acme", services.settings.tenant_table_name("acme"), services.connection)
tenant.balance._get_connection().connection.client       # then the tenant table's balance model
t4 = time.perf_counter()
result = {"import": t1 - t0, "first_client": t2 - t0, "second_client": t3 - t2, "tenant_client": t4 - t3}


class Context:  # what Lambda passes; powertools' logger reads these
    function_name = "loyalty-dev"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:loyalty-dev"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/loyalty-dev"
    log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis():
        return 29000


def event(path):
    return {
        "resource": path, "path": path, "httpMethod": "GET",
        "headers": {"Accept": "application/json"}, "multiValueHeaders": {"Accept": ["application/json"]},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"resourcePath": path, "httpMethod": "GET", "path": "/v1" + path, "stage": "v1",
                           "requestId": "bench", "identity": {"sourceIp": "127.0.0.1"}},
    }


try:  # the first invocation: whatever the middleware builds lazily (no DynamoDB call on /health)
    import contextlib, io
    with contextlib.redirect_stdout(io.StringIO()):
        t5 = time.perf_counter()
        first = app.app(event("/v1/health"), Context())
        t6 = time.perf_counter()
        app.app(event("/v1/health"), Context())
        t7 = time.perf_counter()
    if first.get("statusCode") != 200:
        raise RuntimeError(str(first)[:200])
    result.update(first_request=t6 - t5, second_request=t7 - t6)
    # What a first earn does before its DynamoDB calls (the ledger's services built, which imports
    # the domain and persistence modules they need; its body validated, the presenters
    # imported), then the same again warm.
    from chalicelib.api.routing import OPERATIONS
    earn = next(op for op in OPERATIONS if op.operation_id == "earn_points")
    t8 = time.perf_counter()
    services.for_tenant_id("acme").points
    body = earn.body.load() if hasattr(earn.body, "load") else earn.body
    body.model_validate_json(b'{"points": 10}')
    import chalicelib.api.presenters.points
    t9 = time.perf_counter()
    services.for_tenant_id("acme").points
    body.model_validate_json(b'{"points": 10}')
    t10 = time.perf_counter()
    result.update(earn_first_use=t9 - t8, earn_warm_use=t10 - t9)
except Exception as error:
    result.update(first_request=-1.0, second_request=-1.0, request_error=repr(error)[:300])
print(json.dumps(result))
"""

BARE_SCRIPT = f"""
import json, time
t0 = time.perf_counter()
import chalice, boto3
boto3.client("dynamodb", region_name={REGION!r})
t1 = time.perf_counter()
print(json.dumps({{"first_client": t1 - t0}}))
"""

#: The bare baseline plus the libraries the design requires on every request path (pydantic for
#: settings and bodies, PynamoDB for the tables, powertools' logger and metrics): how far the
#: app's cold start could fall with no module of its own.
LIBRARIES_SCRIPT = f"""
import json, time
t0 = time.perf_counter()
import chalice, boto3
from pydantic import BaseModel
import pynamodb.models
from aws_lambda_powertools import Logger, Metrics
boto3.client("dynamodb", region_name={REGION!r})
t1 = time.perf_counter()
print(json.dumps({{"first_client": t1 - t0}}))
"""


def _environment(pycache: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALTY_", "AWS_", "POWERTOOLS_"))}
    env.update(base_environment("loyalty-dev"))
    env.pop("PYTHONPATH", None)
    # Bytecode is cached, as in a deployed package, but in a temporary tree: nothing lands in the repo.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def _run(script: str, env: dict[str, str]) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"cold-start child failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def _importtime(env: dict[str, str]) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]], int]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importtime child failed:\n{done.stderr[-2000:]}")
    rows: list[tuple[str, int, int]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, _, rest = line.partition("import time:")
        self_us, cumulative_us, name = (part.strip() for part in rest.split("|", 2))
        rows.append((name, int(self_us), int(cumulative_us)))
    slowest = sorted(rows, key=lambda row: row[1], reverse=True)[:10]
    packages: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, self_us, _ in rows:
        top = name.split(".")[0]
        packages[top][0] += self_us
        packages[top][1] += 1
    by_package = sorted(
        ((name, us, count) for name, (us, count) in packages.items()), key=lambda r: r[1], reverse=True
    )[:10]
    app_cumulative = next((cum for name, _, cum in rows if name == "app"), 0)
    return slowest, by_package, app_cumulative


def measure(*, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        return _measure(runs, _environment(pycache))


def _measure(runs: int, env: dict[str, str]) -> dict[str, Any]:
    _run(APP_SCRIPT, env)  # warm the OS page cache and the .pyc files; not counted
    _run(BARE_SCRIPT, env)
    _run(LIBRARIES_SCRIPT, env)
    app_runs: list[dict[str, float]] = []
    bare_runs: list[dict[str, float]] = []
    library_runs: list[dict[str, float]] = []
    for i in range(runs):
        trio = [(APP_SCRIPT, app_runs), (BARE_SCRIPT, bare_runs), (LIBRARIES_SCRIPT, library_runs)]
        for script, sink in trio[i % 3 :] + trio[: i % 3]:  # each side runs first in turn
            sink.append(_run(script, env))
    slowest, packages, app_cumulative = _importtime(env)

    def medians(samples: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            key: statistics.median(sample[key] for sample in samples)
            if isinstance(samples[0][key], float)
            else samples[0][key]
            for key in samples[0]
        }

    return {
        "runs": runs,
        "app": medians(app_runs),
        "bare": medians(bare_runs),
        "libraries": medians(library_runs),
        "slowest": slowest,
        "packages": packages,
        "app_cumulative_us": app_cumulative,
    }
