"""Keep moto's DynamoDB transactions cheap as the local table grows.

Before a ``TransactWriteItems`` moto deep-copies every table the transaction names, so that it
can put them back if the transaction is cancelled: the cost of one transaction grows with the
whole table. The report counters are written in transactions (a marker and the counters, see
:mod:`cascade.aggregate`), several per cascade, so a long ``make run`` session or the test suite
would slow down with every cascade. Here the backup is deep copies of the partitions the
transaction names, and a cancelled transaction puts just those back: every item is left as it
was, and writes elsewhere in the table while it ran are kept."""

from __future__ import annotations

import copy as _copy
import threading
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
            return _Partitions(obj, partitions)
        return _copy.deepcopy(obj, memo)


class _Partitions:
    """The backup of a table's partitions that a transaction names (deep copies)."""

    def __init__(self, table: Any, keys: set[str]) -> None:
        self.table, self.keys = table, keys
        self.saved = {h: _copy.deepcopy(v) for h, v in table.items.items() if _name(h) in keys}

    def restore(self) -> Any:
        """Put those partitions back as they were (new ones go) and return the table."""
        for hash_key in [h for h in self.table.items if _name(h) in self.keys and h not in self.saved]:
            del self.table.items[hash_key]
        self.table.items.update(self.saved)
        return self.table


def _name(hash_key: Any) -> str:
    return str(getattr(hash_key, "value", hash_key))


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
            # A cancelled transaction "restored" the tables to their backups: put the real
            # tables back with those partitions restored.
            for name, table in list(self.tables.items()):
                if isinstance(table, _Partitions):
                    self.tables[name] = table.restore()

    transact_write_items._cheap_backup = True  # type: ignore[attr-defined]
    models.copy = _Copy  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


__all__ = ["install"]
