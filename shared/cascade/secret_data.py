"""Secret event data (an OTP code): never stored, logged or reported in clear.

A scenario names such fields in ``secret_data``. At ingest they are taken out of the cascade's
data and sealed with KMS (the template's ``SecretDataKey``, ``SECRET_KEY_ARN``) into the cascade
item's ``secret_blob``, bound to the cascade by the encryption context. Only the step function
opens it, and only to render the message; the blob is removed when the cascade finishes. Conditions
(``when``), operator tasks and every view see the data without these fields."""

from __future__ import annotations

import base64
import json
from typing import Any

from cascade.aws import client
from cascade.errors import CascadeError

MASK = "***"


class SecretKeyMissing(CascadeError):
    """A scenario has secret data but no key is configured to seal it."""


def split(data: dict[str, Any], fields: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data without the secret fields, the secret fields that are present)."""
    secret = {k: data[k] for k in fields if k in data}
    return {k: v for k, v in data.items() if k not in secret}, secret


def seal(cascade_id: str, secret: dict[str, Any], key_arn: str) -> str:
    """The secret fields encrypted under ``key_arn`` for this cascade (base64 of KMS's ciphertext)."""
    if not key_arn:
        raise SecretKeyMissing("SECRET_KEY_ARN is not set: refusing to store secret data in clear")
    blob = client("kms").encrypt(KeyId=key_arn, Plaintext=json.dumps(secret, ensure_ascii=False).encode(),
                                 EncryptionContext={"cascade_id": cascade_id})["CiphertextBlob"]
    return base64.b64encode(blob).decode()


def open_(cascade: dict[str, Any]) -> dict[str, Any]:
    """The cascade's secret fields in clear ({} if it has none, or no longer has them)."""
    sealed = cascade.get("secret_blob")
    if not sealed:
        return {}
    plain = client("kms").decrypt(CiphertextBlob=base64.b64decode(sealed),
                                  EncryptionContext={"cascade_id": cascade["cascade_id"]})["Plaintext"]
    value = json.loads(plain)
    return value if isinstance(value, dict) else {}


def scrub(text: str, secret: dict[str, Any]) -> str:
    """``text`` with every secret value masked: for error messages that might quote one."""
    for value in secret.values():
        shown = str(value)
        for form in (shown, " ".join(shown)):  # also as a call reads it, digit by digit
            if form.strip():
                text = text.replace(form, MASK)
    return text


__all__ = ["MASK", "SecretKeyMissing", "open_", "scrub", "seal", "split"]
