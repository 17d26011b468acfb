"""Read and cancel cascades, a recipient's timeline, and the API's own description (/openapi.json, /docs)."""

from typing import TYPE_CHECKING

from cascade.api import build_app
from cascade.observability import logger

if TYPE_CHECKING:  # typing only: keeps the import off the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

app = build_app()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: "LambdaContext") -> dict:
    return app.resolve(event, context)
