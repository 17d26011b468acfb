"""The stream-fed functions' FilterCriteria, read from template.yaml and matched the way the
local stack (and Lambda) match them: new cascades, ended cascades and new touches pass; a
running cascade's updates and the counters' own items do not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cascade.local import streams, template


def _filters(function: str) -> list[dict[str, Any]]:
    props = template.load()["Resources"][function]["Properties"]
    event = next(e for e in props["Events"].values() if e["Type"] == "DynamoDB")
    return [json.loads(f["Pattern"]) for f in event["Properties"]["FilterCriteria"]["Filters"]]


def _record(name: str, pk: str, sk: str, status: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}}
    if status is not None:
        body["NewImage"] = {"status": {"S": status}}
    return {"eventName": name, "dynamodb": body}


CASES = [
    (_record("INSERT", "C#c1", "C", "running"), True),
    (_record("MODIFY", "C#c1", "C", "running"), False),  # a step moved on: nothing to count
    (_record("MODIFY", "C#c1", "C", "succeeded"), True),
    (_record("REMOVE", "C#c1", "C"), True),  # a cascade whose workflow never started
    (_record("INSERT", "R#r1", "T#2026-11-23T10:00:00Z#c1#0#sent#sent"), True),
    (_record("INSERT", "AGG#cart", "D#2026-11-23"), False),
    (_record("MODIFY", "AGG#cart", "D#2026-11-23"), False),
    (_record("INSERT", "AGGDONE#c1#started", "D"), False),
    (_record("INSERT", "M#pmid", "M"), False),
]


@pytest.mark.parametrize("function", ["AggregatorFunction", "OutboundFunction"])
@pytest.mark.parametrize(("record", "passes"), CASES)
def test_only_the_facts_reach_the_stream_functions(function: str, record: dict[str, Any], passes: bool) -> None:
    mapping = streams.Mapping(function_name=function, filters=_filters(function))
    assert streams.wanted(mapping, record) is passes
