"""``python -m cascade.local`` (``make run``): the whole stack on loopback until Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading

from cascade.local.stack import LocalStack


def main() -> None:
    stack = LocalStack(port=int(os.environ.get("PORT", "3000")),
                       api_key=os.environ.get("CASCADE_API_KEY", "local-dev-key"),
                       time_scale=float(os.environ.get("CASCADE_TIME_SCALE", "60")),
                       sms_provider=os.environ.get("SMS_PROVIDER", "sns")).start()
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
