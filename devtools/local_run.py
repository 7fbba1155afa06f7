"""``make run``: the API on ``chalice local`` over DynamoDB Local, its data kept in a folder.

What :class:`LocalRun` starts, and stops again on SIGTERM or Ctrl-C, in this order:

* DynamoDB Local (``devtools.emulators``), its tables under ``<data>/dynamodb/``; without
  Java (or without ``node_modules``) one line says so and moto's server serves instead, in
  memory;
* moto's server in-process for KMS, whose key sealing webhook signing secrets is kept under
  ``<data>/kms/`` (``devtools.local_kms``): secrets sealed before a restart open after it;
* the demo brand, seeded once; its admin key and the operator key are kept in
  ``<data>/keys.json``, so the banner shows the same keys at every start;
* the scheduled jobs, in a thread of this process: one line for a run that did something,
  nothing for one that did not;
* ``chalice local`` (``python -m devtools.devserver``) in a child process: the API under ``/v1``
  and the brand console at ``/console/``.

The children run in their own sessions (a Ctrl-C reaches this process, which stops them in
order) and die with this process on Linux even when it is killed outright.
``make reset`` deletes the data folder.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from devtools.emulators import DynamoDBLocal, dies_with_parent

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT / ".local"
DEMO_TENANT = "demo"
TABLE_PREFIX = "loyalty-local"
REGION = "eu-west-1"
STARTUP_SECONDS = 60.0
#: The JIT's first tier only: DynamoDB Local answers in a third of the time after launch, and a
#: developer's requests never need the second tier's throughput.
QUICK_START_JVM = ("-XX:TieredStopAtLevel=1",)

Say = Callable[[str], None]


class _DemoMember(TypedDict):
    external_id: str
    email: str
    name: str
    points: int


DEMO_MEMBERS: list[_DemoMember] = [
    {"external_id": "cust-1001", "email": "ada@example.com", "name": "Ada Lovelace", "points": 1200},
    {"external_id": "cust-1002", "email": "alan@example.com", "name": "Alan Turing", "points": 350},
    {"external_id": "cust-1003", "email": "grace@example.com", "name": "Grace Hopper", "points": 0},
]


def local_environment(endpoint: str, operator_key: str, kms_endpoint: str | None = None) -> None:
    """This process's settings (the app reads them from the environment; the server inherits them)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ.setdefault("LOYALTY_TABLE_PREFIX", TABLE_PREFIX)
    os.environ["LOYALTY_STAGE"] = "local"
    os.environ["LOYALTY_DYNAMODB_ENDPOINT"] = endpoint
    os.environ["LOYALTY_OPERATOR_KEY"] = operator_key
    if kms_endpoint:
        os.environ["LOYALTY_KMS_ENDPOINT"] = kms_endpoint
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")


# --- the demo brand ---------------------------------------------------------------------------


def _admin_key_works(secret: str | None) -> bool:
    from chalicelib.domain.errors import LoyaltyError
    from chalicelib.services import platform

    if not secret:
        return False
    try:
        platform().authenticator.authenticate_tenant(f"Bearer {secret}")
    except LoyaltyError:
        return False
    return True


