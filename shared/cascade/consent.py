"""Consent and opt-out per recipient, channel and purpose.

What is recorded (one item per recipient, see :mod:`cascade.store`): per channel, a grant or a
refusal per purpose (``PUT /v1/recipients/{id}/consent``) and an opt-out for every purpose (a
STOP reply, the email's one-click unsubscribe). :func:`check` rules on each step about to go out,
in this order:

1. the recipient opted out of the channel → ``skip`` ``opted_out``, whatever the event says;
2. a recorded refusal of the channel for the scenario's purpose → ``skip`` ``opted_out``;
3. a recorded grant → the step may go;
4. otherwise the consent the event carried (``recipient.consent``: ``{"marketing": true}`` for
   every channel, or a list of channels): marketing goes only with it (else ``no_consent``);
   transactional goes unless the event withholds it (``false``, or a list without the channel).

An opt-out arriving mid-cascade is seen by the next step (the check reads the store each time);
a cascade waiting on a message of that channel moves on at once (:func:`opt_out`)."""

from __future__ import annotations

import html
import secrets
from typing import TYPE_CHECKING, Any

from cascade import aws, facts
from cascade.errors import FieldError
from cascade.models import ConsentIn, ConsentView
from cascade.observability import logger
from cascade.policy import Decision
from cascade.scenarios import CHANNELS
from cascade.store import CascadeStore, default_store, now_iso

if TYPE_CHECKING:
    from cascade.channels.base import Signal
    from cascade.policy import StepContext

PURPOSES = ("transactional", "marketing")
# A reply that is one of these words (any case, surrounding spaces and a final "." or "!"
# ignored) opts out of the channel it came on. "/stop" is Telegram's command.
STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "стоп", "отписаться", "/stop"})
# Channels on which customers type replies.
# A reply that is one of these lifts the channel's opt-out (Twilio's own START keywords are also
# marked ``OptOutType=START``). Recorded grants and refusals stay as they were.
START_WORDS = frozenset({"start", "unstop", "старт"})
TEXT_CHANNELS = ("sms", "whatsapp", "viber", "telegram")
# Steps whose message the workflow is still waiting on.
WAITING = ("sent", "delivered", "read", "clicked", "replied", "confirmed")
TEXT_CHARS = 500


# -- the policy -------------------------------------------------------------------------------


def check(ctx: StepContext) -> Decision | None:
    """May this step go out on its channel for its scenario's purpose?"""
    reason = ruling(ctx.store.get_consent(ctx.recipient["id"]), ctx.channel, ctx.scenario.purpose,
                    ctx.recipient.get("consent"))
    return Decision("skip", reason) if reason else None


def ruling(recorded: dict[str, Any], channel: str, purpose: str, given: dict[str, Any] | None) -> str | None:
    """Why a message of ``purpose`` may not go on ``channel`` (None: it may). ``recorded`` is the
    recipient's stored item, ``given`` the event's ``recipient.consent``."""
    if recorded.get(f"{channel}#opted_out_at"):
        return "opted_out"
    stored = recorded.get(f"{channel}#{purpose}")
    if isinstance(stored, dict) and stored.get("granted") is False:
        return "opted_out"
    if isinstance(stored, dict) and stored.get("granted") is True:
        return None
    held = (given or {}).get(purpose)
    if held is None:
        return "no_consent" if purpose == "marketing" else None
    if held is True or (isinstance(held, list) and channel in held):
        return None
    return "no_consent"


# -- recording consent ------------------------------------------------------------------------


def view(recipient_id: str, store: CascadeStore | None = None) -> ConsentView:
    """What is recorded for the recipient, per channel."""
    store = store or default_store()
    _check_id(recipient_id)
    channels: dict[str, dict[str, Any]] = {}
    for key, value in store.get_consent(recipient_id).items():
        channel, sep, what = key.partition("#")
        if not sep or channel not in CHANNELS:
            continue
        entry = channels.setdefault(channel, {"opted_out": False})
        if what == "opted_out_at":
            entry.update(opted_out=True, opted_out_at=value)
        elif what == "opted_out_via":
            entry["opted_out_via"] = value
        elif what in PURPOSES and isinstance(value, dict):
            entry[what] = value
    return ConsentView.model_validate({"recipient_id": recipient_id, "channels": dict(sorted(channels.items()))})


