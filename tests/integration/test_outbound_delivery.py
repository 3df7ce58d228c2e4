"""Outbound webhooks over real HTTP: signed, once each, in order, retried, logged, replayable."""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import hl7
import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from labflow.db import session_scope
from labflow.models import Decision, DeliveryAttempt, OutboundDelivery, utcnow
from labflow.services import delivery
from tests.support import (
    DARA,
    INTERFACE,
    PANREACTIVE,
    json_event,
    message_status,
    signed_headers,
    wait_for,
)

from .conftest import Received, Receiver, bearer

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


@dataclass
class Patient:
    """One test patient; knows which outbound events are about it.

    A subscription gets every patient's events, and work left over from earlier tests in the
    session may still be delivered while this test runs, so tests look only at their own.
    """

    client: Any
    tokens: dict[str, str]
    mrn: str
    prefixes: list[str] = field(default_factory=list)

    def send(self, facts: list[dict[str, Any]]) -> str:
        body = json_event(self.mrn, facts)
        response = self.client.post(
            f"/api/v1/inbound/{INTERFACE}",
            content=body,
            headers=signed_headers(body, "application/json"),
        )
        assert response.status_code == 202, response.text
        message_id: str = response.json()["message_id"]
        wait_for(lambda: message_status(message_id) == "processed")
        with session_scope() as s:
            decision = s.scalars(select(Decision.id).where(Decision.message_id == message_id)).one()
        self.prefixes.append(f"evt_{decision}_")  # event ids are evt_<decision id>_<n>
        return message_id

    def _mine(self, event_id: str) -> bool:
        return event_id.startswith(tuple(self.prefixes))

    def deliveries(self, sub_id: str) -> list[dict[str, Any]]:
        response = self.client.get(
            f"/api/v1/subscriptions/{sub_id}/deliveries", headers=bearer(self.tokens["integration"])
        )
        assert response.status_code == 200, response.text
        return [d for d in response.json() if self._mine(d["event_id"])]

    def received(self, receiver: Receiver, *, accepted_only: bool = True) -> list[Received]:
        requests = receiver.accepted() if accepted_only else receiver.all()
        return [r for r in requests if self._mine(r.headers["webhook-id"])]

    def wait_delivered(self, sub_id: str) -> list[dict[str, Any]]:
        def done() -> list[dict[str, Any]] | None:
            rows = self.deliveries(sub_id)
            return rows if rows and all(d["status"] == "delivered" for d in rows) else None

        result: list[dict[str, Any]] = wait_for(done, timeout=15)
        return result


@pytest.fixture()
def patient(client, tokens, mrn) -> Patient:
    return Patient(client, tokens, mrn)


def verified(secret: str, request) -> dict[str, Any]:
    """The payload, after checking the Standard Webhooks signature over the raw body."""
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload


def test_events_arrive_signed_with_mrn_codes_and_rule_ids(
    embedded_worker, receiver, subscribe, patient
) -> None:
    sub_id, secret = subscribe(receiver)
    patient.send([DARA, PANREACTIVE])
    rows = patient.wait_delivered(sub_id)
    received = patient.received(receiver)
    assert [r.headers["webhook-id"] for r in received] == [d["event_id"] for d in rows]
    payloads = [verified(secret, r) for r in received]
    assert {p["event"] for p in payloads} >= {
        "flag.raised",
        "requirement.added",
        "reflex.requested",
        "decision.recorded",
    }
    for request, payload in zip(received, payloads, strict=True):
        assert request.headers["content-type"] == "application/json"
        assert payload["patient"]["mrn"] == patient.mrn
        assert payload["event_id"] == request.headers["webhook-id"]
        assert payload["code"] and payload["rules"]
        assert all(rule.startswith("R-") for rule in payload["rules"])
    by_code = {p["code"]: p for p in payloads}
    assert by_code["IAT_INTERFERENCE_SUSPECTED"]["event"] == "flag.raised"
    assert "R-C1" in by_code["IAT_INTERFERENCE_SUSPECTED"]["rules"]
    assert by_code["DTT_ANTIBODY_SCREEN"]["event"] == "reflex.requested"
    assert by_code["DTT_TREATED_SCREEN"]["event"] == "requirement.added"
    assert "R-C1" in by_code["DECISION"]["rules"]
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(new_secret()).verify(received[0].body, received[0].headers)


