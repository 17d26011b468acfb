"""The local stack's cheaper transaction backup must keep moto's all-or-nothing semantics."""

from __future__ import annotations

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