def seed_demo(admin_key: str | None = None) -> tuple[str, list[str]]:
    """Create the control table and the demo brand with a few members, as far as they are missing.

    Returns an admin key of the demo brand (``admin_key`` when it still works, else a new one)
    and the demo members' ids.
    """
    from chalicelib.domain.errors import MemberExists
    from chalicelib.domain.members import NewMember
    from chalicelib.domain.movement_requests import MovementRequest, MovementType
    from chalicelib.domain.scopes import Scope
    from chalicelib.domain.tenants import NewTenant, TenantContext
    from chalicelib.services import platform, reset_platform

    reset_platform()
    services = platform()
    services.provisioner.ensure_control_table()
    existing = services.tenant_store.get(DEMO_TENANT)
    if existing is None:
        created = services.tenants.create(
            NewTenant(tenant_id=DEMO_TENANT, name="Demo Coffee", currency="EUR", timezone="Europe/Helsinki")
        )
        tenant, admin_secret = created.tenant, created.admin_key.secret
    elif admin_key is not None and _admin_key_works(admin_key):
        tenant, admin_secret = existing, admin_key
    else:  # the demo brand exists but its key is not known (or revoked): issue another
        tenant = existing
        context = TenantContext(tenant=tenant, key_id="cli", key_name="cli", scopes=frozenset({Scope.ADMIN}))
        admin_secret = services.api_keys.create(context, name="make-run", scopes=frozenset({Scope.ADMIN})).secret
    demo = services.for_tenant_id(DEMO_TENANT)
    member_ids = []
    for spec in DEMO_MEMBERS:
        try:
            member = demo.members.enrol(
                NewMember(external_id=spec["external_id"], email=spec["email"], name=spec["name"])
            )
        except MemberExists:
            found = demo.members.find_by_external_id(str(spec["external_id"]))
            member_ids += [found.member_id] if found else []
            continue
        member_ids.append(member.member_id)
        if spec["points"]:
            demo.points.move(
                MovementRequest(
                    member_id=member.member_id,
                    movement=MovementType.EARN,
                    idempotency_key=f"seed-{spec['external_id']}",
                    points=int(spec["points"]),
                    description="opening balance",
                    currency=tenant.currency,
                )
            )
    return admin_secret, member_ids


# --- the scheduled jobs -----------------------------------------------------------------------

#: The app's log records that say a job did something, and the fields worth a line.
_WORK_RECORDS: dict[str, tuple[str, ...]] = {
    "job run": ("counts",),
    "webhooks dispatched": ("events", "deliveries", "sent", "succeeded", "failed_attempts", "given_up", "disabled"),
    "events published": ("published",),
    "import run": ("import_id", "status", "processed", "total_rows"),
}


