"""A tiny threaded HTTP server on loopback, shared by the gateway and the provider stand-ins."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# (method, path, query, headers, body) → (status, headers, body)
Handler = Callable[[str, str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


def json_answer(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps(body, ensure_ascii=False).encode()


class LoopbackServer:
    def __init__(self, handle: Handler, port: int = 0, host: str = "127.0.0.1") -> None:
        outer = handle

        class _Req(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                try:
                    status, headers, payload = outer(self.command, parts.path, parts.query,
                                                     {k.lower(): v for k, v in self.headers.items()}, body)
                except Exception as exc:
                    status, headers, payload = json_answer(500, {"error": f"{type(exc).__name__}: {exc}"})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the stack logs what matters
                pass

        self.httpd = ThreadingHTTPServer((host, port), _Req)
        self.httpd.daemon_threads = True
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
