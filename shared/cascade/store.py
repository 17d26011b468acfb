"""DynamoDB access: one table, items keyed by ``pk``/``sk``.

=====================================  ==============================================
item                                   key
=====================================  ==============================================
cascade (state, steps, task token)     ``C#<cascade_id>`` / ``C``
open cascade of a recipient            ``R#<recipient_id>`` / ``OPEN#<cascade_id>``
running cascade of a trigger (dedupe)  ``DEDUPE#<hash of scenario, recipient, correlation value>`` / ``D``
touch (sent message or signal)         ``R#<recipient_id>`` / ``T#<at>#<cascade_id>#<step>#<n>``
provider message → cascade step        ``M#<provider_message_id>`` / ``M`` (the item names its channel)
tracked link                           ``L#<token>`` / ``L``
last message to a chat                 ``CHAT#<channel>#<chat_id>`` / ``LAST``
recipient's bound contacts             ``R#<recipient_id>`` / ``PROFILE``
one-time binding token                 ``BIND#<token>`` / ``BIND``
customer's last inbound message        ``IN#<channel>#<hashed contact>`` / ``LAST`` (WhatsApp's 24 h window)
a channel's circuit breaker            ``CIRCUIT#<channel>`` / ``CIRCUIT``
messages of a purpose on a local day   ``R#<recipient_id>`` / ``CAP#<purpose>#<yyyy-mm-dd>``
recipient's consent and opt-outs       ``R#<recipient_id>`` / ``CONSENT`` (attributes ``<channel>#<purpose>``,
                                       ``<channel>#opted_out_at``, ``<channel>#opted_out_via``)
email one-click unsubscribe token      ``U#<token>`` / ``U``
a saved scenario version (immutable)   ``SCN#<scenario_id>`` / ``V#<000001>``
a preset's text as cascades used it    ``SCN#<scenario_id>`` / ``P#<content hash>``
stored scenarios: id → head version    ``SCENARIOS`` / ``INDEX`` (cascade.scenario_store)
the CRM's webhook (url, sealed secret) ``WEBHOOK`` / ``CONFIG`` (cascade.outbound)
report counters of a scenario's day    ``AGG#<scenario_id>#<shard>`` / ``D#<yyyy-mm-dd>`` (cascade.aggregate;
                                       before shards: ``AGG#<scenario_id>``, still read)
"this fact was counted" (3 days)       ``AGGDONE#<what>`` / ``D``
channels a recipient reacts on         ``R#<recipient_id>`` / ``REACTS``
a contact's health on one channel      ``R#<recipient_id>`` / ``CONTACT#<channel>`` (cascade.contacts; invalid or
                                       inactive ones also carry ``hl``/``hlk``: the ``ByContactHealth`` index)
=====================================  ==============================================

Cascades and touches also carry ``sd`` = ``<scenario>#<start day>`` and ``sdk`` (``C#…`` or
``T#…``): the ``ByScenarioDay`` index lists a scenario's cascades and facts by day.

Every change that decides whether a message may go out is a conditional write, so a stop and
a timer that fire together can never both win.
"""

from __future__ import annotations

import time
import zlib
from typing import Any, Literal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from cascade.aws import client as aws_client
from cascade.hot_cache import HOT

_ser = TypeSerializer()
_de = TypeDeserializer()

# A signal may only move a step forward along this order.
STEP_RANK = {"pending": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4, "clicked": 5, "replied": 6,
             "confirmed": 7}
KEEP_SECONDS = 180 * 24 * 3600
MARKER_SECONDS = 3 * 24 * 3600  # "counted" markers outlive the stream's 24 h of records
COUNTER_SHARDS = 8  # report counter items per scenario and day: see cascade.aggregate


def _dump(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in item.items() if v is not None}


