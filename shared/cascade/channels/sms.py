"""SMS through SNS Publish (transactional). Replies arrive as two-way SMS events on an SNS topic."""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from cascade.channels.base import Channel, Outgoing, Sent, Signal, aws_send_error


class SmsChannel(Channel):
    name: ClassVar[str] = "sms"
    provider: ClassVar[str] = "sns"
    max_length: ClassVar[int] = 1600  # SNS refuses longer messages

    def __init__(self, sns: Any, sender_id: str | None = None) -> None:
        self.sns = sns
        self.sender_id = sender_id

    def send(self, message: Outgoing) -> Sent:
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        if self.sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": self.sender_id}
        try:
            resp = self.sns.publish(PhoneNumber=message.to, Message=message.text, MessageAttributes=attributes)
        except (ClientError, BotoCoreError) as exc:
            raise aws_send_error(exc, "sns") from exc
        return Sent(provider_message_id=resp["MessageId"])


def parse_inbound_sms(event: dict[str, Any]) -> Signal | None:
    """A two-way SMS inbound message (AWS End User Messaging / Pinpoint format) → ``replied``."""
    body = event.get("messageBody")
    if body is None or "originationNumber" not in event:
        return None
    return Signal(channel="sms", signal="replied", provider_message_id=event.get("previousPublishedMessageId"),
                  chat_id=event.get("originationNumber"), text=str(body))


__all__ = ["SmsChannel", "parse_inbound_sms"]
