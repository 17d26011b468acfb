"""SNS subscription: SES events (delivery, open, click, bounce) and inbound two-way SMS."""

import json
from typing import TYPE_CHECKING

from cascade import signals
from cascade.channels.email import parse_ses_event
from cascade.channels.sms import parse_inbound_sms
from cascade.observability import logger

if TYPE_CHECKING:  # typing only: keeps the import off the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: "LambdaContext") -> dict:
    handled = 0
    for record in event.get("Records", []):
        try:
            message = json.loads(record["Sns"]["Message"])
        except (KeyError, ValueError):
            logger.warning("skipping an SNS record that is not JSON")
            continue
        signal = parse_ses_event(message) or parse_inbound_sms(message)
        if signal is not None and signals.receive(signal):
            handled += 1
    return {"handled": handled}