def _load(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    plain = {k: _plain(_de.deserialize(v)) for k, v in item.items()}
    for index, step in enumerate(plain.get("steps") or ()):  # a cascade's steps: their index is their place
        if isinstance(step, dict):
            step.setdefault("index", index)
    return plain


def _plain(value: Any) -> Any:
    # Numbers come back as Decimal; everything we store as a number is an int.
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if type(value).__name__ == "Decimal":
        return int(value)
    return value


def stream_image(image: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stream record's ``Keys``, ``NewImage`` or ``OldImage`` as a plain item (None if absent)."""
    return _load(image)


def _failed_condition(exc: ClientError) -> bool:
    code = exc.response["Error"]["Code"]
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons") or []
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or not reasons
    return False


class CascadeStore:
    def __init__(self, table_name: str, dynamodb: Any | None = None, cache_seconds: float = 0.0,
                 counter_shards: int = COUNTER_SHARDS) -> None:
        self.table = table_name
        self._db = dynamodb
        self.cache_seconds = cache_seconds  # hot configuration items, kept per container (cascade.hot_cache)
        self.counter_shards = counter_shards

    @property
    def db(self) -> Any:
        if self._db is None:
            self._db = aws_client("dynamodb")
        return self._db

    # -- cascades -----------------------------------------------------------------------------

    def create(self, cascade: dict[str, Any], open_index: dict[str, Any], stale_holder: str | None = None) -> bool:
        """Write a new cascade and its open-index entry together. False if the id exists, or if the
        cascade's ``dedupe_key`` is held by another cascade (other than ``stale_holder``, an ended one)."""
        cid, rid = cascade["cascade_id"], cascade["recipient"]["id"]
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": _dump({"pk": f"C#{cid}", "sk": "C", **cascade}),
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": self.table, "Item": _dump({"pk": f"R#{rid}", "sk": f"OPEN#{cid}", **open_index})}},
        ]
        if cascade.get("dedupe_key"):
            free = "attribute_not_exists(pk)" + (" OR cascade_id = :stale" if stale_holder else "")
            items.append({"Put": {"TableName": self.table, "ConditionExpression": free,
                                  "Item": _dump({"pk": cascade["dedupe_key"], "sk": "D", "cascade_id": cid}),
                                  **({"ExpressionAttributeValues": _dump({":stale": stale_holder})}
                                     if stale_holder else {})}})
        try:
            self.db.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def get(self, cascade_id: str) -> dict[str, Any] | None:
        resp = self.db.get_item(TableName=self.table, Key=_dump({"pk": f"C#{cascade_id}", "sk": "C"}),
                                ConsistentRead=True)
        return _load(resp.get("Item"))

    def discard(self, cascade_id: str, recipient_id: str, dedupe_key: str | None = None) -> None:
        """Undo :meth:`create` when the workflow could not be started."""
        self.db.transact_write_items(TransactItems=[
            {"Delete": {"TableName": self.table, "Key": _dump({"pk": f"C#{cascade_id}", "sk": "C"})}},
            {"Delete": {"TableName": self.table, "Key": _dump({"pk": f"R#{recipient_id}", "sk": f"OPEN#{cascade_id}"})}},
        ])
        self.release_dedupe(dedupe_key, cascade_id)

    def dedupe_holder(self, dedupe_key: str) -> str | None:
        """The cascade that holds a dedupe key (the running cascade of that trigger), if any."""
        resp = self.db.get_item(TableName=self.table, Key=_dump({"pk": dedupe_key, "sk": "D"}), ConsistentRead=True)
        item = _load(resp.get("Item"))
        return str(item["cascade_id"]) if item else None

    def release_dedupe(self, dedupe_key: str | None, cascade_id: str) -> None:
        """Free a dedupe key when its cascade ends (only if that cascade still holds it)."""
        if not dedupe_key:
            return
        try:
            self.db.delete_item(TableName=self.table, Key=_dump({"pk": dedupe_key, "sk": "D"}),
                                ConditionExpression="cascade_id = :cid",
                                ExpressionAttributeValues=_dump({":cid": cascade_id}))
        except ClientError as exc:
            if not _failed_condition(exc):
                raise

    def claim_step(self, cascade_id: str, index: int, token: str, now: str,
                   channel: str) -> Literal["claimed", "stopped"]:
        """Take step ``index`` for sending on ``channel`` (its own, or an alternative): only while
        the cascade runs and the step is pending."""
        try:
            self.db.update_item(
                TableName=self.table,
                Key=_dump({"pk": f"C#{cascade_id}", "sk": "C"}),
                # A deferred step that goes out now keeps no stale deferral.
                UpdateExpression=(f"SET steps[{index}].#st = :sending, steps[{index}].#ch = :ch, task_token = :tok, "
                                  f"current_step = :i, updated_at = :now REMOVE steps[{index}].reason, "
                                  f"steps[{index}].not_before"),
                ConditionExpression=f"#status = :running AND steps[{index}].#st IN (:pending, :deferred)",
                ExpressionAttributeNames={"#st": "status", "#status": "status", "#ch": "channel"},
                ExpressionAttributeValues=_dump({":sending": "sending", ":tok": token, ":i": index, ":now": now,
                                                 ":running": "running", ":pending": "pending", ":ch": channel,
                                                 ":deferred": "deferred"}),
            )
        except ClientError as exc:
            if _failed_condition(exc):
                return "stopped"
            raise
        return "claimed"

    def set_step(self, cascade_id: str, index: int, *, status: str, only_from: tuple[str, ...] = (),
                 drop: tuple[str, ...] = (), **fields: Any) -> bool:
        """Set a step's status (and fields; ``drop``: fields to remove). With ``only_from``, only if
        its status is one of those."""
        names = {"#st": "status"}
        values: dict[str, Any] = {":new": status}
        sets = [f"steps[{index}].#st = :new"]
        for n, (key, value) in enumerate(fields.items()):
            if value is None:
                continue
            names[f"#f{n}"] = key
            values[f":f{n}"] = value
            sets.append(f"steps[{index}].#f{n} = :f{n}")
        removes = []
        for n, key in enumerate(drop):
            names[f"#d{n}"] = key
            removes.append(f"steps[{index}].#d{n}")
        kwargs: dict[str, Any] = {}
        if only_from:
            placeholders = []
            for n, old in enumerate(only_from):
                values[f":o{n}"] = old
                placeholders.append(f":o{n}")
            kwargs["ConditionExpression"] = f"steps[{index}].#st IN ({', '.join(placeholders)})"
        try:
            self.db.update_item(
                TableName=self.table, Key=_dump({"pk": f"C#{cascade_id}", "sk": "C"}),
                UpdateExpression="SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
                ExpressionAttributeNames=names, ExpressionAttributeValues=_dump(values), **kwargs,
            )
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def finish(self, cascade_id: str, status: str, reason: str | None, now: str,
               success_step: int | None = None) -> dict[str, Any] | None:
        """Move a running cascade to its final status (``success_step``: the step whose signal was
        the success, for reports). Steps that never ran (``pending``, ``deferred``) end ``not_sent``
        with the stop reason (or the status) in the same write. Returns the cascade as it was, or
        None if it had already finished (somebody else won)."""
        values: dict[str, Any] = {":running": "running", ":status": status, ":now": now}
        sets = ["#status = :status", "finished_at = :now", "updated_at = :now"]
        if reason is not None:
            values[":reason"] = reason
            sets.append("stop_reason = :reason")
        if success_step is not None:
            values[":step"] = success_step
            sets.append("success_step = :step")
        for attempt in range(4):  # a step moved between our read and the write (deferred, skipped): again
            current = self.get(cascade_id)
            if current is None or current.get("status") != "running":
                return None
            waiting = [s["index"] for s in current.get("steps", []) if s.get("status") in ("pending", "deferred")
                       and attempt < 3]  # the last time, the cascade ends whatever its steps do
            step_values = {":not_sent": "not_sent", ":why": reason or status, ":pending": "pending",
                           ":deferred": "deferred"} if waiting else {}
            step_sets = [f"steps[{i}].#st = :not_sent, steps[{i}].#why = :why" for i in waiting]
            # A finished cascade keeps no sealed secret data (an OTP code): nothing is left to render.
            update = ("SET " + ", ".join(sets + step_sets) + " REMOVE task_token, secret_blob"
                      + "".join(f", steps[{i}].not_before" for i in waiting))
            condition = " AND ".join(["#status = :running"] + [f"steps[{i}].#st IN (:pending, :deferred)"
                                                               for i in waiting])
            names = {"#status": "status", **({"#st": "status", "#why": "reason"} if waiting else {})}
            try:
                resp = self.db.update_item(
                    TableName=self.table, Key=_dump({"pk": f"C#{cascade_id}", "sk": "C"}),
                    UpdateExpression=update, ConditionExpression=condition, ExpressionAttributeNames=names,
                    ExpressionAttributeValues=_dump({**values, **step_values}), ReturnValues="ALL_OLD",
                )
                break
            except ClientError as exc:
                if not _failed_condition(exc):
                    raise
        else:
            return None  # it kept failing with no step left to check: somebody else finished it
        old = _load(resp.get("Attributes"))
        if old:
            self.db.delete_item(TableName=self.table,
                                Key=_dump({"pk": f"R#{old['recipient']['id']}", "sk": f"OPEN#{cascade_id}"}))
            self.release_dedupe(old.get("dedupe_key"), cascade_id)
        return old

    def open_cascades(self, recipient_id: str) -> list[dict[str, Any]]:
        resp = self.db.query(
            TableName=self.table, KeyConditionExpression="pk = :pk AND begins_with(sk, :open)",
            ExpressionAttributeValues=_dump({":pk": f"R#{recipient_id}", ":open": "OPEN#"}),
        )
        return [i for i in (_load(x) for x in resp.get("Items", [])) if i]

    # -- messages, links, touches -------------------------------------------------------------

    def put_message(self, channel: str, provider_message_id: str, ref: dict[str, Any]) -> None:
        self._put({"pk": f"M#{provider_message_id}", "sk": "M", "channel": channel, **ref})

    def get_message(self, provider_message_id: str, channel: str | None = None) -> dict[str, Any] | None:
        """The cascade step a provider's message belongs to (only on ``channel``, when given)."""
        ref = self._get(f"M#{provider_message_id}", "M")
        return ref if ref and (channel is None or ref.get("channel") == channel) else None

    def put_link(self, token: str, ref: dict[str, Any]) -> None:
        self._put({"pk": f"L#{token}", "sk": "L", **ref})

    def get_link(self, token: str) -> dict[str, Any] | None:
        return self._get(f"L#{token}", "L")

    def put_last_chat_message(self, channel: str, chat_id: str, ref: dict[str, Any]) -> None:
        self._put({"pk": f"CHAT#{channel}#{chat_id}", "sk": "LAST", **ref})

    def get_last_chat_message(self, channel: str, chat_id: str) -> dict[str, Any] | None:
        return self._get(f"CHAT#{channel}#{chat_id}", "LAST")

    def put_last_inbound(self, channel: str, contact: str, at: int) -> None:
        """The customer (``contact``, hashed) wrote to us on ``channel`` at ``at`` (epoch seconds).
        Only moves forward: a late, out-of-order webhook never shortens the window."""
        try:
            self.db.put_item(
                TableName=self.table, Item=_dump({"pk": f"IN#{channel}#{contact}", "sk": "LAST", "at": at,
                                                  "expires_at": at + 7 * 24 * 3600}),
                ConditionExpression="attribute_not_exists(pk) OR #at < :at",
                ExpressionAttributeNames={"#at": "at"}, ExpressionAttributeValues=_dump({":at": at}),
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise

    def get_last_inbound(self, channel: str, contact: str) -> int | None:
        """When the customer last wrote to us on ``channel`` (epoch seconds), if ever."""
        item = self._get(f"IN#{channel}#{contact}", "LAST")
        return int(item["at"]) if item and "at" in item else None

    def claim_fallback(self, cascade_id: str, index: int, provider_message_id: str) -> bool:
        """Step ``index`` sends a replacement for ``provider_message_id`` (WhatsApp: the template after
        a free text refused outside the 24 h window): once per step, and only while the cascade runs
        and still waits on that step."""
        try:
            self.db.update_item(
                TableName=self.table, Key=_dump({"pk": f"C#{cascade_id}", "sk": "C"}),
                UpdateExpression=f"SET steps[{index}].fallback_from = :pmid",
                ConditionExpression=(f"#status = :running AND current_step = :i AND steps[{index}].#st IN "
                                     f"(:sending, :sent, :delivered) AND attribute_not_exists(steps[{index}].fallback_from)"),
                ExpressionAttributeNames={"#status": "status", "#st": "status"},
                ExpressionAttributeValues=_dump({":pmid": provider_message_id, ":running": "running", ":i": index,
                                                 ":sending": "sending", ":sent": "sent", ":delivered": "delivered"}),
            )
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def put_binding_token(self, token: str, ref: dict[str, Any], expires_at: int) -> None:
        self._put({"pk": f"BIND#{token}", "sk": "BIND", **ref, "expires_at": expires_at})

    def take_binding_token(self, token: str, now: int) -> dict[str, Any] | None:
        """Use a binding token up: None if it never existed, was used already, or has expired."""
        try:
            resp = self.db.delete_item(
                TableName=self.table, Key=_dump({"pk": f"BIND#{token}", "sk": "BIND"}),
                ConditionExpression="attribute_exists(pk) AND expires_at > :now",
                ExpressionAttributeValues=_dump({":now": now}), ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if _failed_condition(exc):
                return None
            raise
        return _load(resp.get("Attributes"))

    def set_contact(self, recipient_id: str, field: str, value: str) -> None:
        self.db.update_item(
            TableName=self.table, Key=_dump({"pk": f"R#{recipient_id}", "sk": "PROFILE"}),
            UpdateExpression="SET #f = :v", ExpressionAttributeNames={"#f": field},
            ExpressionAttributeValues=_dump({":v": value}),
        )

    def contacts(self, recipient_id: str) -> dict[str, Any]:
        """Contacts bound to a recipient (through binding links), by recipient field name."""
        return self._get(f"R#{recipient_id}", "PROFILE") or {}

    def put_touch(self, recipient_id: str, touch: dict[str, Any]) -> None:
        """A fact (:mod:`cascade.facts`): under its recipient, and by scenario and start day."""
        sk = f"T#{touch['at']}#{touch['cascade_id']}#{touch['step']}#{touch['kind']}#{touch['status']}"
        by_day = ({"sd": f"{touch['scenario']}#{touch['day']}", "sdk": f"T#{touch['at']}#{touch['cascade_id']}"}
                  if touch.get("day") else {})
        self._put({"pk": f"R#{recipient_id}", "sk": sk, **touch, **by_day})

    def touches(self, recipient_id: str) -> list[dict[str, Any]]:
        return self._query_all(KeyConditionExpression="pk = :pk AND begins_with(sk, :t)",
                               ExpressionAttributeValues=_dump({":pk": f"R#{recipient_id}", ":t": "T#"}))

    # -- frequency cap (cascade.policy) ---------------------------------------------------------

    def take_cap_slot(self, recipient_id: str, purpose: str, day: str, limit: int) -> bool:
        """Count one more ``purpose`` message to the recipient on ``day``; False (and nothing
        counted) if ``limit`` messages were already sent that day."""
        try:
            self.db.update_item(
                TableName=self.table, Key=_dump({"pk": f"R#{recipient_id}", "sk": f"CAP#{purpose}#{day}"}),
                UpdateExpression="ADD sent :one SET expires_at = if_not_exists(expires_at, :exp)",
                ConditionExpression="attribute_not_exists(sent) OR sent < :limit",
                ExpressionAttributeValues=_dump({":one": 1, ":limit": limit, ":exp": int(time.time()) + 3 * 86400}),
            )
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    # -- stored scenarios (cascade.scenario_store) -----------------------------------------------

    def scenario_index(self, fresh: bool = False) -> dict[str, Any]:
        """The scenario index (``rev``, ``scenarios``: id → head entry); read consistently, so a
        scenario saved a moment ago already routes the next event. ``fresh=False``: as read in this
        container up to ``cache_seconds`` ago (cascade.hot_cache)."""
        def read() -> dict[str, Any]:
            resp = self.db.get_item(TableName=self.table, Key=_dump({"pk": "SCENARIOS", "sk": "INDEX"}),
                                    ConsistentRead=True)
            return _load(resp.get("Item")) or {"rev": 0, "scenarios": {}}

        return read() if fresh else HOT.get((self.table, "SCENARIOS"), self.cache_seconds, read)

    def scenario_version(self, scenario_id: str, version: int) -> dict[str, Any] | None:
        return self._get(f"SCN#{scenario_id}", f"V#{version:06d}")

    def scenario_item(self, scenario_id: str, ref: str) -> dict[str, Any] | None:
        """An immutable scenario version by its sort key (``V#<000001>`` saved, ``P#<hash>`` a preset)."""
        return self._get(f"SCN#{scenario_id}", ref)

    def keep_preset_version(self, scenario_id: str, ref: str, scenario_json: str) -> None:
        """Store a bundled preset's text under its content hash, unless it is there already."""
        item = {"pk": f"SCN#{scenario_id}", "sk": ref, "scenario_id": scenario_id, "version": 0,
                "scenario_json": scenario_json, "saved_at": now_iso()}
        try:
            self.db.put_item(TableName=self.table, Item=_dump(item), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if not _failed_condition(exc):
                raise

    def write_scenario_index(self, rev: int, scenarios: dict[str, Any],
                             version: dict[str, Any] | None = None) -> bool:
        """Replace the index read at ``rev`` (and add ``version``, an immutable ``scenario_id`` /
        ``version`` item, in the same transaction). False if somebody else wrote in between."""
        index = {"pk": "SCENARIOS", "sk": "INDEX", "rev": rev + 1, "scenarios": scenarios}
        items: list[dict[str, Any]] = [{"Put": {
            "TableName": self.table, "Item": _dump(index),
            "ConditionExpression": "attribute_not_exists(pk) OR #rev = :rev",
            "ExpressionAttributeNames": {"#rev": "rev"}, "ExpressionAttributeValues": _dump({":rev": rev})}}]
        if version is not None:
            key = {"pk": f"SCN#{version['scenario_id']}", "sk": f"V#{version['version']:06d}"}
            items.append({"Put": {"TableName": self.table, "Item": _dump({**key, **version}),
                                  "ConditionExpression": "attribute_not_exists(pk)"}})
        written = self._transact(items)
        HOT.forget((self.table, "SCENARIOS"))  # after the write: a read begun before it is not kept
        return written

    # -- reports (cascade.aggregate, cascade.reports) --------------------------------------------

    def get_reactions(self, recipient_id: str) -> dict[str, Any]:
        """How often the recipient reacted on each channel (``R#<id>`` / ``REACTS``), {} if never."""
        item = self._get(f"R#{recipient_id}", "REACTS") or {}
        return {k: v for k, v in item.items() if k not in ("pk", "sk")}

    def aggregates(self, scenario_id: str, from_day: str, to_day: str) -> list[dict[str, Any]]:
        """A scenario's counters for the days ``from_day`` to ``to_day``, one row per day (``sk``
        ``D#<day>``), each the sum of that day's shards and of its unsharded item of before: one
        query per shard and one more, whatever the number of days."""
        days: dict[str, dict[str, Any]] = {}
        for pk in (f"AGG#{scenario_id}", *(f"AGG#{scenario_id}#{n}" for n in range(self.counter_shards))):
            for item in self._query_all(KeyConditionExpression="pk = :pk AND sk BETWEEN :a AND :b",
                                        ExpressionAttributeValues=_dump({":pk": pk, ":a": f"D#{from_day}",
                                                                         ":b": f"D#{to_day}"})):
                row = days.setdefault(item["sk"], {"pk": f"AGG#{scenario_id}", "sk": item["sk"]})
                for counter, value in item.items():
                    if counter not in ("pk", "sk"):
                        row[counter] = row.get(counter, 0) + value
        return [days[sk] for sk in sorted(days)]

    def count_once(self, marker: str, scenario_id: str, day: str, counts: dict[str, int],
                   reacts: dict[str, str] | None = None, contact: dict[str, str] | None = None) -> bool:
        """Add ``counts`` to the scenario's counters of ``day`` (and a reaction to the recipient's
        ``REACTS``) in one transaction with the marker ``AGGDONE#<marker>``: False, and nothing
        added, if that marker exists (it was counted already). Markers expire after three days."""
        names, adds, values = {}, [], {}
        for n, (counter, amount) in enumerate(sorted(counts.items())):
            names[f"#c{n}"] = counter
            values[f":c{n}"] = amount
            adds.append(f"#c{n} :c{n}")
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(pk)",
                     "Item": _dump({"pk": f"AGGDONE#{marker}", "sk": "D",
                                    "expires_at": int(time.time()) + MARKER_SECONDS})}},
            {"Update": {"TableName": self.table,
                        "Key": _dump({"pk": self.counter_key(scenario_id, marker), "sk": f"D#{day}"}),
                        "UpdateExpression": "ADD " + ", ".join(adds), "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": _dump(values)}},
        ]
        if reacts:
            items.append({"Update": {
                "TableName": self.table, "Key": _dump({"pk": f"R#{reacts['recipient_id']}", "sk": "REACTS"}),
                "UpdateExpression": "ADD #ch :one SET last_channel = :ch, last_at = :at",
                "ExpressionAttributeNames": {"#ch": reacts["channel"]},
                "ExpressionAttributeValues": _dump({":one": 1, ":ch": reacts["channel"], ":at": reacts["at"]})}})
        if contact:  # a reaction: the contact's count of sends without one starts again (cascade.contacts)
            items.append({"Update": {"TableName": self.table, **self._contact_update(
                contact, "SET sends = :zero, {common}, last_reaction_at = :at "
                         "REMOVE invalid_hash, invalid_reason, invalid_since", {":zero": 0})}})
        return self._transact(items)

    def counter_key(self, scenario_id: str, marker: str) -> str:
        """The counter shard a fact counts into: spread by the fact, so no one item takes every count."""
        return f"AGG#{scenario_id}#{zlib.crc32(marker.encode()) % self.counter_shards}"

    def count_contact_send(self, contact: dict[str, str]) -> bool:
        """One more send without a reaction on the contact, unless a reaction later than this send
        was counted already (its stream record can overtake the send's)."""
        try:
            self.db.update_item(TableName=self.table, **self._contact_update(
                contact, "ADD sends :one SET {common}, last_sent_at = :at", {":one": 1}),
                ConditionExpression="attribute_not_exists(last_reaction_at) OR last_reaction_at < :at")
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def _contact_update(self, contact: dict[str, str], update: str, values: dict[str, Any]) -> dict[str, Any]:
        return {"Key": _dump({"pk": f"R#{contact['recipient_id']}", "sk": f"CONTACT#{contact['channel']}"}),
                "UpdateExpression": update.format(common="recipient_id = :r, #ch = :c, expires_at = :exp"),
                "ExpressionAttributeNames": {"#ch": "channel"},
                "ExpressionAttributeValues": _dump({":r": contact["recipient_id"], ":c": contact["channel"],
                                                    ":at": contact["at"], ":exp": int(time.time()) + KEEP_SECONDS,
                                                    **values})}

    def recent_cascades(self, scenario_id: str, days: list[str], status: str | None,
                        limit: int) -> list[dict[str, Any]]:
        """A scenario's cascades started on ``days`` (newest day first), newest first, from the
        ``ByScenarioDay`` index; with ``status``, only those in it."""
        found: list[dict[str, Any]] = []
        for day in days:
            kwargs: dict[str, Any] = {
                "TableName": self.table, "IndexName": "ByScenarioDay", "ScanIndexForward": False,
                "KeyConditionExpression": "sd = :sd AND begins_with(sdk, :c)",
                "ExpressionAttributeValues": _dump({":sd": f"{scenario_id}#{day}", ":c": "C#",
                                                    **({":st": status} if status else {})}),
            }
            if status:
                kwargs.update(FilterExpression="#st = :st", ExpressionAttributeNames={"#st": "status"})
            while len(found) < limit:
                resp = self.db.query(**kwargs)
                found.extend(i for i in (_load(x) for x in resp.get("Items", [])) if i)
                if "LastEvaluatedKey" not in resp:
                    break
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
            if len(found) >= limit:
                break
        return found[:limit]

    def cascade_customers(self, cascade_ids: list[str]) -> list[dict[str, Any]]:
        """The ``recipient``, ``data_json`` and ``event_type`` of the given cascades (by key, 100 at a
        time; in no particular order): what their steps' ``when`` conditions saw."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(cascade_ids), 100):
            request: dict[str, Any] = {self.table: {
                "Keys": [_dump({"pk": f"C#{cid}", "sk": "C"}) for cid in cascade_ids[start:start + 100]],
                "ProjectionExpression": "#r, #d, #e",
                "ExpressionAttributeNames": {"#r": "recipient", "#d": "data_json", "#e": "event_type"}}}
            for attempt in range(5):  # keys DynamoDB left unprocessed (throttled) are asked for again
                resp = self.db.batch_get_item(RequestItems=request)
                found.extend(i for i in (_load(x) for x in resp.get("Responses", {}).get(self.table, [])) if i)
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05 * 2 ** attempt)
        return found

    # -- consent (cascade.consent) ------------------------------------------------------------

    def get_consent(self, recipient_id: str) -> dict[str, Any]:
        """The recipient's recorded grants, refusals and opt-outs (read consistently: an opt-out
        that just arrived must stop the very next step)."""
        resp = self.db.get_item(TableName=self.table, Key=_dump({"pk": f"R#{recipient_id}", "sk": "CONSENT"}),
                                ConsistentRead=True)
        item = _load(resp.get("Item")) or {}
        return {k: v for k, v in item.items() if k not in ("pk", "sk")}

    def set_consent(self, recipient_id: str, channel: str, purpose: str, granted: bool, at: str) -> None:
        """Record a grant or a refusal for one channel and purpose; a grant also lifts the
        channel's opt-out. Kept without expiry: consent is a record, not a cache."""
        names = {"#g": f"{channel}#{purpose}", "#u": "updated_at"}
        update = "SET #g = :g, #u = :at"
        if granted:
            names.update({"#o": f"{channel}#opted_out_at", "#v": f"{channel}#opted_out_via"})
            update += " REMOVE #o, #v"
        self.db.update_item(
            TableName=self.table, Key=_dump({"pk": f"R#{recipient_id}", "sk": "CONSENT"}),
            UpdateExpression=update, ExpressionAttributeNames=names,
            ExpressionAttributeValues=_dump({":g": {"granted": granted, "at": at}, ":at": at}),
        )

    def set_opt_out(self, recipient_id: str, channel: str, via: str, at: str) -> None:
        """The recipient opted out of ``channel`` for every purpose (``via``: how they said so)."""
        self.db.update_item(
            TableName=self.table, Key=_dump({"pk": f"R#{recipient_id}", "sk": "CONSENT"}),
            UpdateExpression="SET #o = :at, #v = :via, #u = :at",
            ExpressionAttributeNames={"#o": f"{channel}#opted_out_at", "#v": f"{channel}#opted_out_via",
                                      "#u": "updated_at"},
            ExpressionAttributeValues=_dump({":at": at, ":via": via}),
        )

    def clear_opt_out(self, recipient_id: str, channel: str, at: str) -> None:
        """The recipient opted back in to ``channel`` (a START reply): recorded grants and refusals stay."""
        self.db.update_item(
            TableName=self.table, Key=_dump({"pk": f"R#{recipient_id}", "sk": "CONSENT"}),
            UpdateExpression="SET #u = :at REMOVE #o, #v",
            ExpressionAttributeNames={"#o": f"{channel}#opted_out_at", "#v": f"{channel}#opted_out_via",
                                      "#u": "updated_at"},
            ExpressionAttributeValues=_dump({":at": at}),
        )

    def put_unsubscribe_token(self, token: str, ref: dict[str, Any]) -> None:
        self._put({"pk": f"U#{token}", "sk": "U", **ref})

    def get_unsubscribe_token(self, token: str) -> dict[str, Any] | None:
        return self._get(f"U#{token}", "U")

    # -- contact health (cascade.contacts) -------------------------------------------------------

    def contact_health(self, recipient_id: str) -> dict[str, dict[str, Any]]:
        """The recipient's contact health items, by channel (read consistently: a contact marked
        invalid a moment ago must stop the very next step)."""
        found = self._query_all(KeyConditionExpression="pk = :pk AND begins_with(sk, :c)", ConsistentRead=True,
                                ExpressionAttributeValues=_dump({":pk": f"R#{recipient_id}", ":c": "CONTACT#"}))
        return {str(i["sk"]).removeprefix("CONTACT#"): i for i in found}

    def update_contact(self, recipient_id: str, channel: str, *, sets: dict[str, Any] | None = None,
                       removes: tuple[str, ...] = (), condition: str | None = None,
                       values: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Set and remove attributes of a contact health item (``condition`` may use ``values`` and
        any attribute by its plain name). The item as it is now, or None if the condition failed."""
        sets = {**(sets or {}), "recipient_id": recipient_id, "channel": channel,
                "expires_at": int(time.time()) + KEEP_SECONDS}
        names = {f"#s_{k}": k for k in sets} | {f"#r_{k}": k for k in removes}
        update = "SET " + ", ".join(f"#s_{k} = :s_{k}" for k in sets)
        if removes:
            update += " REMOVE " + ", ".join(f"#r_{k}" for k in removes)
        kwargs: dict[str, Any] = {"ConditionExpression": condition} if condition else {}
        try:
            resp = self.db.update_item(
                TableName=self.table, Key=_dump({"pk": f"R#{recipient_id}", "sk": f"CONTACT#{channel}"}),
                UpdateExpression=update, ExpressionAttributeNames=names, ReturnValues="ALL_NEW",
                ExpressionAttributeValues=_dump({**{f":s_{k}": v for k, v in sets.items()}, **(values or {})}),
                **kwargs)
        except ClientError as exc:
            if _failed_condition(exc):
                return None
            raise
        return _load(resp.get("Attributes"))

    def contacts_in_state(self, state: str, limit: int,
                          start: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of contacts in ``state`` (invalid, inactive), oldest first, from the sparse
        ``ByContactHealth`` index; and the key to go on from (None at the end)."""
        kwargs: dict[str, Any] = {"TableName": self.table, "IndexName": "ByContactHealth", "Limit": limit,
                                  "KeyConditionExpression": "hl = :state",
                                  "ExpressionAttributeValues": _dump({":state": state})}
        if start:
            kwargs["ExclusiveStartKey"] = start
        resp = self.db.query(**kwargs)
        return [i for i in (_load(x) for x in resp.get("Items", [])) if i], resp.get("LastEvaluatedKey")

    # -- circuit breakers (cascade.circuit) ----------------------------------------------------

    def get_circuit(self, channel: str) -> dict[str, Any] | None:
        """The channel's circuit, as read in this container up to ``cache_seconds`` ago."""
        def read() -> dict[str, Any] | None:
            resp = self.db.get_item(TableName=self.table, Key=_dump({"pk": f"CIRCUIT#{channel}", "sk": "CIRCUIT"}))
            return _load(resp.get("Item"))

        return HOT.get((self.table, "CIRCUIT", channel), self.cache_seconds, read)

    def count_circuit_failure(self, channel: str) -> int:
        resp = self.db.update_item(
            TableName=self.table, Key=_dump({"pk": f"CIRCUIT#{channel}", "sk": "CIRCUIT"}),
            UpdateExpression="ADD failures :one REMOVE trial_at", ExpressionAttributeValues=_dump({":one": 1}),
            ReturnValues="UPDATED_NEW",
        )
        HOT.forget((self.table, "CIRCUIT", channel))
        return int((_load(resp.get("Attributes")) or {}).get("failures", 1))

    def open_circuit(self, channel: str, until: int) -> None:
        self.db.update_item(
            TableName=self.table, Key=_dump({"pk": f"CIRCUIT#{channel}", "sk": "CIRCUIT"}),
            UpdateExpression="SET open_until = :until", ExpressionAttributeValues=_dump({":until": until}),
        )
        HOT.forget((self.table, "CIRCUIT", channel))

    def claim_circuit_trial(self, channel: str, now: int, stale_before: int) -> bool:
        """Take the half-open circuit's one trial send. False if another step holds it."""
        try:
            self.db.update_item(
                TableName=self.table, Key=_dump({"pk": f"CIRCUIT#{channel}", "sk": "CIRCUIT"}),
                UpdateExpression="SET trial_at = :now",
                ConditionExpression="attribute_not_exists(trial_at) OR trial_at < :stale",
                ExpressionAttributeValues=_dump({":now": now, ":stale": stale_before}),
            )
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def close_circuit(self, channel: str) -> None:
        self.db.delete_item(TableName=self.table, Key=_dump({"pk": f"CIRCUIT#{channel}", "sk": "CIRCUIT"}))
        HOT.forget((self.table, "CIRCUIT", channel))

    # -- the CRM's webhook (cascade.outbound): one per deployment, kept without expiry ----------

    def put_webhook(self, config: dict[str, Any]) -> None:
        self.db.put_item(TableName=self.table, Item=_dump({"pk": "WEBHOOK", "sk": "CONFIG", **config}))
        HOT.forget((self.table, "WEBHOOK"))  # this container sees it at once, others within cache_seconds

    def get_webhook(self) -> dict[str, Any] | None:
        """The registration, as read in this container up to ``cache_seconds`` ago."""
        def read() -> dict[str, Any] | None:
            resp = self.db.get_item(TableName=self.table, Key=_dump({"pk": "WEBHOOK", "sk": "CONFIG"}),
                                    ConsistentRead=True)
            item = _load(resp.get("Item"))
            return {k: v for k, v in item.items() if k not in ("pk", "sk")} if item else None

        return HOT.get((self.table, "WEBHOOK"), self.cache_seconds, read)

    def delete_webhook(self) -> None:
        self.db.delete_item(TableName=self.table, Key=_dump({"pk": "WEBHOOK", "sk": "CONFIG"}))
        HOT.forget((self.table, "WEBHOOK"))

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """Write ``items`` all or nothing. False if a condition failed (nothing was written)."""
        try:
            self.db.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def _query_all(self, **query: Any) -> list[dict[str, Any]]:
        """Every item a query finds, page after page."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table, **query}
        while True:
            resp = self.db.query(**kwargs)
            items.extend(i for i in (_load(x) for x in resp.get("Items", [])) if i)
            if "LastEvaluatedKey" not in resp:
                return items
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _put(self, item: dict[str, Any]) -> None:
        item.setdefault("expires_at", int(time.time()) + KEEP_SECONDS)
        self.db.put_item(TableName=self.table, Item=_dump(item))

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        resp = self.db.get_item(TableName=self.table, Key=_dump({"pk": pk, "sk": sk}))
        item = _load(resp.get("Item"))
        if item:
            item.pop("pk", None)
            item.pop("sk", None)
        return item


__all__ = ["STEP_RANK", "CascadeStore", "default_store", "now_iso"]


def now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_default: CascadeStore | None = None


def default_store() -> CascadeStore:
    """The store for this container's table (created on first use)."""
    global _default
    if _default is None:
        from cascade.settings import settings

        cfg = settings()
        _default = CascadeStore(cfg.table_name, cache_seconds=cfg.config_cache_seconds,
                                counter_shards=cfg.report_counter_shards)
    return _default
