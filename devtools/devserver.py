"""Local servers for development and tests (developer tooling, not part of the Lambda bundle).

* ``python -m devtools.devserver --host 127.0.0.1 --port 8000 --stage local`` runs
  `chalice local` with a listen backlog fit for parallel clients: Chalice's dev server keeps
  socketserver's default of 5, so 50 simultaneous connections are reset before the app
  sees them.
* :class:`SerialMotoServer` is moto's server answering one request at a time. moto's own
  threaded server evaluates a condition and applies the write without a lock, so two
  concurrent conditional writes can both succeed (measured here: 41 of 50 parallel
  redeems of 30 points accepted on a balance of 1000). DynamoDB serialises writes to an
  item; serving requests one by one restores that guarantee for the emulator.
"""

from __future__ import annotations

import sys
import threading

BACKLOG = 256


class SerialMotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import BaseWSGIServer

        class _Server(BaseWSGIServer):
            request_queue_size = BACKLOG

        app = DomainDispatcherApplication(create_backend_app)
        self._server = _Server(host, port, app, handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # a TCP server's address: (host, port)
        return f"http://{host}:{port}"

    def start(self) -> SerialMotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def main(argv: list[str]) -> int:
    from chalice import local
    from chalice.cli import main as chalice_main

    local.ThreadedHTTPServer.request_queue_size = BACKLOG
    sys.argv = ["chalice", "local", "--no-autoreload", *argv]
    return int(chalice_main() or 0)


if __name__ == "__main__":
    from devtools.dependencies import missing_dependencies_reported

    with missing_dependencies_reported("devtools.devserver"):
        sys.exit(main(sys.argv[1:]))
