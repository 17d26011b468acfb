"""Twilio's REST API (2010-04-01) over httpx, and its webhook signatures: shared by the robot call
(``voice``) and Twilio SMS (``twilio_sms``).

The ``twilio`` package gives the request validator and the TwiML builders; its REST client is not
used (slow to import, and our httpx client already bounds every call by the provider timeout)."""

from __future__ import annotations

from typing import Any, ClassVar

from twilio.request_validator import RequestValidator

from cascade import http
from cascade.channels.base import Channel, http_call
from cascade.errors import PermanentSendError, RetryableSendError

API_VERSION = "2010-04-01"
SIGNATURE_HEADER = "x-twilio-signature"
# Twilio's own codes for "try again later", whatever the HTTP status says.
RETRYABLE_CODES = frozenset({20429, 20500, 20503})
# Codes that say the 'To' number itself is wrong for good: 21211 invalid 'To', 21214 'To' cannot
# be reached (calls), 21217 not a valid phone number (calls), 21407 a number type without SMS,
# 21614 not a mobile number. (21610 is an opt-out; 21612 is about the To/From pair: the sender's
# setup, not the customer's number.)
INVALID_NUMBER_CODES = frozenset({21211, 21214, 21217, 21407, 21614})


class TwilioApi:
    """One Twilio account: create Calls and Messages with basic auth (account SID : auth token)."""

    def __init__(self, http_client: Any, api_base: str, account_sid: str, auth_token: str) -> None:
        self.http = http_client
        self.api_base = api_base.rstrip("/")
        self.account_sid = account_sid
        self.auth_token = auth_token

    @classmethod
    def configured(cls, cfg: Any, provider_secret: dict[str, str]) -> TwilioApi:
        """The account the deployment is configured with (TwilioApiBase + the provider secret)."""
        from cascade.channels import http_client

        return cls(http_client(), cfg.twilio_api_base, provider_secret.get("twilio_account_sid", ""),
                   provider_secret.get("twilio_auth_token", ""))

    def __repr__(self) -> str:  # never print the token
        return f"TwilioApi(api_base={self.api_base!r}, account_sid={self.account_sid!r}, auth_token='***')"

    def create(self, resource: str, params: dict[str, Any], what: str) -> dict[str, Any]:
        """POST a form to ``/Accounts/{sid}/{resource}.json``; the created resource, or a send error."""
        if not self.account_sid or not self.auth_token:
            raise PermanentSendError(f"{what}: twilio_account_sid or twilio_auth_token is not configured")
        url = f"{self.api_base}/{API_VERSION}/Accounts/{self.account_sid}/{resource}.json"
        resp = http_call(self.http, "POST", url, what, data=params, auth=(self.account_sid, self.auth_token))
        try:
            body = resp.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        if resp.status_code in (200, 201) and body.get("sid"):
            return body
        raise send_error(resp.status_code, body, resp.headers.get("retry-after"), what)


def send_error(status: int, body: dict[str, Any], retry_after: Any, what: str) -> Exception:
    """Twilio's error JSON ``{code, message, more_info, status}`` → retryable (429, 20429, 5xx) or
    permanent (21211 invalid 'To', 21610 unsubscribed, 13224 …). Only the code is kept: Twilio's
    message quotes the phone number."""
    code = body.get("code")
    label = f"{what}: HTTP {status}" + (f" code {code}" if code else "")
    if status == 429 or status >= 500 or code in RETRYABLE_CODES:
        try:
            hint = float(retry_after) if retry_after not in (None, "") else None
        except (TypeError, ValueError):
            hint = None
        return RetryableSendError(label, retry_after=hint)
    return PermanentSendError(label, invalid_contact="invalid_number" if code in INVALID_NUMBER_CODES else None)


def auth_token() -> str:
    """The account's auth token from the provider secret: Twilio signs its webhooks with it."""
    from cascade.aws import secret
    from cascade.settings import settings

    return secret(settings().provider_secret_arn).get("twilio_auth_token", "")


def verified_params(request: Any, token: str) -> dict[str, str] | None:
    """Twilio's form parameters when ``X-Twilio-Signature`` is right for them and the URL Twilio
    called (HMAC-SHA1 with the auth token, checked by twilio's RequestValidator); None otherwise."""
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not token or not signature:
        return None
    try:
        params: dict[str, str] = request.form()
    except http.HttpError:
        return None
    if not RequestValidator(token).validate(request.url, params, signature):
        return None
    return params


def forbidden() -> dict[str, Any]:
    """What Twilio's guide asks for a request that fails validation."""
    return http.respond(403, http.error_body("X-Twilio-Signature is missing or does not match"))


def twiml_answer(twiml: str) -> dict[str, Any]:
    return http.respond_text(200, twiml, "text/xml; charset=utf-8")


class TwilioChannel(Channel):
    """What the robot call and Twilio SMS share: the account, and the number they come from."""

    provider: ClassVar[str] = "twilio"

    def __init__(self, api: TwilioApi, from_number: str) -> None:
        self.api = api
        self.from_number = from_number

    def sender(self, what: str) -> str:
        if not self.from_number:
            raise PermanentSendError(f"{what}: TWILIO_FROM_NUMBER is not configured")
        return self.from_number


__all__ = ["API_VERSION", "SIGNATURE_HEADER", "TwilioApi", "TwilioChannel", "auth_token", "forbidden", "send_error", "twiml_answer",
           "verified_params"]
