"""Local servers for development and tests (developer tooling, not part of the Lambda bundle).

* ``python -m devtools.devserver --host 127.0.0.1 --port 8000 --stage local`` runs
  `chalice local` with a listen backlog fit for parallel clients: Chalice's dev server keeps
  socketserver's default of 5, so 50 simultaneous connections are reset before the app
  sees them. A path that no route matches answers 404, a method its route does not take
  405, both in the API's error shape (Chalice's local gateway answers 403 and copies the
  Authorization header into the body). SIGTERM stops it like Ctrl-C, quietly.
  Responses leave without waiting on Nagle's algorithm (a keep-alive client would otherwise
  wait ~40 ms for each body behind its headers).
* :class:`SerialMotoServer` is moto's server answering one request at a time. moto's own
  threaded server evaluates a condition and applies the write without a lock, so two
  concurrent conditional writes can both succeed (measured here: 41 of 50 parallel
  redeems of 30 points accepted on a balance of 1000). DynamoDB serialises writes to an
  item; serving requests one by one restores that guarantee for the emulator.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

BACKLOG = 256
ROOT = Path(__file__).resolve().parents[1]


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


def unrouted_answer(routes: dict[str, dict[str, Any]], method: str, path: str) -> dict[str, Any] | None:
    """The 404 or 405 answer (a Lambda proxy response) for a request that no route takes, or
    None when one does. ``routes``: the app's, by path pattern then method. OPTIONS on a known
    path is left to Chalice (CORS preflight)."""
    from chalicelib.api.errors import JSON_HEADERS, error_body

    try:
        resource = _route_matcher(tuple(routes)).match_route(path).route
    except ValueError:
        body = error_body("not_found", "no route matches this path")
        return _proxy_response(404, dict(JSON_HEADERS), body, head=method == "HEAD")
    allowed = sorted(routes[resource])
    if method in allowed or method == "OPTIONS":
        return None
    body = error_body("method_not_allowed", f"this path does not accept {method}", {"allowed": allowed})
    return _proxy_response(405, {**JSON_HEADERS, "Allow": ", ".join(allowed)}, body, head=method == "HEAD")


@functools.lru_cache(maxsize=4)
def _route_matcher(patterns: tuple[str, ...]) -> Any:
    """Chalice's own matcher (the one its local gateway uses), built once per set of routes."""
    from chalice.local import RouteMatcher

    return RouteMatcher(list(patterns))


def _proxy_response(status: int, headers: dict[str, str], body: dict[str, Any], *, head: bool) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": headers,
        "multiValueHeaders": {},
        "body": None if head else json.dumps(body, separators=(",", ":")),
    }


def _local_server(host: str, port: int, stage: str) -> Any:
    """Chalice's dev server for ``stage`` of the project (as `chalice local` builds it), with
    the listen backlog and the unrouted answers above."""
    from chalice import local
    from chalice.cli.factory import CLIFactory
    from chalice.deploy.validate import validate_routes

    class Gateway(local.LocalGateway):
        def handle_request(self, method: str, path: str, headers: Any, body: bytes | None) -> Any:
            answer = unrouted_answer(self._app_object.routes, method, path)
            return answer if answer is not None else super().handle_request(method, path, headers, body)

    class RequestHandler(local.ChaliceRequestHandler):
        # The handler sends a response's headers and its body in two writes; with Nagle's
        # algorithm the body waits for the client's delayed ACK of the headers (~40 ms on
        # Linux), which a keep-alive client pays on every request.
        disable_nagle_algorithm = True

        def __init__(self, request: Any, client_address: Any, server: Any, app_object: Any, config: Any) -> None:
            self.local_gateway = Gateway(app_object, config)
            local.BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    class HttpServer(local.ThreadedHTTPServer):
        request_queue_size = BACKLOG

    factory = CLIFactory(str(ROOT), environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    app = config.chalice_app
    validate_routes(app.routes)
    local.CustomLocalChalice.__bases__ = (local.LocalChalice, app.__class__)
    app.__class__ = local.CustomLocalChalice  # a request per thread, as `chalice local` does
    return local.LocalDevServer(app, config, host, port, handler_cls=RequestHandler, server_cls=HttpServer)


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m devtools.devserver", description="chalice local, as make run serves it"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="local")
    arguments = parser.parse_args(argv)
    os.environ["AWS_CHALICE_CLI_MODE"] = "true"
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    for chatty in ("botocore", "pynamodb"):  # where they found credentials and settings, at every start
        logging.getLogger(chatty).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        server = _local_server(arguments.host, arguments.port, arguments.stage)
        try:
            server.serve_forever()
        finally:
            server.server.server_close()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    from devtools.dependencies import missing_dependencies_reported

    with missing_dependencies_reported("devtools.devserver"):
        sys.exit(main(sys.argv[1:]))