def test_receiver_down_then_back_gets_every_event_once_in_order(
    embedded_worker, receiver, subscribe, patient, monkeypatch
) -> None:
    monkeypatch.setattr(delivery, "RETRY_SCHEDULE", (0.2,) * 50)  # seconds, not hours
    receiver.mode = "down"
    sub_id, secret = subscribe(receiver)
    patient.send([DARA])
    patient.send([PANREACTIVE])
    patient.send([SCREEN_NEGATIVE])
    wait_for(lambda: len(patient.received(receiver, accepted_only=False)) >= 4, timeout=15)
    failing = patient.deliveries(sub_id)
    assert failing[0]["status"] == "pending" and failing[0]["last_error"] == "HTTP 503"
    receiver.mode = "ok"
    rows = patient.wait_delivered(sub_id)
    ids = [r.headers["webhook-id"] for r in patient.received(receiver)]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert ids == [d["event_id"] for d in rows]  # the outbox order, i.e. decision order
    decisions = [verified(secret, r)["decision_id"] for r in patient.received(receiver)]
    assert len(set(decisions)) == 3
    assert decisions == sorted(decisions, key=decisions.index)  # grouped, never interleaved
    assert rows[0]["attempts"] > 1
    # Every attempt is logged: one row per request the receiver saw (all patients).
    with session_scope() as s:
        attempts = select(func.count()).select_from(DeliveryAttempt)
        attempts = attempts.join(
            OutboundDelivery, OutboundDelivery.id == DeliveryAttempt.delivery_id
        ).where(OutboundDelivery.subscription_id == sub_id)
        logged = s.scalar(attempts)
        failed = s.scalar(attempts.where(DeliveryAttempt.status_code == 503))
    assert logged == len(receiver.all())
    assert failed == len(receiver.all()) - len(receiver.accepted())


def test_two_senders_for_one_patient_keep_the_events_in_order(receiver, mrn) -> None:
    # While one worker waits on a slow endpoint, the sweeper (or the next decision) hands the
    # same patient's events to another worker: it must not send a later event first.
    from labflow.services import subscriptions
    from labflow.services.outbox import record_events
    from labflow.settings import OutboundWebhook

    receiver.delay = 0.4
    origin = uuid.uuid4().hex
    with session_scope() as s:  # the outbox rows a decision writes, without the pipeline
        sub = subscriptions.create(
            s, OutboundWebhook(url=receiver.url, secret=new_secret()), actor="test"
        )
        events = [
            {"event": "flag.raised", "code": f"CODE_{i}", "status": "open", "rules": ["R-C1"]}
            for i in range(3)
        ]
        record_events(s, mrn=mrn, origin_id=origin, occurred_at=utcnow(), events=events)
        s.commit()
    try:
        senders = [
            threading.Thread(target=delivery.deliver_events, args=(session_scope, sub.id, mrn))
            for _ in range(3)
        ]
        for thread in senders:
            thread.start()
            time.sleep(0.1)

        def mine() -> list[Received]:
            return [r for r in receiver.all() if origin in r.headers["webhook-id"]]

        wait_for(lambda: len(mine()) == 3, timeout=10)
        for thread in senders:
            thread.join(10)
        assert [r.json()["code"] for r in mine()] == ["CODE_0", "CODE_1", "CODE_2"]
        assert receiver.most_in_flight == 1  # the next one only after the previous answer
    finally:
        with session_scope() as s:
            subscriptions.set_enabled(s, sub.id, False, actor="test")


def test_410_disables_the_subscription_and_stops_deliveries(
    client, tokens, embedded_worker, receiver, subscribe, patient
) -> None:
    receiver.mode = "gone"
    sub_id, _secret = subscribe(receiver)
    patient.send([DARA, PANREACTIVE])

    def subscription() -> dict[str, Any]:
        listed = client.get("/api/v1/subscriptions", headers=bearer(tokens["supervisor"])).json()
        found: dict[str, Any] = next(s for s in listed if s["id"] == sub_id)
        return found

    wait_for(lambda: not subscription()["enabled"], timeout=15)
    assert "410" in subscription()["disabled_reason"]
    answered = len(receiver.all())  # one, unless another patient's sender raced it
    assert answered in (1, 2)

    def everyone() -> list[dict[str, Any]]:
        return list(
            client.get(
                f"/api/v1/subscriptions/{sub_id}/deliveries", headers=bearer(tokens["integration"])
            ).json()
        )

    assert any(d["attempts"] == 1 and "410" in (d["last_error"] or "") for d in everyone())
    # Waiting events are paused, not pending: the sweeper must not re-queue them forever.
    # (An event written by a decision that read the subscription just before it was disabled
    # is paused by the first worker that finds it, hence the wait.)
    wait_for(lambda: {d["status"] for d in everyone()} == {"paused"}, timeout=10)
    rows = patient.deliveries(sub_id)
    patient.send([SCREEN_NEGATIVE])  # a later decision: nothing for this endpoint
    time.sleep(1.5)  # three sweeps
    assert len(receiver.all()) == answered
    assert len(patient.deliveries(sub_id)) == len(rows)

    # The endpoint is fixed and an admin enables it again: the paused events go out, in order.
    receiver.mode = "ok"
    response = client.post(
        f"/api/v1/subscriptions/{sub_id}/enabled",
        json={"enabled": True},
        headers=bearer(tokens["admin"]),
    )
    assert response.status_code == 200, response.text
    rows = patient.wait_delivered(sub_id)
    assert [r.headers["webhook-id"] for r in patient.received(receiver)] == [
        d["event_id"] for d in rows
    ]


