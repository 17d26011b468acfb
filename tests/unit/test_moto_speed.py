"""The local stack's cheaper transaction backup must keep moto's all-or-nothing semantics."""

from __future__ import annotations

import gc
import threading

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from cascade.local import moto_speed


def _table() -> object:
    db = boto3.client("dynamodb", region_name="us-east-1")
    db.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                          {"AttributeName": "sk", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                               {"AttributeName": "sk", "KeyType": "RANGE"}])
    db.put_item(TableName="t", Item={"pk": {"S": "B"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    db.put_item(TableName="t", Item={"pk": {"S": "C"}, "sk": {"S": "1"}, "n": {"N": "5"}})
    return db


def _items(db: object) -> dict[tuple[str, str], str]:
    items = db.scan(TableName="t")["Items"]  # type: ignore[attr-defined]
    return {(i["pk"]["S"], i["sk"]["S"]): i.get("n", {}).get("N", "") for i in items}


def test_a_cancelled_transaction_changes_nothing_and_a_good_one_changes_everything() -> None:
    moto_speed.install()
    with mock_aws():
        db = _table()
        before = _items(db)
        with pytest.raises(ClientError, match="TransactionCanceled"):
            db.transact_write_items(TransactItems=[  # type: ignore[attr-defined]
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "A"}, "sk": {"S": "1"}}}},
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "B"}, "sk": {"S": "2"}}}},
                {"Update": {"TableName": "t", "Key": {"pk": {"S": "B"}, "sk": {"S": "1"}},
                            "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                {"Update": {"TableName": "t", "Key": {"pk": {"S": "C"}, "sk": {"S": "1"}},
                            "UpdateExpression": "ADD n :one", "ConditionExpression": "n = :zero",
                            "ExpressionAttributeValues": {":one": {"N": "1"}, ":zero": {"N": "0"}}}},
            ])
        assert _items(db) == before
        db.transact_write_items(TransactItems=[  # type: ignore[attr-defined]
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "A"}, "sk": {"S": "1"}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "C"}, "sk": {"S": "1"}},
                        "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        ])
        assert _items(db) == {**before, ("A", "1"): "", ("C", "1"): "6"}


def _count_once(db: object, marker: str) -> bool:
    """The aggregator's pattern: a marker that may exist only once, and a counter, together."""
    try:
        db.transact_write_items(TransactItems=[  # type: ignore[attr-defined]
            {"Put": {"TableName": "t", "Item": {"pk": {"S": f"DONE#{marker}"}, "sk": {"S": "D"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "C"}, "sk": {"S": "1"}},
                        "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        ])
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "TransactionCanceledException", exc
        return False
    return True


def test_transactions_writes_and_scans_from_many_threads_stay_consistent() -> None:
    """Threads count facts (half of them repeats, which must cancel) while others write items in
    the same partition and scan the table: every request succeeds or is cancelled as DynamoDB
    would, each fact is counted once, and no cancelled transaction undoes another thread's write."""
    moto_speed.install()
    with mock_aws():
        db = _table()
        facts = [f"f{i % 60}" for i in range(240)]  # each fact four times
        counted: list[bool] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def counter(part: list[str]) -> None:
            for fact in part:
                try:
                    ok = _count_once(db, fact)
                except BaseException as exc:
                    with lock:
                        errors.append(exc)
                    continue
                with lock:
                    counted.append(ok)

        def writer(n: int) -> None:
            for i in range(60):
                try:
                    db.put_item(TableName="t", Item={"pk": {"S": "C"}, "sk": {"S": f"w{n}-{i}"}})
                    db.scan(TableName="t", Limit=50)
                except BaseException as exc:
                    with lock:
                        errors.append(exc)

        threads = [threading.Thread(target=counter, args=(facts[i::4],)) for i in range(4)]
        threads += [threading.Thread(target=writer, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert counted.count(True) == 60
        items = _items(db)
        assert items[("C", "1")] == str(5 + 60)
        assert all(("C", f"w{n}-{i}") in items for n in range(2) for i in range(60))


def test_moto_lets_go_of_the_item_copies_an_update_makes() -> None:
    """Each update deep-copies the item; moto listed every copy for good (a long ``make run``
    grew by about 1 MB per cascade). Once installed, only the items in the table stay."""
    from moto.dynamodb.models.dynamo_type import Item

    from cascade.local import moto_upkeep

    moto_upkeep.install()
    with mock_aws():
        db = _table()
        for _ in range(300):
            db.update_item(TableName="t", Key={"pk": {"S": "B"}, "sk": {"S": "1"}},  # type: ignore[attr-defined]
                           UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}})
        gc.collect()
        assert _items(db)[("B", "1")] == "301"
        assert sum(1 for o in gc.get_objects() if type(o) is Item) < 50
