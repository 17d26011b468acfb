"""The table's stream → signed events to the business's CRM (cascade.outbound), in order."""

from typing import TYPE_CHECKING

from cascade import outbound
from cascade.observability import logger

if TYPE_CHECKING:  # typing only: keeps the import off the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: "LambdaContext") -> dict:
    return outbound.handle(event, context)