class JobLog(logging.Handler):
    """Collects the app's log records during one job run and says, in one line, what it did."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @contextmanager
    def capturing(self) -> Iterator[list[logging.LogRecord]]:
        self.records = []
        yield self.records

    @staticmethod
    def summary(job: str, records: list[logging.LogRecord]) -> str | None:
        """``job: tenant counts; ...`` for the records that did something, warnings and errors
        included; None when the run did nothing."""
        parts = []
        for record in records:
            message = record.getMessage()
            tenant = getattr(record, "tenant_id", None)
            where = f"{tenant} " if tenant else ""
            if record.levelno >= logging.WARNING:
                error = record.exc_info[1] if record.exc_info else None
                cause = f" ({type(error).__name__}: {error})" if error is not None else ""
                parts.append(f"{where}{record.levelname.lower()}: {message}{cause}")
                continue
            if message not in _WORK_RECORDS:
                continue
            if message == "job run":
                counts = {k: v for k, v in (getattr(record, "counts", None) or {}).items() if v}
                if counts:
                    parts.append(where + " ".join(f"{k}={v}" for k, v in counts.items()))
                continue
            values = " ".join(f"{k}={getattr(record, k)}" for k in _WORK_RECORDS[message] if getattr(record, k, None))
            parts.append(f"{where}{message}" + (f" {values}" if values else ""))
        return f"{job}: " + "; ".join(parts) if parts else None


def run_schedules(every_seconds: float, webhooks_every_seconds: float, stop: threading.Event, say: Say) -> None:
    """Invoke the app's @app.schedule handlers in-process, as EventBridge would when deployed.

    The webhook dispatch, the import resumption and the insights' fold run every
    ``webhooks_every_seconds`` (a local receiver sees events a few seconds after they happen,
    and the figures follow as fast), the other jobs every
    ``every_seconds``; one thread, one client, so the handlers never run concurrently. The
    app's logs of a run are summed up in one line when it did something, and dropped when not.
    """
    from chalice.app import ScheduledEventConfig
    from chalice.test import Client

    from app import app
    from chalicelib.jobs.imports import SCHEDULE as IMPORTS_SCHEDULE
    from chalicelib.jobs.lifecycle import INSIGHTS_SCHEDULE
    from chalicelib.jobs.webhooks import SCHEDULE as WEBHOOKS_SCHEDULE
    from chalicelib.observability import SERVICE

    schedules = [s for s in app.event_sources if isinstance(s, ScheduledEventConfig)]
    if not schedules:
        return
    fast = {WEBHOOKS_SCHEDULE, IMPORTS_SCHEDULE, INSIGHTS_SCHEDULE}
    every = {s.name: webhooks_every_seconds if s.name in fast else every_seconds for s in schedules}
    app_log = logging.getLogger(SERVICE)
    job_log = JobLog()
    for handler in list(app_log.handlers):  # the JSON lines of every run: summed up below instead
        app_log.removeHandler(handler)
    app_log.addHandler(job_log)
    app_log.propagate = False
    due = {name: time.monotonic() + seconds for name, seconds in every.items()}
    with Client(app) as client:
        while not stop.wait(max(0.0, min(due.values()) - time.monotonic())):
            for schedule in schedules:
                if stop.is_set():
                    return
                if due[schedule.name] > time.monotonic():
                    continue
                due[schedule.name] = time.monotonic() + every[schedule.name]
                event = client.events.generate_cw_event(
                    source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
                )
                with job_log.capturing() as records:
                    try:
                        client.lambda_.invoke(schedule.name, event)
                    except Exception as error:  # keep the local loop alive
                        say(f"jobs: {schedule.name} failed: {error}")
                        continue
                line = JobLog.summary(schedule.name, records)
                if line:
                    say(f"jobs: {line}")


# --- the run ----------------------------------------------------------------------------------


class LocalRunError(RuntimeError):
    """The run cannot start: the message says why and what to do."""


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _wait_until_healthy(base_url: str, server: subprocess.Popen[bytes], timeout: float = STARTUP_SECONDS) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base_url + "/v1/health", timeout=2) as answer:  # noqa: S310 (our loopback URL)
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if server.poll() is not None:
            raise LocalRunError(f"chalice local exited with {server.returncode} (its output is above)")
        if time.monotonic() > deadline:
            raise LocalRunError(f"chalice local did not answer within {timeout:g}s")
        time.sleep(0.2)


@dataclass
class LocalRun:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = DEFAULT_DATA_DIR
    jobs_every: float = 60.0
    webhooks_every: float = 5.0
    say: Say = print
    #: Set once started: what the banner shows.
    endpoint: str = ""
    in_memory_reason: str | None = None
    operator_key: str = ""
    admin_key: str = ""
    member_ids: list[str] = field(default_factory=list)
    _database: DynamoDBLocal | None = field(default=None, init=False, repr=False)
    _moto: Any = field(default=None, init=False, repr=False)
    _server: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _scheduler: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def kept(self) -> bool:
        """Whether the data outlives the run: on DynamoDB Local, under :attr:`data_dir`."""
        return self._database is not None

    @property
    def keys_file(self) -> Path:
        return self.data_dir / "keys.json"

    def start(self) -> LocalRun:
        """Everything up, the API answering; stops what it started if a step fails."""
        if _port_in_use(self.host, self.port):
            raise LocalRunError(f"port {self.port} is in use: free it, or run on another (PORT=8001 make run)")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from devtools.devserver import SerialMotoServer
        from devtools.local_kms import keep_local_key

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        kms_endpoint = os.environ.get("LOYALTY_KMS_ENDPOINT")
        self.endpoint = os.environ.get("LOYALTY_DYNAMODB_ENDPOINT", "")
        if not self.endpoint:
            self.in_memory_reason = DynamoDBLocal.unavailable()
            if self.in_memory_reason is None:
                # The JVM's start, the imports here and in chalice local, and the seeding overlap.
                self._database = DynamoDBLocal(self.data_dir / "dynamodb", jvm_options=QUICK_START_JVM).launch()
                self.endpoint = self._database.endpoint
        if not kms_endpoint or not self.endpoint:
            self._moto = SerialMotoServer().start()
        if not self.endpoint:
            self.say(f"{self.in_memory_reason}: serving on moto instead, in memory (lost at exit)")
            self.endpoint = self._moto.endpoint
        saved = self._saved_keys() if self.kept else {}
        self.operator_key = (
            os.environ.get("LOYALTY_OPERATOR_KEY")
            or saved.get("operator_key")
            or f"op_local_{secrets.token_urlsafe(24)}"
        )
        local_environment(self.endpoint, self.operator_key, kms_endpoint=kms_endpoint or self._moto.endpoint)
        if self.kept and not kms_endpoint:  # before the server's first KMS call
            from chalicelib.settings import get_settings

            keep_local_key(self.data_dir, get_settings().webhook_local_kms_alias, os.environ["AWS_DEFAULT_REGION"])
        self._server = subprocess.Popen(
            [sys.executable, "-m", "devtools.devserver", "--host", self.host, "--port", str(self.port)],
            cwd=ROOT,
            env=os.environ.copy(),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=dies_with_parent,
        )
        import chalicelib.services  # noqa: F401 (imported while the JVM starts: the seeding needs it)

        if self._database is not None:
            try:
                self._database.wait_until_ready()
            except RuntimeError as failed:
                raise LocalRunError(f"DynamoDB Local did not start on {self.data_dir / 'dynamodb'}: {failed}") from None
        self.admin_key, self.member_ids = seed_demo(saved.get("admin_key"))
        if self.kept:
            self._save_keys()
        self._scheduler = threading.Thread(
            target=run_schedules,
            args=(self.jobs_every, self.webhooks_every, self._stop, self.say),
            name="local-jobs",
            daemon=True,
        )
        self._scheduler.start()
        _wait_until_healthy(self.base_url, self._server)

    def _saved_keys(self) -> dict[str, str]:
        try:
            saved = json.loads(self.keys_file.read_text())
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in saved.items() if isinstance(v, str)} if isinstance(saved, dict) else {}

    def _save_keys(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump({"operator_key": self.operator_key, "admin_key": self.admin_key}, file)

    def wait(self) -> int:
        """Until the server exits (its exit code) or this process is asked to stop (0)."""
        assert self._server is not None, "start() first"
        return self._server.wait()

    def stop(self) -> None:
        """Stop every process and thread it started; safe to call twice."""
        self._stop.set()
        server, self._server = self._server, None
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        if self._scheduler is not None:
            self._scheduler.join(timeout=15)  # a job run in progress finishes first
            self._scheduler = None
        if self._database is not None:
            self._database.stop()
            self._database = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def banner(self) -> list[str]:
        base = f"{self.base_url}/v1"
        auth = f"-H 'Authorization: Bearer {self.admin_key}'"
        member = self.member_ids[0] if self.member_ids else "MEMBER_ID"
        if self.kept:
            data = f"{self.data_dir}  (DynamoDB Local, kept across restarts; `make reset` wipes it)"
        elif self.in_memory_reason is not None:
            data = "in memory (moto): lost at exit"
        else:
            data = f"{self.endpoint}  (LOYALTY_DYNAMODB_ENDPOINT)"
        return [
            f"API        {base}   (reference: {base}/docs, OpenAPI: {base}/openapi.json)",
            f"Demo key   {self.admin_key}   (brand '{DEMO_TENANT}', admin)",
            f"Console    {self.base_url}/console/   (the brand console: sign in with the demo key)",
            f"Operator   {self.operator_key}   (creates brands: POST /v1/tenants)",
            f"Try        curl -s {base}/members/{member}/balance {auth}",
            "CLI        .venv/bin/loyalty --help   (LOYALTY_API_KEY=<a key>; the URL defaults to this API)",
            f"Data       {data}",
            "Docs       make docs-serve",
            "Stop       Ctrl-C",
        ]


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def serve(run: LocalRun, show_banner: Callable[[list[str]], None]) -> int:
    """Start ``run``, show its banner, serve until SIGTERM, Ctrl-C or the server's exit; stop all."""
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        try:
            run.start()
        except LocalRunError as refused:
            run.say(str(refused))
            return 1
        show_banner(run.banner())
        return run.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopping is not interrupted by a second SIGTERM
        try:
            run.stop()
        finally:
            signal.signal(signal.SIGTERM, previous)
