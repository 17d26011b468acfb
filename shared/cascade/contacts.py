"""Contact hygiene: which of a recipient's contacts still work, so the business can clean its base.

Per recipient and channel one item (``R#<recipient_id>`` / ``CONTACT#<channel>``) keeps:

- ``contact_hash`` and ``contact``: a hash of the value last seen and the value masked
  (``+7*******67``); the value itself is never stored here;
- **invalid**: a provider said this value cannot get our messages, for good: a hard bounce, an
  invalid number (Twilio 21211 and friends, or 30005/30006 on delivery), a number not on WhatsApp
  (131026), a bot blocked by the user, a Viber user who is not subscribed, a disabled push token.
  ``invalid_hash`` names the value; while an event brings that same value, steps on the channel
  are skipped at once with reason ``invalid_contact`` (an alternative channel of the step is tried
  first). An event with a different value lifts the mark: the hashes differ.
- **inactive**: ``sends`` counts the sends on the channel since the recipient last reacted there
  (read, click, reply, confirm), kept by the stream aggregator as each send and each reaction is
  counted; at ``InactiveAfterSends`` (default 5) the contact is inactive. Inactive contacts are
  still sent to: the business decides.
- an SES complaint (the customer marked an email as spam) records a refusal of marketing email
  (:mod:`cascade.consent`), and ``complaint_at`` says why.

Invalid and inactive items also carry ``hl`` (the state) and ``hlk`` (``<since>#<recipient>#<channel>``):
the sparse ``ByContactHealth`` index holds only them, so ``GET /v1/reports/contacts`` pages through
the contacts to clean without reading anybody else's. :func:`settle` keeps those keys in step
with the item."""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cascade.errors import FieldError
from cascade.observability import logger, mask
from cascade.planning import hashed
from cascade.scenarios import CONTACT_FIELD
from cascade.store import CascadeStore, default_store, now_iso

if TYPE_CHECKING:
    from cascade.channels.base import Signal

STATES = ("invalid", "inactive")
# Operator tasks go to a person at the call centre: not a contact that can go stale.
COUNTED = frozenset(CONTACT_FIELD) - {"operator"}
CSV_COLUMNS = ("recipient_id", "channel", "contact", "state", "reason", "since", "sends_without_reaction")
_INVALID = ("invalid_hash", "invalid_reason", "invalid_since")


def _inactive_after() -> int:
    from cascade.settings import settings

    return settings().inactive_after_sends


def value_of(recipient: dict[str, Any], channel: str) -> str | None:
    value = recipient.get(CONTACT_FIELD[channel])
    return str(value) if value else None


# -- before a step: which contacts are known to be invalid -------------------------------------------


@dataclass
class Screen:
    """The recipient's contact health as a step found it (one query)."""

    store: CascadeStore
    recipient: dict[str, Any]
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad: set[str] = field(default_factory=set)

    def invalid(self, channel: str) -> bool:
        return channel in self.bad

    def sent(self, channel: str, value: str) -> None:
        """A message went out on ``channel`` to ``value``: remember the value (hashed, masked) the
        first time, so the report can name it."""
        item = self.items.get(channel) or {}
        if channel in COUNTED and item.get("contact_hash") != hashed(value):
            self.store.update_contact(self.recipient["id"], channel,
                                      sets={"contact_hash": hashed(value), "contact": mask(value)})


def screen(store: CascadeStore, recipient: dict[str, Any], channels: list[str]) -> Screen:
    """Read the recipient's contact health for a step on ``channels``. A contact marked invalid
    whose value the event has changed is lifted; one with a new value starts counting afresh."""
    if not channels:  # nothing to send on: nothing to read
        return Screen(store, recipient)
    found = Screen(store, recipient, store.contact_health(str(recipient["id"])))
    for channel in channels:
        item, value = found.items.get(channel), value_of(recipient, channel)
        if item is None or value is None or not item.get("contact_hash"):
            continue
        digest = hashed(value)
        if item.get("invalid_hash") == digest:
            found.bad.add(channel)
        elif item.get("contact_hash") != digest or item.get("invalid_hash"):
            found.items[channel] = _replaced(store, str(recipient["id"]), channel, value, item) or item
    return found


def _replaced(store: CascadeStore, recipient_id: str, channel: str, value: str,
              item: dict[str, Any]) -> dict[str, Any] | None:
    """The event brings another value than the one on record: a fresh contact (not invalid, no
    sends without reaction yet)."""
    condition, values = ("invalid_hash = :old", {":old": item["invalid_hash"]}) if item.get("invalid_hash") else (
        "contact_hash = :old", {":old": item["contact_hash"]})
    new = store.update_contact(recipient_id, channel, sets={"contact_hash": hashed(value), "contact": mask(value),
                                                            "sends": 0},
                               removes=(*_INVALID, "inactive_since"), condition=condition, values=values)
    if new is not None:
        if item.get("invalid_hash"):
            logger.info("contact no longer invalid: the event brings another value", channel=channel)
        new = settle(store, recipient_id, channel, new)
    return new


