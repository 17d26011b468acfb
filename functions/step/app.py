"""The workflow's task: run one step of a cascade (send, skip, or close) with its task token."""

from typing import TYPE_CHECKING

from cascade import engine
from cascade.observability import logger

if TYPE_CHECKING:  # typing only: keeps the import off the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: "LambdaContext") -> dict:
    outcome = engine.advance(event["cascade_id"], int(event["step"]), event["task_token"])
    return {"outcome": outcome}
