"""The local stack: moto (as AWS) running the real state machine over the real handlers, the
template's HTTP routes served as API Gateway v2 payloads, and stand-ins for the messenger, voice
and operator providers (see :mod:`cascade.local.standin`).

``LocalStack(...).start()`` is what ``make run`` and the end-to-end tests use."""

from __future__ import annotations

import base64
import importlib
import json
import logging
import os
import re
import socket
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx

from cascade.local import faults, lambdas, mail, moto_speed, moto_upkeep, streams, template
from cascade.local.deploy import ACCOUNT, Deployed, deploy
from cascade.local.httpserver import LoopbackServer, json_answer
from cascade.local.standin import StandIn, invalid
from cascade.local.telegram import TelegramStandIn

REGION = "us-east-1"
EMAIL_FROM = "shop@example.com"
# The provider stand-ins, each "module:Class" (Telegram is always first).
STANDINS = (
    "cascade.local.telegram:TelegramStandIn",
    "cascade.local.twilio:TwilioStandIn",
    "cascade.local.viber:ViberStandIn",
    "cascade.local.whatsapp:WhatsAppStandIn",
    "cascade.local.push:PushStandIn",
    "cascade.local.operator:OperatorDesk",
    "cascade.local.crm:CrmStandIn",  # the business's CRM: receives the outbound events
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalStack:
    def __init__(self, port: int = 3000, api_key: str = "local-dev-key", time_scale: float = 60.0,
                 stack_name: str = "cascade-local", provider_timeout_seconds: float = 3.0,
                 sms_provider: str = "sns", parameters: dict[str, str] | None = None,
                 clock_shift_seconds: float = 0.0) -> None:
        # Moves the cascades' clock (quiet hours, schedules, daily caps) by this much: tests
        # start their day at a known hour whatever the wall clock says.
        self.clock_shift_seconds = clock_shift_seconds
        self.provider_timeout_seconds = provider_timeout_seconds
        self.sms_provider = sms_provider
        self.extra_parameters = dict(parameters or {})
        self.port = port
        self.api_key = api_key
        self.time_scale = time_scale
        self.stack_name = stack_name
        self.deployed: Deployed | None = None
        self.routes: list[tuple[str, re.Pattern[str], str, str]] = []
        self._refs: dict[str, dict[str, Any]] = {}
        self._carriers: dict[str, StandIn] = {}  # provider message id → the stand-in that delivered it
        self.standins: list[StandIn] = []
        for spec in STANDINS:
            module, _, cls = spec.partition(":")
            self.standins.append(getattr(importlib.import_module(module), cls)())
        self.telegram: TelegramStandIn = self.standins[0]  # type: ignore[assignment]

    def standin(self, name: str) -> Any:
        return next(s for s in self.standins if s.name == name)

    # -- start / stop -------------------------------------------------------------------------

    def start(self) -> LocalStack:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        moto_port = _free_port()
        os.environ.update({
            "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
            # The state machine's own service calls go to localhost:$MOTO_PORT in server mode.
            "MOTO_PORT": str(moto_port),
            "CASCADE_CLOCK_SHIFT_SECONDS": str(self.clock_shift_seconds),
            # The CRM stand-in listens on loopback; on AWS such a webhook URL is refused.
            "CASCADE_CRM_ALLOW_LOOPBACK": "1",
        })
        default_user_config["stepfunctions"]["execute_state_machine"] = True
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # Hundreds of execution environments share this process's clients (on Lambda each has its
        # own): a client's pool then closes an idle connection it has no room for. Expected here.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        lambdas.install()
        streams.install()
        moto_speed.install()
        moto_upkeep.install()
        faults.install_aws_faults()
        mail.install()
        faults.FAULTS.timeout_seconds = self.provider_timeout_seconds
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        # moto's answers too: headers and body are two writes; Nagle would hold the body ~40 ms.
        MotoRequestHandler.disable_nagle_algorithm = True
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        self.moto.start()
        self.aws_endpoint = f"http://127.0.0.1:{moto_port}"
        for standin in self.standins:
            standin.start()
        self.gateway = LoopbackServer(self._handle, self.port)
        self.port = self.gateway.port
        self.url = self.gateway.url
        self._deploy()
        self.gateway.start()
        for standin in self.standins:
            standin.connect(self)
        return self

    def stop(self) -> None:
        if self.deployed is not None:
            streams.stop(self.deployed.stream_mappings)
        self.gateway.stop()
        for standin in self.standins:
            standin.stop()
        self.moto.stop()

    def use_sms_provider(self, provider: str) -> None:
        """Switch SMS between SNS and Twilio, as redeploying with SmsProvider=<provider> would."""
        from cascade.channels import channel
        from cascade.settings import settings

        if provider not in ("sns", "twilio"):
            raise ValueError("sns or twilio")
        self.sms_provider = os.environ["SMS_PROVIDER"] = provider
        settings.cache_clear()
        channel.cache_clear()

    def _deploy(self) -> None:
        import boto3
        from botocore.config import Config

        sam = template.load()
        cfn = template.translate(sam, bucket=f"{self.stack_name}-artifacts")
        funcs = template.functions(sam)
        code_dirs = {logical: spec["code_dir"] for logical, spec in funcs.items()}
        code_dirs["CoreLayer"] = template.ROOT / "shared"
        params = {"EmailFrom": EMAIL_FROM, "TimeScale": str(self.time_scale), "SmsProvider": self.sms_provider,
                  "ProviderTimeoutSeconds": str(self.provider_timeout_seconds),
                  # A provider that keeps failing is skipped for 30 s here (300 s by default on AWS).
                  "CircuitCooldownSeconds": "30"}
        provider_secret: dict[str, str] = {}
        for standin in self.standins:
            params.update(standin.parameters())
            provider_secret.update(standin.secrets())
        params.update(self.extra_parameters)
        self.deployed = d = deploy(cfn, self.stack_name, REGION, params, code_dirs)
        for logical, spec in funcs.items():
            name = d.physical[logical]
            lambdas.REGISTRY[name] = lambdas.FunctionSpec(spec["code_dir"], spec["handler"])
        self.functions = {logical: d.physical[logical] for logical in funcs}
        lambdas.share_environment(d.function_env.values())
        for method, path, logical in template.http_routes(sam):
            pattern = re.compile("^" + re.sub(r"\{(\w+)\+?\}", r"(?P<\1>[^/]+)", path) + "$")
            self.routes.append((method, pattern, path, d.physical[logical]))
        # Secrets hold what an operator would put there after deploying.
        sm = boto3.client("secretsmanager", region_name=REGION)
        sm.put_secret_value(SecretId=d.outputs["ApiKeySecretArn"], SecretString=json.dumps({"api_key": self.api_key}))
        sm.put_secret_value(SecretId=d.outputs["ProviderSecretArn"], SecretString=json.dumps(provider_secret))
        boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=EMAIL_FROM)
        self.state_machine_arn = d.outputs["StateMachineArn"]
        # The gateway's own client (one for all requests; API Gateway waits up to 30 s).
        self.lambda_client = boto3.client("lambda", region_name=REGION, config=Config(
            read_timeout=30, retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=128))
        self.table_name = d.outputs["TableName"]

    # -- the gateway ----------------------------------------------------------------------------

    def _handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Any:
        if path.startswith("/local/"):
            return self._local(method, path, query, body)
        for route_method, pattern, route_path, function in self.routes:
            match = pattern.match(path)
            if match and route_method == method:
                # API Gateway passes path parameters URL-decoded ("a%20b" -> "a b").
                return self._invoke(function, f"{method} {route_path}", method, path, query, headers, body,
                                    {k: unquote(v) for k, v in match.groupdict().items()})
        allowed = sorted({route_method for route_method, pattern, _, _ in self.routes if pattern.match(path)})
        if allowed:
            status, answer_headers, payload = json_answer(405, {"error": "method not allowed", "details": [
                {"field": "method", "message": f"{path} takes {', '.join(allowed)}, not {method}"}]})
            return status, {**answer_headers, "allow": ", ".join(allowed)}, payload
        return json_answer(404, {"error": "not found", "details": [
            {"field": "path", "message": f"no route {path}"}]})

    def _invoke(self, function: str, route_key: str, method: str, path: str, query: str,
                headers: dict[str, str], body: bytes, path_params: dict[str, str]) -> Any:
        try:
            text, b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, b64 = base64.b64encode(body).decode(), True
        now = datetime.now(UTC)
        event = {
            "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": query,
            "headers": {**headers, "x-forwarded-proto": "http"},
            "queryStringParameters": dict(parse_qsl(query)) or None,
            "pathParameters": path_params or None,
            "requestContext": {
                "accountId": ACCOUNT, "apiId": "local", "domainName": headers.get("host", f"127.0.0.1:{self.port}"),
                "domainPrefix": "127", "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                                "sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent", "")},
                "requestId": str(uuid.uuid4()), "routeKey": route_key, "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"), "timeEpoch": int(now.timestamp() * 1000),
            },
            "body": text if body else None, "isBase64Encoded": b64,
        }
        resp = self.lambda_client.invoke(FunctionName=function, Payload=json.dumps(event))
        payload = json.loads(resp["Payload"].read() or b"null")
        if resp.get("FunctionError"):
            return json_answer(500, {"message": "Internal Server Error"})
        if not isinstance(payload, dict) or "statusCode" not in payload:
            return json_answer(200, payload)
        out = payload.get("body") or ""
        data = base64.b64decode(out) if payload.get("isBase64Encoded") else str(out).encode()
        return int(payload["statusCode"]), {k.lower(): str(v) for k, v in (payload.get("headers") or {}).items()}, data

    # -- local-only routes ----------------------------------------------------------------------

    def _local(self, method: str, path: str, query: str, body: bytes) -> Any:
        if path == "/local/info" and method == "GET":
            return json_answer(200, self.info())
        if path == "/local/crm":
            return self.standin("crm").local(method, query, body)
        if path == "/local/outbox" and method == "GET":
            wanted = dict(parse_qsl(query)).get("cascade_id")
            messages = [m for m in self.outbox() if not wanted or m["cascade_id"] == wanted]
            return json_answer(200, {"messages": messages})
        if path == "/local/faults" and method == "GET":
            return json_answer(200, {"faults": faults.FAULTS.snapshot()})
        if path == "/local/faults" and method == "DELETE":
            faults.FAULTS.clear()
            return json_answer(200, {"faults": {}})
        if path == "/local/faults" and method == "POST":
            return self._set_fault(body)
        if path == "/local/simulate" and method == "POST":
            try:
                request = json.loads(body or b"{}")
            except ValueError:
                return json_answer(400, {"error": "body is not valid JSON"})
            return self.simulate(request)
        return json_answer(404, {"error": "no such local route"})

    @staticmethod
    def _set_fault(body: bytes) -> Any:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return json_answer(400, {"error": "body is not valid JSON"})
        problems = []
        if not isinstance(request, dict):
            request = {}
            problems.append({"field": "body", "message": "must be an object"})
        if request.get("channel") not in faults.CHANNELS:
            problems.append({"field": "channel", "message": f"one of {', '.join(faults.CHANNELS)}"})
        if request.get("mode") not in faults.MODES:
            problems.append({"field": "mode", "message": f"one of {', '.join(faults.MODES)}"})
        count = request.get("count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            problems.append({"field": "count", "message": "a positive whole number, or absent for every call"})
        if problems:
            return json_answer(422, {"error": "invalid fault", "details": problems})
        faults.FAULTS.set(request["channel"], request["mode"], count)
        return json_answer(200, {"faults": faults.FAULTS.snapshot()})

    def info(self) -> dict[str, Any]:
        return {"aws_endpoint": self.aws_endpoint, "state_machine_arn": self.state_machine_arn,
                "time_scale": self.time_scale, "api_url": self.url, "table_name": self.table_name,
                "sms_provider": self.sms_provider, "clock_shift_seconds": self.clock_shift_seconds,
                **{f"{s.name}_api": s.url for s in self.standins if s.url}}

    def outbox(self) -> list[dict[str, Any]]:
        """Every message any channel sent, oldest first: the customers' inboxes and phones."""
        from moto.ses.models import ses_backends
        from moto.sns.models import sns_backends

        from cascade.store import CascadeStore

        store = CascadeStore(self.table_name)
        found: list[dict[str, Any]] = []
        for msg in list(ses_backends[ACCOUNT][REGION].sent_messages):
            to = ", ".join((getattr(msg, "destinations", {}) or {}).get("ToAddresses", []))
            text = re.sub(r"<br>\s*", "\n", getattr(msg, "body", ""))
            text = re.sub(r"<[^>]+>", "", text)
            found.append(self._entry(store, "email", msg.id, to, getattr(msg, "subject", None), text))
        for mid, (phone, text) in list(sns_backends[ACCOUNT][REGION].sms_messages.items()):
            found.append(self._entry(store, "sms", mid, phone, None, text))
        for standin in self.standins:
            for m in standin.outbox():
                self._carriers[m["provider_message_id"]] = standin
                found.append(self._entry(store, m["channel"], m["provider_message_id"], m["to"], m.get("subject"),
                                         m["text"]))
        found.sort(key=lambda m: m["sent_at"] or "")
        return found

    def _entry(self, store: Any, channel: str, pmid: str, to: str, subject: str | None, text: str) -> dict[str, Any]:
        import html

        # A message's cascade step never changes once recorded: look each one up once.
        ref = self._refs.get(pmid) or store.get_message(pmid, channel) or {}
        if ref:
            self._refs[pmid] = ref
        return {"channel": channel, "to": to, "subject": subject, "text": html.unescape(text).strip(),
                "provider_message_id": pmid, "cascade_id": ref.get("cascade_id"), "step": ref.get("step"),
                "sent_at": ref.get("sent_at")}

    def simulate(self, request: dict[str, Any]) -> Any:
        """Play the customer or the provider: emit its real event for a message, through the real
        webhook path (or open a binding deep link)."""
        if "open_link" in request:
            link, who = str(request["open_link"]), str(request.get("as", ""))
            for standin in self.standins:
                answer = standin.open_link(link, who)
                if answer is not None:
                    return answer
            return invalid("open_link", "not a binding link of any messenger here (t.me or viber://)")
        pmid, signal = str(request.get("provider_message_id", "")), request.get("signal")
        message = next((m for m in self.outbox() if m["provider_message_id"] == pmid), None)
        if message is None:
            return json_answer(404, {"error": f"no message {pmid!r} in the outbox"})
        channel = message["channel"]
        if signal == "clicked" and channel not in ("email", "push"):  # a push app reports its own taps
            tracked = re.search(r"https?://\S+/r/[\w-]+", message["text"])
            if not tracked:
                return json_answer(422, {"error": "the message carries no tracked link"})
            resp = httpx.get(tracked.group(0), follow_redirects=False, timeout=30)
            return json_answer(200, {"ok": resp.status_code == 302, "channel": channel, "signal": signal,
                                     "location": resp.headers.get("location")})
        carrier = self._carriers.get(pmid)  # filled by the outbox() call above
        if carrier is not None:
            return carrier.simulate(message, request)
        if channel == "email" and signal == "unsubscribed":  # the mail client's one-click unsubscribe
            return mail.one_click(message)
        if channel == "email":
            return self._ses_event(message, signal)
        if channel == "sms":
            if signal != "replied":
                return json_answer(422, {"error": f"SMS through SNS reports no {signal!r}; it can be replied or clicked"})
            return self._inbound_sms(message, request.get("text") or "YES")
        return json_answer(422, {"error": f"cannot simulate on {channel}"})

    def _ses_event(self, message: dict[str, Any], signal: str | None) -> Any:
        import boto3

        kinds = {"read": "Open", "clicked": "Click", "delivered": "Delivery", "failed": "Bounce",
                 "complained": "Complaint"}
        if signal not in kinds:
            return json_answer(422, {"error": f"SES reports no {signal!r}; use read, clicked, delivered, failed "
                                            "(a hard bounce), complained (or unsubscribed: the mail client's "
                                            "one-click)"})
        assert self.deployed is not None
        topic = next(iter(self.deployed.email_event_topics.values()))
        kind = kinds[signal]
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        event: dict[str, Any] = {"eventType": kind, "mail": {
            "timestamp": message["sent_at"] or now, "source": EMAIL_FROM, "sendingAccountId": ACCOUNT,
            "messageId": message["provider_message_id"], "destination": [message["to"]], "headersTruncated": False,
            "tags": {"ses:configuration-set": [next(iter(self.deployed.email_event_topics))]}}}
        if kind == "Open":
            event["open"] = {"ipAddress": "127.0.0.1", "timestamp": now, "userAgent": "local"}
        elif kind == "Click":
            link = re.search(r"https?://\S+", message["text"])
            event["click"] = {"ipAddress": "127.0.0.1", "timestamp": now, "userAgent": "local",
                              "link": link.group(0) if link else ""}
        elif kind == "Delivery":
            event["delivery"] = {"timestamp": now, "recipients": [message["to"]], "smtpResponse": "250 OK"}
        elif kind == "Complaint":
            event["complaint"] = {"complainedRecipients": [{"emailAddress": message["to"]}], "timestamp": now,
                                  "feedbackId": str(uuid.uuid4()), "complaintFeedbackType": "abuse"}
        else:
            event["bounce"] = {"bounceType": "Permanent", "bounceSubType": "General", "timestamp": now,
                               "bouncedRecipients": [{"emailAddress": message["to"]}]}
        boto3.client("sns", region_name=REGION).publish(TopicArn=topic, Message=json.dumps(event))
        return json_answer(200, {"ok": True, "channel": "email", "signal": signal})

    def _inbound_sms(self, message: dict[str, Any], text: str) -> Any:
        import boto3

        assert self.deployed is not None
        inbound = {"originationNumber": message["to"], "destinationNumber": "+12065550100",
                   "messageKeyword": "KEYWORD_" + ACCOUNT, "messageBody": text,
                   "inboundMessageId": str(uuid.uuid4()), "previousPublishedMessageId": message["provider_message_id"]}
        boto3.client("sns", region_name=REGION).publish(TopicArn=self.deployed.outputs["InboundSmsTopicArn"],
                                                        Message=json.dumps(inbound))
        return json_answer(200, {"ok": True, "channel": "sms", "signal": "replied"})


__all__ = ["LocalStack"]