# -- marking a contact invalid, from a send or a provider's event ---------------------------------------


def mark_invalid(store: CascadeStore, recipient_id: str, channel: str, value: str, reason: str) -> bool:
    """The provider refused ``value`` on ``channel`` for good. False if it was marked already."""
    if channel not in COUNTED:
        return False
    digest, at = hashed(value), now_iso()
    item = store.update_contact(
        recipient_id, channel,
        sets={"invalid_hash": digest, "invalid_reason": reason, "invalid_since": at, "contact_hash": digest,
              "contact": mask(value)},
        condition="attribute_not_exists(invalid_hash) OR invalid_hash <> :h", values={":h": digest})
    if item is None:
        return False
    logger.info("contact marked invalid", channel=channel, reason=reason, contact=mask(value))
    settle(store, recipient_id, channel, item)
    return True


def heard(sig: Signal, ref: dict[str, Any], store: CascadeStore) -> None:
    """A provider's event about a message sent (``ref``): a hard bounce, an unknown number or a
    number not on WhatsApp marks the contact invalid; an SES complaint refuses marketing email."""
    reason, complaint = sig.detail.get("invalid_contact"), sig.detail.get("complaint")
    if not reason and not complaint:
        return
    cascade = store.get(str(ref["cascade_id"]))
    if cascade is None:
        return
    recipient = cascade["recipient"]
    if reason:
        value = value_of(recipient, sig.channel)
        if value:
            mark_invalid(store, str(recipient["id"]), sig.channel, value, str(reason))
    if complaint:
        at = now_iso()
        store.set_consent(str(recipient["id"]), "email", "marketing", False, at)
        store.update_contact(str(recipient["id"]), "email", sets={"complaint_at": at})
        logger.info("complaint: marketing email refused", cascade_id=cascade["cascade_id"])


def bound(store: CascadeStore, recipient_id: str, channel: str) -> None:
    """The customer connected the chat again (a binding link): even with the same chat id, the
    bot is no longer blocked."""
    item = store.update_contact(recipient_id, channel, removes=_INVALID, condition="attribute_exists(invalid_hash)")
    if item is not None:
        logger.info("contact no longer invalid: bound again", channel=channel)
        settle(store, recipient_id, channel, item)


# -- the index keys -------------------------------------------------------------------------------


def settle(store: CascadeStore, recipient_id: str, channel: str, item: dict[str, Any] | None = None,
           at: str | None = None) -> dict[str, Any] | None:
    """Put the item's ``hl``/``hlk`` (and ``inactive_since``) in step with what it says: invalid
    first, else inactive once ``sends`` reaches ``InactiveAfterSends``, else neither. Each write is
    conditional on what was read; a lost race reads again (once)."""
    limit = _inactive_after()
    for _ in range(2):
        if item is None:
            item = store.contact_health(recipient_id).get(channel)
            if item is None:
                return None
        sends = int(item.get("sends") or 0)
        if item.get("invalid_hash"):
            want = ("invalid", f"{item['invalid_since']}#{recipient_id}#{channel}")
            condition, values = "invalid_since = :since", {":since": item["invalid_since"]}
            sets: dict[str, Any] = {}
            removes: tuple[str, ...] = ()
        elif sends >= limit:
            since = item.get("inactive_since") or at or now_iso()
            want = ("inactive", f"{since}#{recipient_id}#{channel}")
            condition = "attribute_not_exists(invalid_hash) AND sends >= :n"
            values, sets, removes = {":n": limit}, {"inactive_since": since}, ()
        else:
            want = None
            condition = "attribute_not_exists(invalid_hash) AND (attribute_not_exists(sends) OR sends < :n)"
            values, sets, removes = {":n": limit}, {}, ("hl", "hlk", "inactive_since")
        have = (item.get("hl"), item.get("hlk")) if item.get("hl") else None
        needs_since = want is not None and want[0] == "inactive"
        in_step = want == have and (
            (want is not None and want[0] == "invalid") or bool(item.get("inactive_since")) == needs_since)
        if in_step:
            return item
        if want is not None:
            sets.update(hl=want[0], hlk=want[1])
        new = store.update_contact(recipient_id, channel, sets=sets, removes=removes, condition=condition,
                                   values=values)
        if new is not None:
            if want is not None and want[0] == "inactive" and have is None:
                logger.info("contact inactive", channel=channel, sends=sends)
            return new
        item = None
    return None