def record(recipient_id: str, body: ConsentIn, store: CascadeStore | None = None) -> ConsentView:
    """``PUT /v1/recipients/{id}/consent``: a grant (which also lifts the channel's opt-out) or a
    refusal, effective for the next step of every cascade."""
    store = store or default_store()
    _check_id(recipient_id)
    store.set_consent(recipient_id, body.channel, body.purpose, body.granted, now_iso())
    logger.info("consent recorded", channel=body.channel, purpose=body.purpose, granted=body.granted)
    return view(recipient_id, store)


def _check_id(recipient_id: str) -> None:
    if not 1 <= len(recipient_id) <= 128:
        raise FieldError("recipient_id", "must be 1 to 128 characters")


# -- opting out ---------------------------------------------------------------------------------


def is_stop(text: str | None) -> bool:
    """Whether a reply says STOP (СТОП, STOPALL, UNSUBSCRIBE, ОТПИСАТЬСЯ, Telegram's /stop)."""
    if not text:
        return False
    word = text.strip().rstrip(".!").strip().casefold()
    if word.startswith("/stop@"):  # /stop@SomeBot: the command addressed to the bot by name
        word = "/stop"
    return word in STOP_WORDS


def stops(sig: Signal) -> bool:
    """Whether a provider's signal is the customer opting out by reply (Twilio also marks its own
    opt-out keywords, CANCEL, END, QUIT..., with ``OptOutType=STOP``)."""
    if sig.signal != "replied" or sig.channel not in TEXT_CHANNELS:
        return False
    return is_stop(sig.text) or sig.detail.get("opt_out") == "STOP"


def starts(sig: Signal) -> bool:
    """Whether a provider's signal is the customer opting back in by reply (START, UNSTOP, СТАРТ)."""
    if sig.signal != "replied" or sig.channel not in TEXT_CHANNELS:
        return False
    word = (sig.text or "").strip().rstrip(".!").strip().casefold()
    return word in START_WORDS or sig.detail.get("opt_out") == "START"


def start_reply(sig: Signal, ref: dict[str, Any], store: CascadeStore) -> None:
    """The customer replied START: the channel's opt-out is lifted for later steps. The reply is
    not a success reply to the message it answered."""
    cascade = store.get(str(ref["cascade_id"]))
    if cascade is None:
        return
    store.clear_opt_out(str(ref.get("recipient_id") or cascade["recipient"]["id"]), sig.channel, now_iso())
    logger.info("opted back in", channel=sig.channel, via="reply", cascade_id=cascade["cascade_id"])


def stop_reply(sig: Signal, ref: dict[str, Any], store: CascadeStore) -> None:
    """The customer replied STOP to the message ``ref`` names: the step keeps its delivery status
    (a reply proves nothing failed) and shows the reply with reason ``opted_out``; it is not a
    success reply. The recipient is opted out of that channel."""
    cascade = store.get(str(ref["cascade_id"]))
    if cascade is None:
        return
    opt_out(str(ref.get("recipient_id") or cascade["recipient"]["id"]), sig.channel, "reply", store,
            cascade=cascade, step=int(ref["step"]), text=(sig.text or "").strip()[:TEXT_CHARS] or None,
            provider_message_id=ref.get("provider_message_id"))


def acknowledgement(sig: Signal, cascade_id: str | None, store: CascadeStore | None = None) -> str | None:
    """What a bot answers in the chat to a STOP (or a START) it just applied: the change confirmed,
    in the language of the cascade the reply belongs to. None for any other signal."""
    from cascade import wording
    from cascade.scenario_store import of_cascade

    store = store or default_store()
    key = "unsubscribed" if stops(sig) else "resubscribed" if starts(sig) else None
    cascade = store.get(cascade_id) if key and cascade_id else None
    if key is None or cascade is None:
        return None
    default = of_cascade(cascade, store).default_locale
    return wording.say(key, wording.pick(cascade["recipient"].get("locale"), default))


def opt_out(recipient_id: str, channel: str, via: str, store: CascadeStore | None = None, *,
            cascade: dict[str, Any] | None = None, step: int | None = None, text: str | None = None,
            provider_message_id: str | None = None) -> list[str]:
    """Record the recipient's opt-out of ``channel`` (every purpose, until consent is granted
    again). The message it answered (``cascade``, ``step``) keeps its delivery status and shows
    reason ``opted_out`` (and the reply ``text``), as does the timeline. Returns the cascades that
    were waiting on a message of that channel and now move on at once."""
    store = store or default_store()
    at = now_iso()
    store.set_opt_out(recipient_id, channel, via, at)
    if cascade is not None and step is not None:
        status = cascade["steps"][step]["status"]
        store.set_step(cascade["cascade_id"], step, status=status, only_from=(status,), reason="opted_out",
                       reply=text)
        store.put_touch(recipient_id, facts.touch(cascade, step, channel, "signal", "opted_out", at=at,
                                                  provider_message_id=provider_message_id, text=text))
    logger.info("opted out", channel=channel, via=via, cascade_id=cascade["cascade_id"] if cascade else None)
    return move_on(recipient_id, channel, store)


