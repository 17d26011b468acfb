"""The customer's phone app for push: SNS mobile push itself is moto's (platform application,
endpoints, publish); this stand-in is what sits behind it. It creates the platform application
the stack sends through, reads what SNS delivered to each device, and plays the app: a user who
opens the notification makes the app report ``read`` to ``POST /v1/signals`` with the cascade id
from the payload, as a real app would (SNS never learns about opens).

``uninstall(token)`` plays FCM/APNs telling SNS that a token is dead: the endpoint is disabled,
and the next push to that token fails for good."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx

from cascade.local.httpserver import json_answer
from cascade.local.standin import Answer, StandIn, invalid

APP_NAME = "cascade-local-app"
# What an app can report about a notification it showed.
APP_SIGNALS = ("read", "clicked")


class PushStandIn(StandIn):
    name: ClassVar[str] = "push"
    channels: ClassVar[tuple[str, ...]] = ("push",)
    serves_http: ClassVar[bool] = False

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.application_arn = ""

    @staticmethod
    def _sns() -> Any:
        import boto3

        from cascade.local.stack import REGION

        return boto3.client("sns", region_name=REGION)

    def start(self) -> None:
        # moto is up and boto3 points at it by now. An FCM application: the credential is the
        # server key (a service-account JSON for FCM v1), which moto does not check.
        self.application_arn = self._sns().create_platform_application(
            Name=APP_NAME, Platform="GCM", Attributes={"PlatformCredential": "local-fcm-server-key"},
        )["PlatformApplicationArn"]

    def parameters(self) -> dict[str, str]:
        return {"PushPlatformApplicationArn": self.application_arn}

    # -- what reached the phones ----------------------------------------------------------------

    def endpoints(self) -> list[Any]:
        """moto's platform endpoints of our application (each keeps the messages published to it)."""
        from moto.sns.models import sns_backends

        from cascade.local.deploy import ACCOUNT
        from cascade.local.stack import REGION

        backend = sns_backends[ACCOUNT][REGION]
        return [e for e in list(backend.platform_endpoints.values()) if e.application.arn == self.application_arn]

    def delivered(self) -> list[dict[str, Any]]:
        """Every notification as the app receives it: the device token, SNS message id and the FCM payload."""
        found = []
        for endpoint in self.endpoints():
            for message_id, raw in list(endpoint.messages.items()):
                found.append({"token": endpoint.token, "endpoint_arn": endpoint.arn, "message_id": message_id,
                              "fcm": fcm_payload(raw), "raw": raw})
        return found

    def outbox(self) -> list[dict[str, Any]]:
        return [{"channel": "push", "provider_message_id": d["message_id"], "to": d["token"],
                 "subject": d["fcm"].get("notification", {}).get("title"),
                 "text": d["fcm"].get("notification", {}).get("body", "")} for d in self.delivered()]

    # -- the app --------------------------------------------------------------------------------

    def simulate(self, message: dict[str, Any], request: dict[str, Any]) -> Answer:
        signal = request.get("signal")
        if signal not in APP_SIGNALS:
            return invalid("signal", f"a push app reports {' or '.join(APP_SIGNALS)} (the user opened or "
                                     f"tapped the notification), not {signal!r}")
        try:
            resp = self.open_notification(message["provider_message_id"], str(signal))
        except LookupError as exc:
            return invalid("provider_message_id", str(exc))
        return json_answer(200 if resp.status_code == 200 else 502,
                           {"ok": resp.status_code == 200, "channel": "push", "signal": signal})

    def open_notification(self, message_id: str, signal: str = "read") -> httpx.Response:
        """The user opens (``read``) or taps through (``clicked``) a notification: the app tells the
        business's API, naming the cascade from the notification's data."""
        shown = next((d for d in self.delivered() if d["message_id"] == message_id), None)
        if shown is None:
            raise LookupError("no such notification reached a device")
        cascade_id = (shown["fcm"].get("data") or {}).get("cascade_id")
        if not cascade_id:
            raise LookupError("the notification carries no cascade_id in its data")
        return httpx.post(f"{self.stack.url}/v1/signals", json={"cascade_id": cascade_id, "signal": signal},
                          headers={"Authorization": f"Bearer {self.stack.api_key}"}, timeout=30)

    def uninstall(self, token: str) -> None:
        """FCM/APNs report the token as unregistered: SNS disables the device's endpoint."""
        sns = self._sns()
        resp = sns.list_endpoints_by_platform_application(PlatformApplicationArn=self.application_arn)
        for endpoint in resp.get("Endpoints", []):
            if endpoint.get("Attributes", {}).get("Token") == token:
                sns.set_endpoint_attributes(EndpointArn=endpoint["EndpointArn"], Attributes={"Enabled": "false"})
                return
        # Never registered yet: the device token is dead before the first push.
        arn = sns.create_platform_endpoint(PlatformApplicationArn=self.application_arn, Token=token)["EndpointArn"]
        sns.set_endpoint_attributes(EndpointArn=arn, Attributes={"Enabled": "false"})


def fcm_payload(raw: str) -> dict[str, Any]:
    """The FCM part of a published SNS message (``MessageStructure=json``); a plain one is its own body."""
    body = raw
    try:
        envelope = json.loads(raw)
        if isinstance(envelope, dict):
            fcm = json.loads(envelope["GCM"]) if "GCM" in envelope else None
            if isinstance(fcm, dict):
                return fcm
            body = str(envelope.get("default", raw))
    except (ValueError, TypeError):
        pass
    return {"notification": {"title": None, "body": body}, "data": {}}


__all__ = ["APP_SIGNALS", "PushStandIn", "fcm_payload"]
