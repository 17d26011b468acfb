"""The local stack's Lambda runtime (cascade.local.lambdas): what it logs for an invocation names
that invocation's function and request, also when the function fails before its handler runs."""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cascade.local import lambdas
from tests.conftest import captured_log_lines

GOOD = '''from cascade.observability import logger


@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    logger.info("handled")
    return {"ok": True}
'''
BROKEN = 'raise RuntimeError("this function cannot even load")\n'


@pytest.fixture
def functions(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Two deployed functions, as moto knows them: one that works, one whose module fails to load."""
    made = {}
    for kind, code in (("good", GOOD), ("broken", BROKEN)):
        (tmp_path / f"{kind}.py").write_text(code, encoding="utf-8")
        name = f"{kind}-{uuid.uuid4().hex[:6]}"
        lambdas.REGISTRY[name] = lambdas.FunctionSpec(tmp_path, f"{kind}.handler")
        made[kind] = SimpleNamespace(function_name=name, memory_size=256, timeout=30,
                                     function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}")
    yield made
    for fn in made.values():
        lambdas.REGISTRY.pop(fn.function_name, None)


@pytest.fixture
def lines() -> Iterator[list[dict[str, Any]]]:
    with captured_log_lines() as lines:
        yield lines


def test_a_function_that_fails_to_load_is_logged_in_its_own_name(functions: dict[str, Any],
                                                                 lines: list[dict[str, Any]]) -> None:
    """On one thread (as moto serves invocations): a function runs, then another fails while its
    module loads. The runtime's error line names the one that failed, not the one before it."""
    good, broken = functions["good"], functions["broken"]
    assert json.loads(lambdas._invoke(good, b"{}", {}, {})) == {"ok": True}
    answer: dict[str, str] = {}
    assert json.loads(lambdas._invoke(broken, b"{}", {}, answer))["errorType"] == "RuntimeError"
    assert answer == {"x-amz-function-error": "Unhandled"}
    handled = next(line for line in lines if line["message"] == "handled")
    failed = next(line for line in lines if line["message"].endswith("unhandled RuntimeError"))
    assert (handled["function_name"], handled["function_arn"]) == (good.function_name, good.function_arn)
    assert (failed["function_name"], failed["function_arn"], failed["function_memory_size"]) == (
        broken.function_name, broken.function_arn, 256)
    assert failed["function_request_id"] != handled["function_request_id"]


def test_each_environments_first_invocation_is_its_cold_start(functions: dict[str, Any], lines: list[dict[str, Any]],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Powertools keeps one cold-start flag per process; the local runtime answers it per environment."""
    monkeypatch.setattr(importlib.import_module("aws_lambda_powertools.logging.logger"), "_is_cold_start",
                        lambdas._cold_start)  # what lambdas.install() does for the stack
    good = functions["good"]
    for _ in range(3):
        lambdas._invoke(good, b"{}", {}, {})
    assert [line["cold_start"] for line in lines if line["message"] == "handled"] == [True, False, False]