# -- the customer card ------------------------------------------------------------------------------


def card(recipient_id: str, store: CascadeStore | None = None) -> list[dict[str, Any]]:
    """Each contact's health for the customer card: invalid, opted out, inactive or ok (in that
    order of weight), with the reason and since when."""
    store = store or default_store()
    items = store.contact_health(recipient_id)
    recorded = store.get_consent(recipient_id)
    channels = set(items) | {k.partition("#")[0] for k in recorded if k.partition("#")[0] in CONTACT_FIELD}
    limit = _inactive_after()
    found = []
    for channel in sorted(channels):
        item = items.get(channel) or {}
        refusal = recorded.get(f"{channel}#marketing")
        sends = int(item.get("sends") or 0)
        if item.get("invalid_hash"):
            health, reason, since = "invalid", item.get("invalid_reason"), item.get("invalid_since")
        elif recorded.get(f"{channel}#opted_out_at"):
            health, reason, since = ("opted_out", recorded.get(f"{channel}#opted_out_via"),
                                     recorded[f"{channel}#opted_out_at"])
        elif isinstance(refusal, dict) and refusal.get("granted") is False:
            reason = "complaint" if item.get("complaint_at") else "marketing_refused"
            health, since = "opted_out", refusal.get("at")
        elif sends >= limit:  # since: the Nth send (what settle() records a moment later)
            health, reason, since = "inactive", "no_reaction", item.get("inactive_since") or item.get("last_sent_at")
        else:
            health, reason, since = "ok", None, None
        if not item and health == "ok":
            continue  # a transactional grant alone says nothing about the contact
        found.append({"channel": channel, "health": health, "reason": reason, "since": since,
                      "contact": item.get("contact"), "sends_without_reaction": sends})
    return found


# -- the report -------------------------------------------------------------------------------------


def report(state: str | None, limit: int, cursor: str | None,
           store: CascadeStore | None = None) -> dict[str, Any]:
    """``GET /v1/reports/contacts``: invalid contacts, then inactive ones (or only ``state``),
    oldest first, ``limit`` at a time; ``next_cursor`` goes on from where this page ended."""
    store = store or default_store()
    states = [state] if state else list(STATES)
    start: dict[str, Any] | None = None
    if cursor:
        at_state, start = _decode(cursor)
        if at_state not in states:
            raise FieldError("cursor", "belongs to another state filter: repeat the request that gave it")
        states = states[states.index(at_state):]
    rows: list[dict[str, Any]] = []
    next_cursor = None
    for n, current in enumerate(states):
        page, last = store.contacts_in_state(current, limit - len(rows), start if n == 0 else None)
        rows.extend(_row(current, item) for item in page)
        if last:
            next_cursor = _encode(current, last)
            break
        if len(rows) >= limit:
            next_cursor = _encode(states[n + 1], None) if n + 1 < len(states) else None
            break
    return {"items": rows, "next_cursor": next_cursor}


def _row(state: str, item: dict[str, Any]) -> dict[str, Any]:
    invalid = state == "invalid"
    return {"recipient_id": item.get("recipient_id"), "channel": item.get("channel"), "contact": item.get("contact"),
            "state": state, "reason": item.get("invalid_reason") if invalid else "no_reaction",
            "since": item.get("invalid_since") if invalid else item.get("inactive_since"),
            "sends_without_reaction": int(item.get("sends") or 0)}


def _encode(state: str, key: dict[str, Any] | None) -> str:
    raw = json.dumps({"state": state, "key": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_KEY_FIELDS = {"pk", "sk", "hl", "hlk"}


def _decode(cursor: str) -> tuple[str, dict[str, Any] | None]:
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        state, key = doc["state"], doc["key"]
    except (ValueError, TypeError, KeyError):
        raise FieldError("cursor", "is not a cursor this API gave (use next_cursor as it came)") from None
    well_formed = key is None or (isinstance(key, dict) and set(key) == _KEY_FIELDS and all(
        isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) and 0 < len(v["S"]) <= 1024
        for v in key.values()))
    if state not in STATES or not well_formed:
        raise FieldError("cursor", "is not a cursor this API gave (use next_cursor as it came)")
    return state, key


def report_csv(found: dict[str, Any]) -> str:
    """The report's rows as CSV (a cell a spreadsheet would run as a formula is quoted with ')."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in found["items"]:
        writer.writerow([_cell(row.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


__all__ = ["CSV_COLUMNS", "STATES", "Screen", "bound", "card", "heard", "mark_invalid", "report", "report_csv", "screen",
           "settle"]
