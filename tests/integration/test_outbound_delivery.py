"""Outbound webhooks over real HTTP: signed, once each, in order, retried, logged, replayable."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import hl7
import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from labflow.db import session_scope
from labflow.models import DeliveryAttempt, OutboundDelivery
from labflow.services import delivery
from tests.support import INTERFACE, json_event, message_status, signed_headers, wait_for

from .conftest import Receiver, bearer

DARA = {
    "kind": "therapy",
    "effective": "2026-05-01T09:00:00Z",
    "agent": "daratumumab",
    "route": "IV",
    "record": "administered",
    "first_dose": "2026-01-05",
    "last_dose": "2026-05-01",
}
PANREACTIVE = {
    "kind": "antibody_screen",
    "effective": "2026-05-10T08:00:00Z",
    "interpretation": "positive",
    "cells": {"I": "1+", "II": "1+", "III": "1+"},
}
SCREEN_NEGATIVE = {
    "kind": "antibody_screen",
    "effective": "2026-05-12T08:00:00Z",
    "interpretation": "negative",
    "cells": {"I": "0", "II": "0", "III": "0"},
}
Subscribe = Callable[..., tuple[str, str]]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@pytest.fixture()
def subscribe(client, tokens) -> Iterator[Subscribe]:
    """Create subscriptions through the API; disable them afterwards (the DB is shared)."""
    made: list[str] = []

    def create(receiver: Receiver, fmt: str = "json", events: list[str] | None = None):
        secret = new_secret()
        response = client.post(
            "/api/v1/subscriptions",
            json={"url": receiver.url, "secret": secret, "format": fmt, "events": events or ["*"]},
            headers=bearer(tokens["admin"]),
        )
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])
        return response.json()["id"], secret

    yield create
    for sub_id in made:
        client.post(
            f"/api/v1/subscriptions/{sub_id}/enabled",
            json={"enabled": False},
            headers=bearer(tokens["admin"]),
        )


def send(client, mrn: str, facts: list[dict[str, Any]]) -> str:
    body = json_event(mrn, facts)
    response = client.post(
        f"/api/v1/inbound/{INTERFACE}", content=body, headers=signed_headers(body, "application/json")
    )
    assert response.status_code == 202, response.text
    message_id: str = response.json()["message_id"]
    wait_for(lambda: message_status(message_id) == "processed")
    return message_id


def deliveries(client, tokens, sub_id: str) -> list[dict[str, Any]]:
    response = client.get(
        f"/api/v1/subscriptions/{sub_id}/deliveries", headers=bearer(tokens["integration"])
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_probe(client, tokens, embedded_worker, receiver, subscribe, mrn) -> None:
    sub_id, secret = subscribe(receiver)
    send(client, mrn, [DARA, PANREACTIVE])
    wait_for(lambda: all(d["status"] == "delivered" for d in deliveries(client, tokens, sub_id)) and deliveries(client, tokens, sub_id))
    for d in deliveries(client, tokens, sub_id):
        print(d)
    for r in receiver.all():
        print(r.headers.get("webhook-id"), r.body[:400])
    assert 0
