"""Mobile push through SNS platform endpoints (FCM and APNs behind one platform application).

A recipient's ``push_token`` (the device token the app got from FCM or APNs) becomes an SNS
platform endpoint; the notification goes out with one JSON message carrying a payload per
platform. SNS never reports whether a notification was opened: the app does, by calling
``POST /v1/signals {"cascade_id", "signal": "read"}`` with the cascade id it finds in the payload.
An endpoint that FCM/APNs told SNS is dead (app uninstalled, token expired) is disabled: that
recipient cannot be reached by push any more, so the step fails for good and the cascade moves on."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from cascade.channels.base import Channel, Outgoing, Sent, aws_send_error
from cascade.errors import PermanentSendError

if TYPE_CHECKING:
    from cascade.settings import Settings

# What SNS answers when an endpoint for this token exists with other attributes (e.g. it was
# disabled); the AWS guide on token management recommends taking the ARN from this message.
_EXISTING = re.compile(r"Endpoint (arn:[^ ]+) already exists with the same [Tt]oken")
_TITLE_MAX = 100


class PushChannel(Channel):
    name: ClassVar[str] = "push"
    provider: ClassVar[str] = "sns"
    # FCM and APNs take 4 KB per notification; a body this long is already more than a lock screen shows.
    max_length: ClassVar[int] = 1000

    def __init__(self, sns: Any, platform_application_arn: str) -> None:
        self.sns = sns
        self.platform_application_arn = platform_application_arn

    def send(self, message: Outgoing) -> Sent:
        if not self.platform_application_arn:
            raise PermanentSendError("push is not configured (PushPlatformApplicationArn)")
        endpoint = self.endpoint(message.to)
        try:
            resp = self.sns.publish(TargetArn=endpoint, MessageStructure="json", Message=payload(message))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "EndpointDisabled":
                raise PermanentSendError("push: endpoint disabled (app uninstalled or token expired)",
                                         invalid_contact="token_disabled") from exc
            raise aws_send_error(exc, "sns publish") from exc
        except BotoCoreError as exc:
            raise aws_send_error(exc, "sns publish") from exc
        return Sent(provider_message_id=str(resp["MessageId"]))

    def endpoint(self, token: str) -> str:
        """The platform endpoint of this device token, created on first use; a disabled one is final."""
        try:
            arn = str(self.sns.create_platform_endpoint(PlatformApplicationArn=self.platform_application_arn,
                                                        Token=token)["EndpointArn"])
        except ClientError as exc:
            found = _EXISTING.search(exc.response.get("Error", {}).get("Message", ""))
            if exc.response.get("Error", {}).get("Code") != "InvalidParameter" or not found:
                raise aws_send_error(exc, "sns create_platform_endpoint") from exc
            arn = found.group(1)
        except BotoCoreError as exc:
            raise aws_send_error(exc, "sns create_platform_endpoint") from exc
        try:
            attributes = self.sns.get_endpoint_attributes(EndpointArn=arn).get("Attributes", {})
        except (ClientError, BotoCoreError) as exc:
            raise aws_send_error(exc, "sns get_endpoint_attributes") from exc
        if str(attributes.get("Enabled", "true")).lower() == "false":
            raise PermanentSendError("push: endpoint disabled (app uninstalled or token expired)")
        return arn


def title(message: Outgoing) -> str:
    """The step's subject if its template has one, else the scenario's name."""
    scenario = message.context.get("scenario") or {}
    return (message.subject or str(scenario.get("name") or ""))[:_TITLE_MAX]


def payload(message: Outgoing) -> str:
    """One SNS message with a payload per platform; the app finds the cascade id in each.

    FCM data values must be strings. SNS maps this FCM payload to the FCM HTTP v1 API itself."""
    head, body = title(message), message.text
    fcm = {"notification": {"title": head, "body": body},
           "data": {"cascade_id": message.cascade_id, "step": str(message.step)}}
    apns = {"aps": {"alert": {"title": head, "body": body}, "sound": "default"},
            "cascade_id": message.cascade_id, "step": message.step}

    def enc(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    return enc({"default": body, "GCM": enc(fcm), "APNS": enc(apns), "APNS_SANDBOX": enc(apns)})


def build(cfg: Settings, provider_secret: dict[str, str]) -> PushChannel:
    from cascade.aws import client

    return PushChannel(client("sns"), cfg.push_platform_application_arn)


__all__ = ["PushChannel", "build", "payload", "title"]
