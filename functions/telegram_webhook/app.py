"""POST /webhooks/telegram: button presses, replies and blocks from the Telegram bot."""

from typing import TYPE_CHECKING

from cascade import binding, consent, http, signals, wording
from cascade.aws import secret
from cascade.channels import channel
from cascade.channels.telegram import blocked_chat, check_secret, opt_out, parse_update, reply_quietly, start_token
from cascade.observability import logger
from cascade.settings import settings

if TYPE_CHECKING:  # typing only: keeps the import off the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: "LambdaContext") -> dict:
    def run() -> dict:
        cfg = settings()
        check_secret(http.headers_of(event), secret(cfg.provider_secret_arn).get("telegram_webhook_secret", ""))
        update = http.json_body(event, cfg.max_body_bytes)
        start = start_token(update)
        if start is not None:  # a customer opened a binding link: confirm it in their language
            bound = binding.bind("telegram", start[1], start[0], client_language=start[2])
            if bound is not None:
                reply_quietly(start[0], wording.say("bound", bound.locale))
            return http.respond(200, {"ok": True})
        blocked = blocked_chat(update)
        if blocked is not None:  # the customer blocked the bot: an opt-out of Telegram
            opt_out(blocked)
            return http.respond(200, {"ok": True})
        signal = parse_update(update)
        if signal is not None:
            acknowledgement = consent.acknowledgement(signal, signals.receive(signal))
            if acknowledgement and signal.chat_id:  # a STOP or START is confirmed in the chat
                reply_quietly(signal.chat_id, acknowledgement)
            if "callback_query_id" in signal.detail:  # stop the button's spinner
                channel("telegram").answer_callback(signal.detail["callback_query_id"], "👍")  # type: ignore[attr-defined]
        return http.respond(200, {"ok": True})

    return http.guarded(run)
