"""Keep moto's DynamoDB transactions cheap as the local table grows.

Before a ``TransactWriteItems`` moto deep-copies every table the transaction names, so that it
can put them back if the transaction is cancelled: the cost of one transaction grows with the
whole table. The report counters are written in transactions (a marker and the counters, see
:mod:`cascade.aggregate`), several per cascade, so a long ``make run`` session or the test suite
would slow down with every cascade. Here the backup copies only what the transaction can change:
the table's item index, and deep copies of the items under the partition keys it names. A
cancelled transaction still leaves every item as it was; other writes that land in the middle of
a transaction are lost on a rollback, as with moto's own backup."""

from __future__ import annotations

import copy as _copy
import threading
from collections import defaultdict
from typing import Any

_local = threading.local()


class _Copy:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend."""

    copy = staticmethod(_copy.copy)

    @staticmethod
    def deepcopy(obj: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        partitions = getattr(_local, "partitions", None)
        if isinstance(obj, Table) and partitions is not None:
            return _backup(obj, partitions)
        return _copy.deepcopy(obj, memo)


def _backup(table: Any, partitions: set[str]) -> Any:
    snapshot = _copy.copy(table)
    items: defaultdict[Any, Any] = defaultdict(dict)
    for hash_key, value in table.items.items():
        touched = str(getattr(hash_key, "value", hash_key)) in partitions
        if isinstance(value, dict):
            items[hash_key] = {r: (_copy.deepcopy(i) if touched else i) for r, i in value.items()}
        else:
            items[hash_key] = _copy.deepcopy(value) if touched else value
    snapshot.items = items
    return snapshot


def _partition_keys(transact_items: list[dict[str, Any]]) -> set[str]:
    keys: set[str] = set()
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        key = op.get("Key") or op.get("Item") or {}
        for value in key.values():
            if isinstance(value, dict) and len(value) == 1:
                keys.add(str(next(iter(value.values()))))
    return keys


def install() -> None:
    from moto.dynamodb import models

    if getattr(models.DynamoDBBackend.transact_write_items, "_cheap_backup", False):
        return
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        _local.partitions = _partition_keys(transact_items)
        try:
            return original(self, transact_items)
        finally:
            _local.partitions = None

    transact_write_items._cheap_backup = True  # type: ignore[attr-defined]
    models.copy = _Copy  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


__all__ = ["install"]
