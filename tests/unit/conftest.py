"""Unit fixtures: a real (moto, in-process) DynamoDB table with the stack's key schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cascade.store import CascadeStore


@pytest.fixture
def dynamo() -> Iterator[Any]:
    """A client of moto's in-process DynamoDB holding table ``t`` (pk, sk)."""
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}])
        yield db


@pytest.fixture
def store(dynamo: Any) -> CascadeStore:
    return CascadeStore("t", dynamo)
