"""Provider webhooks: WhatsApp, Viber, Twilio (voice and SMS) and the operator desk."""

from typing import TYPE_CHECKING

from cascade.observability import logger
from cascade.webhooks import dispatch

if TYPE_CHECKING:  # typing only: keeps the import off the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: "LambdaContext") -> dict:
    return dispatch(event)
