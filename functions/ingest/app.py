"""POST /v1/events: a trigger starts a cascade (202), a success event stops matching ones (202)."""

from typing import TYPE_CHECKING

from cascade import aws, http
from cascade.observability import logger

if TYPE_CHECKING:  # typing only: keeps the import off the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: "LambdaContext") -> dict:
    def run() -> dict:
        # The request path (pydantic models, scenarios) loads with the first request, so the
        # function's init is boto3 and the logger; `make bench` reports both costs.
        from cascade import ingest
        from cascade.settings import settings

        cfg = settings()
        http.check_api_key(http.headers_of(event), aws.secret(cfg.api_key_secret_arn).get("api_key", ""))
        body = http.json_body(event, cfg.max_body_bytes)
        return http.respond(202, ingest.accept(body, http.base_url(event, cfg.public_base_url)))

    return http.guarded(run)
