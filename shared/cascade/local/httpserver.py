"""A tiny threaded HTTP server on loopback, shared by the gateway and the provider stand-ins.

Every method reaches the handler (which answers an unknown one with a JSON 404 or 405, as API
Gateway does, never the standard library's HTML 501); replies go out at once (``TCP_NODELAY``:
the headers and the body are two writes, and Nagle would hold the body until the client's
delayed ACK, ~40 ms); the listen backlog takes a burst of clients; and a client that goes away
mid-request or before reading its answer is nobody's error: no traceback."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from cascade.http import dumps

# (method, path, query, headers, body) → (status, headers, body)
Handler = Callable[[str, str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]

log = logging.getLogger("cascade.local.http")
# What a client that hangs up or stops reading leaves behind on our side of the socket.
GONE = (ConnectionError, TimeoutError)


def json_answer(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json; charset=utf-8"}, dumps(body).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = socket.SOMAXCONN  # the default (5) resets a burst of new connections

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, GONE):
            return
        log.error("request from %s failed", client_address, exc_info=exc)


class LoopbackServer:
    def __init__(self, handle: Handler, port: int = 0, host: str = "127.0.0.1") -> None:
        outer = handle

        class _Req(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if len(body) < length:  # the client hung up mid-body: nothing to answer
                    self.close_connection = True
                    return
                parts = urlsplit(self.path)
                try:
                    answer = outer(self.command, parts.path, parts.query,
                                   {k.lower(): v for k, v in self.headers.items()}, body)
                except Exception as exc:
                    log.exception("%s %s failed", self.command, parts.path)
                    answer = json_answer(500, {"error": f"{type(exc).__name__}: {exc}"})
                self._answer(*answer)

            def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def __getattr__(self, name: str) -> Any:
                if name.startswith("do_"):  # any method: the handler decides (404/405), never a 501
                    return self._serve
                raise AttributeError(name)

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                """A request the server cannot parse (bad request line, headers too long): JSON too."""
                self.close_connection = True
                reason = message or self.responses.get(code, ("error",))[0]
                status, headers, payload = json_answer(code, {"error": reason, "details": [
                    {"field": "request", "message": explain or reason}]})
                if not hasattr(self, "command") or self.command is None:
                    self.command = ""
                self._answer(status, {**headers, "connection": "close"}, payload)

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except GONE:
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the stack logs what matters
                pass

        self.httpd = _Server((host, port), _Req)
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


__all__ = ["Handler", "LoopbackServer", "json_answer"]
