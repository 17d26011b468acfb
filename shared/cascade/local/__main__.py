"""``python -m cascade.local`` (``make run``): the whole stack on loopback until Ctrl-C."""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import threading

from cascade.local.stack import LocalStack


def _bind_error(port: int) -> OSError | None:
    """Why the gateway could not listen on ``port`` (it binds loopback with SO_REUSEADDR), or None."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc
    return None


def _refused(port: int, exc: OSError) -> str:
    """One line that names PORT: what ``make run`` prints instead of a traceback."""
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is in use: set PORT={port + 1 if port < 65535 else 3000} make run"
    return f"cannot listen on port {port} ({exc.strerror}): set PORT=3000 make run"


def _port() -> int:
    """``PORT``, checked before anything starts."""
    raw = os.environ.get("PORT", "3000").strip()
    if not raw.isdigit() or int(raw) > 65535:
        sys.exit(f"PORT={raw} is not a port number: set PORT=3000 make run")
    port = int(raw)
    error = _bind_error(port)
    if error is not None:
        sys.exit(_refused(port, error))
    return port


def main() -> None:
    port = _port()
    try:
        stack = LocalStack(port=port,
                           api_key=os.environ.get("CASCADE_API_KEY", "local-dev-key"),
                           time_scale=float(os.environ.get("CASCADE_TIME_SCALE", "60")),
                           sms_provider=os.environ.get("SMS_PROVIDER", "sns")).start()
    except OSError as exc:  # taken by another process while the stack was starting
        if exc.errno != errno.EADDRINUSE or _bind_error(port) is None:
            raise
        sys.exit(_refused(port, exc))
    providers = "\n".join(f"  {s.name:<14} {s.url}" for s in stack.standins if s.url)
    crm = stack.standin("crm")
    print(f"""
Cascade local stack is up.
  API            {stack.url}            (docs: {stack.url}/docs)
  dashboard      {stack.url}/dashboard  (asks for the API key below)
  API key        {stack.api_key}
  time scale     {stack.time_scale:g} cascade seconds per real second (a 2 h wait takes {7200 / stack.time_scale:g} s)
  AWS (moto)     {stack.aws_endpoint}
  SMS provider   {stack.sms_provider}
Provider stand-ins:
{providers}
  outbox         {stack.url}/local/outbox

Try:
  curl -s -X POST {stack.url}/v1/events -H 'Authorization: Bearer {stack.api_key}' \\
    -H 'content-type: application/json' -d @events/delivery-failed.json
CRM events (a local CRM at {crm.endpoint}; what it got: {stack.url}/local/crm):
  curl -s -X PUT {stack.url}/v1/webhooks -H 'Authorization: Bearer {stack.api_key}' \\
    -d '{{"url": "{crm.endpoint}", "secret": "{crm.secret}"}}'
Ctrl-C stops it.
""", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    stack.stop()


if __name__ == "__main__":
    main()
