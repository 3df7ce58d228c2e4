"""Standard Webhooks signatures (the `standardwebhooks` package), in and out."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError, hmac_data


class SignatureError(Exception):
    """Missing, malformed or wrong signature, or a timestamp outside the tolerance."""


def verify(secret: str, body: bytes, headers: Mapping[str, str]) -> str:
    """Check the signature over the raw body; return the webhook id."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        _verify_bytes(secret, body, lowered)
    else:
        try:
            Webhook(secret).verify(text, lowered, json_parse=False)
        except WebhookVerificationError as exc:
            raise SignatureError(str(exc)) from exc
        except Exception as exc:  # malformed header values
            raise SignatureError("malformed signature headers") from exc
    webhook_id = lowered["webhook-id"]
    if "." in webhook_id or len(webhook_id) > 255:
        raise SignatureError("webhook-id must be at most 255 characters without '.'")
    return webhook_id


def _verify_bytes(secret: str, body: bytes, headers: Mapping[str, str]) -> None:
    # The reference library decodes the body as text; a non-UTF-8 body (some HL7 v2 senders
    # use Latin-1) is checked here with the same scheme over the exact bytes.
    webhook = Webhook(secret)
    msg_id, stamp, sig = (
        headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if not (msg_id and stamp and sig):
        raise SignatureError("Missing required headers")
    try:
        sent = datetime.fromtimestamp(float(stamp), tz=UTC)
    except ValueError as exc:
        raise SignatureError("Invalid Signature Headers") from exc
    if abs((datetime.now(UTC) - sent).total_seconds()) > 300:
        raise SignatureError("Message timestamp outside tolerance")
    expected = hmac_data(webhook._whsecret, f"{msg_id}.{int(sent.timestamp())}.".encode() + body)
    for item in sig.split(" "):
        version, _, value = item.partition(",")
        if version == "v1" and hmac.compare_digest(expected, _b64(value)):
            return
    raise SignatureError("No matching signature found")


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value)
    except ValueError:
        return b""


def sign(secret: str, msg_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """Headers for an outbound (or test) webhook."""
    at = at or datetime.now(UTC)
    stamp = int(at.timestamp())
    digest = hmac_data(Webhook(secret)._whsecret, f"{msg_id}.{stamp}.".encode() + body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