def test_manual_replay_sends_a_failed_and_a_delivered_event_again(
    client, tokens, embedded_worker, receiver, subscribe, patient, monkeypatch
) -> None:
    monkeypatch.setattr(delivery, "RETRY_SCHEDULE", (0.1,))  # give up after two attempts
    receiver.mode = "down"
    sub_id, secret = subscribe(receiver, events=["decision.recorded"])
    patient.send([DARA, PANREACTIVE])
    wait_for(lambda: patient.deliveries(sub_id)[0]["status"] == "failed", timeout=15)
    (failed,) = patient.deliveries(sub_id)
    assert (failed["attempts"], failed["last_error"]) == (2, "HTTP 503")
    receiver.mode = "ok"
    time.sleep(1)  # the sweeper leaves a failed delivery alone
    assert patient.received(receiver) == []

    def replay() -> None:
        response = client.post(
            f"/api/v1/subscriptions/deliveries/{failed['id']}/replay",
            headers=bearer(tokens["admin"]),
        )
        assert response.status_code == 200, response.text

    replay()
    wait_for(lambda: len(patient.received(receiver)) == 1, timeout=10)
    replay()  # delivered, but say the receiver lost it: the same event, the same webhook-id
    wait_for(lambda: len(patient.received(receiver)) == 2, timeout=10)
    first, second = patient.received(receiver)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == failed["event_id"]
    assert verified(secret, second)["event"] == "decision.recorded"
    (row,) = patient.deliveries(sub_id)
    assert (row["status"], row["attempts"]) == ("delivered", 1)
    forbidden = client.post(
        f"/api/v1/subscriptions/deliveries/{failed['id']}/replay",
        headers=bearer(tokens["integration"]),
    )
    assert forbidden.status_code == 403


def test_fhir_format_sends_flag_and_service_request(
    embedded_worker, receiver, subscribe, patient
) -> None:
    sub_id, secret = subscribe(receiver, fmt="fhir", events=["flag.raised", "reflex.requested"])
    patient.send([DARA, PANREACTIVE])
    patient.wait_delivered(sub_id)
    resources = {}
    for request in patient.received(receiver):
        assert request.headers["content-type"] == "application/fhir+json"
        resource = verified(secret, request)
        assert resource["subject"]["identifier"]["value"] == patient.mrn
        resources[resource["code"]["coding"][0]["code"]] = resource
    flag = resources["IAT_INTERFERENCE_SUSPECTED"]
    assert (flag["resourceType"], flag["status"]) == ("Flag", "active")
    rules = {e["valueString"] for e in flag["extension"] if "valueString" in e}
    assert "R-C1" in rules
    order = resources["DTT_ANTIBODY_SCREEN"]
    assert (order["resourceType"], order["intent"]) == ("ServiceRequest", "order")


def test_hl7v2_format_sends_oml_o21_for_reflex_orders(
    embedded_worker, receiver, subscribe, patient
) -> None:
    sub_id, secret = subscribe(receiver, fmt="hl7v2", events=["reflex.requested", "flag.raised"])
    patient.send([DARA, PANREACTIVE])
    rows = patient.wait_delivered(sub_id)
    kinds: dict[str, set[str]] = {}
    for request, row in zip(patient.received(receiver), rows, strict=True):
        assert request.headers["content-type"] == "application/hl7-v2"
        Webhook(secret).verify(request.body, request.headers, json_parse=False)  # raises if bad
        message = hl7.parse(request.body.decode())
        assert str(message.segment("PID")[3][0][0]) == patient.mrn
        kinds.setdefault(row["event"], set()).add(str(message.segment("MSH")[9]))
    assert kinds["reflex.requested"] == {"OML^O21^OML_O21"}
    assert kinds["flag.raised"] == {"ORU^R01^ORU_R01"}
