"""Binding messenger contacts: a bot cannot start a conversation, so the business gives the
customer a one-time deep link; opening it sends the bot ``/start <token>`` (Telegram) or a
``conversation_started`` with the token as context (Viber), and the chat or user id is stored on
the recipient for every later cascade."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote

from cascade import contacts, wording
from cascade.errors import FieldError
from cascade.observability import logger
from cascade.scenarios import CONTACT_FIELD
from cascade.settings import settings
from cascade.store import CascadeStore, default_store

LINK_TTL_SECONDS = 24 * 3600
BINDABLE = ("telegram", "viber")


class Bound(NamedTuple):
    recipient_id: str
    locale: str  # the language the bot confirms the binding in


def deep_link(recipient_id: str, channel: str, store: CascadeStore | None = None,
              locale: str | None = None) -> dict[str, Any]:
    if channel not in BINDABLE:
        raise FieldError("channel", f"binding links exist for {', '.join(BINDABLE)}")
    cfg = settings()
    if channel == "viber" and not cfg.viber_chat_uri:
        raise FieldError("channel", "the Viber bot's chat URI is not configured (ViberChatUri)")
    if channel == "telegram" and not cfg.telegram_bot_username:
        raise FieldError("channel", "the Telegram bot's username is not configured (TelegramBotUsername)")
    store = store or default_store()
    # 32 of [A-Za-z0-9_-]: fits Telegram's start parameter (up to 64 of those) and needs no escaping
    # in Viber's context parameter (a string passed back as is, limited only by the URL's length).
    token = secrets.token_urlsafe(24)
    expires_at = int(time.time()) + LINK_TTL_SECONDS
    ref = {"recipient_id": recipient_id, "channel": channel, **({"locale": locale} if locale else {})}
    store.put_binding_token(token, ref, expires_at)
    link = (f"viber://pa?chatURI={quote(cfg.viber_chat_uri, safe='')}&context={token}" if channel == "viber"
            else f"https://t.me/{cfg.telegram_bot_username}?start={token}")
    return {"link": link, "expires_at": datetime.fromtimestamp(expires_at, UTC).isoformat().replace("+00:00", "Z")}


def bind(channel: str, token: str, chat_id: str, store: CascadeStore | None = None,
         client_language: str | None = None) -> Bound | None:
    """The customer opened a binding link. Returns the recipient bound and the language to confirm
    it in, or None if the token is unknown, used already or expired."""
    store = store or default_store()
    ref = store.take_binding_token(token, int(time.time()))
    if ref is None or ref.get("channel") != channel:
        logger.info("binding refused", channel=channel)
        return None
    store.set_contact(str(ref["recipient_id"]), CONTACT_FIELD[channel], chat_id)
    contacts.bound(store, str(ref["recipient_id"]), channel)  # a blocked bot that is bound again works
    logger.info("contact bound", channel=channel, recipient_id=ref["recipient_id"])
    recipient_id = str(ref["recipient_id"])
    return Bound(recipient_id, wording.pick(ref.get("locale"), _running_locale(recipient_id, store), client_language))


def _running_locale(recipient_id: str, store: CascadeStore) -> str | None:
    """The locale of the recipient's latest running cascade (a link sent from inside a cascade)."""
    cascades = [store.get(str(item["cascade_id"])) for item in store.open_cascades(recipient_id)]
    found = sorted((c for c in cascades if c), key=lambda c: str(c.get("created_at") or ""), reverse=True)
    return next((c["recipient"].get("locale") for c in found if c["recipient"].get("locale")), None)


__all__ = ["BINDABLE", "Bound", "bind", "deep_link"]
