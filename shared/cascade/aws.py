"""boto3 clients (one per container, created on first use) and the Step Functions callbacks."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from cascade.observability import logger

# Channels that send messages: the provider timeout, one attempt per call, the step's own retry
# policy decides the rest (botocore's retries would multiply with it).
_SENDERS = {"sesv2", "sns"}
# The stack's own services (DynamoDB, Step Functions, KMS, Secrets Manager) are not providers: they
# answer in milliseconds, and a slow answer is worth waiting for and retrying, not giving up on
# after the provider timeout. (connect s, read s, attempts)
_OWN_SERVICES = {"dynamodb": (2.0, 10.0, 5), "stepfunctions": (2.0, 10.0, 5)}
_OWN_DEFAULT = (2.0, 10.0, 3)


@cache
def client(service: str) -> Any:
    if service in _SENDERS:
        connect, read, attempts = 3.0, float(os.environ.get("PROVIDER_TIMEOUT_SECONDS") or 10), 1
    else:
        connect, read, attempts = _OWN_SERVICES.get(service, _OWN_DEFAULT)
    config = Config(connect_timeout=connect, read_timeout=read, max_pool_connections=128,
                    retries={"mode": "standard", "total_max_attempts": attempts})
    return boto3.client(service, config=config)


@cache
def secret(arn: str) -> dict[str, str]:
    """A JSON secret from Secrets Manager, read once per container."""
    if not arn:
        return {}
    raw = client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    value = json.loads(raw)
    return value if isinstance(value, dict) else {}


_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


def _callback(action: str, **kwargs: Any) -> bool:
    """Answer a waiting task. False when the wait had already ended (its timer fired first)."""
    try:
        getattr(client("stepfunctions"), action)(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in _GONE:
            logger.info("task already ended", error=exc.response["Error"]["Code"])
            return False
        raise
    return True


def resume(token: str, output: dict[str, Any]) -> bool:
    """End a waiting step successfully: the cascade is over."""
    return _callback("send_task_success", taskToken=token, output=json.dumps(output))


def escalate(token: str, cause: str) -> bool:
    """End a waiting step so that the state machine moves to the next step at once."""
    return _callback("send_task_failure", taskToken=token, error="Cascade.Escalate", cause=cause)


def defer(token: str, seconds: int) -> bool:
    """End a waiting step so that the state machine runs the same step again in ``seconds`` (the
    workflow reads them from the error's name: an error's cause is not always passed on)."""
    seconds = max(1, int(seconds))
    return _callback("send_task_failure", taskToken=token, error=f"Cascade.Defer.{seconds}",
                     cause=f"held back for {seconds} s")


def start_execution(state_machine_arn: str, name: str, payload: dict[str, Any]) -> None:
    """Start the workflow named by the cascade id; a second start of the same cascade is a no-op."""
    try:
        client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload, sort_keys=True)
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise


__all__ = ["client", "defer", "escalate", "resume", "secret", "start_execution"]