def move_on(recipient_id: str, channel: str, store: CascadeStore) -> list[str]:
    """Escalate every running cascade of the recipient that waits on a message of ``channel``:
    the customer will not answer there, and the next step is checked again."""
    moved = []
    for item in store.open_cascades(recipient_id):
        cascade = store.get(str(item["cascade_id"]))
        if cascade is None or cascade["status"] != "running":
            continue
        index, token = cascade.get("current_step"), cascade.get("task_token")
        if index is None or not token:
            continue
        current = cascade["steps"][int(index)]
        if current["channel"] == channel and current["status"] in WAITING and aws.escalate(token, "opted_out"):
            logger.info("opt-out moves the cascade on", cascade_id=cascade["cascade_id"], step=index)
            moved.append(str(cascade["cascade_id"]))
    return moved


# -- the email's one-click unsubscribe (RFC 8058) -------------------------------------------------


def unsubscribe_link(api_base: str, recipient_id: str, cascade_id: str, step: int, locale: str,
                     store: CascadeStore) -> str:
    """A ``List-Unsubscribe`` URL for one email: a random token that names the recipient."""
    token = secrets.token_urlsafe(24)
    store.put_unsubscribe_token(token, {"recipient_id": recipient_id, "channel": "email", "cascade_id": cascade_id,
                                        "step": step, "locale": locale})
    return f"{api_base.rstrip('/')}/u/{token}"


_PAGE = {
    "en": ("Unsubscribe", "Stop emails from us to this address?", "Unsubscribe",
           "You are unsubscribed: we will not email you any more.", "This link is not valid or has expired."),
    "ru": ("Отписаться", "Больше не присылать вам письма?", "Отписаться",
           "Вы отписались: писем от нас больше не будет.", "Ссылка недействительна или устарела."),
    "uk": ("Відписатися", "Більше не надсилати вам листи?", "Відписатися",
           "Ви відписалися: листів від нас більше не буде.", "Посилання недійсне або застаріле."),
    "kk": ("Жазылымнан бас тарту", "Бұдан былай сізге хат жібермейік пе?", "Жазылымнан бас тарту",
           "Сіз жазылымнан бас тарттыңыз: бізден хат енді келмейді.", "Сілтеме жарамсыз немесе мерзімі өткен."),
}


def _page(locale: str, body: str, title: str) -> str:
    return (f'<!doctype html><html lang="{html.escape(locale)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width"><title>{html.escape(title)}</title></head>'
            f'<body style="font-family:sans-serif">{body}</body></html>')


def unsubscribe_answer(method: str, token: str, store: CascadeStore | None = None) -> dict[str, Any]:
    """``GET /u/{token}``: a page with a button (nothing changes: mail scanners open links).
    ``POST /u/{token}``: the mail client's one-click request (``List-Unsubscribe=One-Click``) or
    the button: the email opt-out is recorded; answering again is harmless."""
    store = store or default_store()
    ref = store.get_unsubscribe_token(token) if 16 <= len(token) <= 64 else None
    locale = str((ref or {}).get("locale") or "en")
    title, question, button, done, gone = _PAGE.get(locale) or _PAGE["en"]
    if ref is None:
        return _html(404, _page(locale, f"<p>{html.escape(gone)}</p>", title))
    if method == "GET":
        form = (f"<p>{html.escape(question)}</p><form method=\"post\">"
                '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                f"<button type=\"submit\">{html.escape(button)}</button></form>")
        return _html(200, _page(locale, form, title))
    cascade = store.get(str(ref["cascade_id"]))
    opt_out(str(ref["recipient_id"]), str(ref.get("channel") or "email"), "unsubscribe_link", store,
            cascade=cascade, step=int(ref["step"]) if cascade else None)
    return _html(200, _page(locale, f"<p>{html.escape(done)}</p>", title))


def _html(status: int, body: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "text/html; charset=utf-8", "cache-control": "no-store"},
            "body": body}


__all__ = ["acknowledgement", "check", "is_stop", "opt_out", "record", "ruling", "stop_reply", "stops", "unsubscribe_answer",
           "unsubscribe_link", "view"]
