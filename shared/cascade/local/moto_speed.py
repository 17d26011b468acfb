"""Make moto's DynamoDB behave like DynamoDB when many threads use it, and keep its transactions
cheap as the local table grows.

**One request at a time.** moto's DynamoDB backend is plain dictionaries: a conditional write
checks, then writes, and a query or scan iterates a partition, with nothing to stop another thread
in between. DynamoDB applies each request atomically, and the store relies on it (a stop and a
timer that fire together must not both win; a marker and its counters are written together or not
at all). Here every request to the backend holds one lock, so requests apply one after another,
each as a whole: no lost condition, no half-seen transaction, no "dictionary changed size during
iteration".

**A cheap backup.** Before a ``TransactWriteItems`` moto deep-copies every table the transaction
names, so that it can put them back if the transaction is cancelled: the cost of one transaction
grows with the whole table. The report counters are written in transactions (a marker and the
counters, see :mod:`cascade.aggregate`), several per cascade. Here moto's "copy" of a table is the
table itself (so its own rollback changes nothing, and no stand-in object ever takes the table's
place in the backend), and the backup is deep copies of the partitions the transaction names,
looked up by key: a cancelled transaction puts just those back."""

from __future__ import annotations

import copy as _copy
import functools
import threading
from collections.abc import Callable
from typing import Any

_local = threading.local()
LOCK = threading.RLock()
_ABSENT = object()
# The backend's requests: each runs whole under LOCK.
_REQUESTS = ("put_item", "get_item", "update_item", "delete_item", "query", "scan", "transact_write_items",
             "execute_statement", "execute_transaction", "batch_execute_statement")


class _Copy:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend."""

    copy = staticmethod(_copy.copy)

    @staticmethod
    def deepcopy(obj: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        if isinstance(obj, Table) and getattr(_local, "in_transaction", False):
            return obj  # the transaction's own backup (see _backup) is what a cancel restores
        return _copy.deepcopy(obj, memo)


def _backup(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any]]:
    """(table, hash key, deep copy of its partition or _ABSENT) for each partition named."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved: dict[tuple[str, Any], tuple[Any, Any, Any]] = {}
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
        if table is None:
            continue  # moto refuses it before writing anything
        value = (op.get("Key") or op.get("Item") or {}).get(table.hash_key_attr)
        if not isinstance(value, dict):
            continue
        hash_key = DynamoType(value)
        if (table.name, hash_key) not in saved:
            partition = table.items.get(hash_key, _ABSENT)
            saved[(table.name, hash_key)] = (table, hash_key,
                                             partition if partition is _ABSENT else _copy.deepcopy(partition))
    return list(saved.values())


def _restore(saved: list[tuple[Any, Any, Any]]) -> None:
    for table, hash_key, partition in saved:
        if partition is _ABSENT:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = partition


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        with LOCK:
            return method(self, *args, **kwargs)

    request._serialised = True  # type: ignore[attr-defined]
    return request


def install() -> None:
    from moto.dynamodb import models

    if getattr(models.DynamoDBBackend.transact_write_items, "_serialised", False):
        return
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        saved = _backup(self, transact_items)
        _local.in_transaction = True
        try:
            return original(self, transact_items)
        except BaseException:
            _restore(saved)  # cancelled: every partition it named is as it was
            raise
        finally:
            _local.in_transaction = False

    models.copy = _Copy  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    for name in _REQUESTS:
        if hasattr(models.DynamoDBBackend, name):
            setattr(models.DynamoDBBackend, name, _serialised(getattr(models.DynamoDBBackend, name)))


__all__ = ["LOCK", "install"]
