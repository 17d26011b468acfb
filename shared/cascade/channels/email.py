"""Email through SES v2 with a configuration set; opens and clicks come back as SES events via SNS.
Every email carries a one-click unsubscribe (``List-Unsubscribe`` + ``List-Unsubscribe-Post``, RFC 8058)."""

from __future__ import annotations

import dataclasses
import html
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from cascade.channels.base import Channel, Outgoing, Sent, Signal, aws_send_error
from cascade.errors import PermanentSendError
from cascade.rendering import URL

# SES event type → our signal. Send/DeliveryDelay/RenderingFailure carry nothing a cascade needs.
_EVENTS = {"Open": "read", "Click": "clicked", "Delivery": "delivered", "Bounce": "failed",
           "Complaint": "failed", "Reject": "failed"}


def to_html(text: str) -> str:
    """Plain text → minimal HTML (links clickable). SES adds its open pixel to the HTML part."""
    out = []
    pos = 0
    for m in URL.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        url = html.escape(m.group(0), quote=True)
        out.append(f'<a href="{url}">{url}</a>')
        pos = m.end()
    out.append(html.escape(text[pos:]))
    body = "".join(out).strip().replace("\n", "<br>\n")
    return f'<!doctype html><html><body style="font-family:sans-serif">{body}</body></html>'


class EmailChannel(Channel):
    name: ClassVar[str] = "email"
    provider: ClassVar[str] = "ses"
    max_length: ClassVar[int] = 100_000

    def __init__(self, sesv2: Any, from_address: str, configuration_set: str | None) -> None:
        self.ses = sesv2
        self.from_address = from_address
        self.configuration_set = configuration_set

    def prepare(self, message: Outgoing, store: Any) -> Outgoing:
        """Give the email its own unsubscribe link (stored once, reused by retries)."""
        from cascade import consent

        recipient_id = (message.context.get("recipient") or {}).get("id")
        if not message.api_base or not recipient_id:
            return message
        url = consent.unsubscribe_link(message.api_base, str(recipient_id), message.cascade_id, message.step,
                                       message.locale, store)
        return dataclasses.replace(message, context={**message.context, "unsubscribe_url": url})

    def send(self, message: Outgoing) -> Sent:
        if not self.from_address:
            raise PermanentSendError("email: EMAIL_FROM is not configured")
        request: dict[str, Any] = {
            "FromEmailAddress": self.from_address,
            "Destination": {"ToAddresses": [message.to]},
            "Content": {"Simple": {
                "Subject": {"Data": message.subject or "", "Charset": "UTF-8"},
                "Body": {"Text": {"Data": message.text, "Charset": "UTF-8"},
                         "Html": {"Data": message.html or to_html(message.text), "Charset": "UTF-8"}},
            }},
            "EmailTags": [{"Name": "cascade_id", "Value": message.cascade_id},
                          {"Name": "step", "Value": str(message.step)}],
        }
        if message.context.get("unsubscribe_url"):
            # Mail clients show an "Unsubscribe" button and POST "List-Unsubscribe=One-Click" to the URL.
            request["Content"]["Simple"]["Headers"] = [
                {"Name": "List-Unsubscribe", "Value": f"<{message.context['unsubscribe_url']}>"},
                {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
            ]
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            resp = self.ses.send_email(**request)
        except (ClientError, BotoCoreError) as exc:
            raise aws_send_error(exc, "ses") from exc
        return Sent(provider_message_id=resp["MessageId"])


def parse_ses_event(event: dict[str, Any]) -> Signal | None:
    """An SES event (configuration-set event publishing, as delivered by SNS) → a signal."""
    kind = event.get("eventType") or event.get("notificationType")
    mail = event.get("mail") or {}
    message_id = mail.get("messageId")
    signal = _EVENTS.get(str(kind))
    if not message_id or not signal:
        return None
    if kind == "Bounce" and (event.get("bounce") or {}).get("bounceType") == "Transient":
        return None  # soft bounce: SES keeps trying
    detail: dict[str, Any] = {"event": kind}
    if kind == "Click":
        detail["link"] = (event.get("click") or {}).get("link")
    elif kind == "Bounce":  # a permanent bounce: the address does not exist or refuses us for good
        detail["invalid_contact"] = "hard_bounce"
    elif kind == "Complaint":  # marked as spam: no more marketing email (SES watches the complaint rate)
        detail["complaint"] = True
    return Signal(channel="email", signal=signal, provider_message_id=message_id, detail=detail)


__all__ = ["EmailChannel", "parse_ses_event", "to_html"]
