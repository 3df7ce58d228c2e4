"""The message store through the API: search, inspect, reprocess (audited), edit, roles."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from labflow.db import session_scope
from labflow.models import AuditEvent, InboundMessage
from tests.support import (
    DARA,
    INTERFACE,
    PANREACTIVE,
    json_event,
    message_status,
    signed_headers,
    wait_for,
)

from .conftest import bearer, hl7_message, new_control_id

HL7_INTERFACE = "hl7lis"  # configured with a signing secret in tests/conftest.py


def post(client, body: bytes, content_type: str, interface: str = INTERFACE) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/inbound/{interface}", content=body, headers=signed_headers(body, content_type)
    )
    assert response.status_code in (200, 202), response.text
    if content_type == "application/hl7-v2":
        return {"message_id": response.headers["x-labflow-message-id"]}
    result: dict[str, Any] = response.json()
    return result


def send_json(client, mrn: str, facts: list[dict[str, Any]], **extra: Any) -> str:
    message_id: str = post(client, json_event(mrn, facts, **extra), "application/json")[
        "message_id"
    ]
    return message_id


def search(client, token: str, **params: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/messages", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in rows}


def audit_events(subject_id: str, action: str) -> list[AuditEvent]:
    with session_scope() as s:
        return list(
            s.scalars(
                select(AuditEvent).where(
                    AuditEvent.subject_id == subject_id, AuditEvent.action == action
                )
            )
        )


@pytest.fixture()
def failing_evaluator(monkeypatch):
    """Processing fails (say a bug in a rule) and a message is parked after one attempt."""
    from labflow.services import processing
    from labflow.settings import get_settings

    real = processing.evaluate

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("rule engine unavailable")

    monkeypatch.setattr(get_settings(), "max_attempts", 1)
    monkeypatch.setattr(processing, "evaluate", broken)

    def repair() -> None:
        monkeypatch.setattr(processing, "evaluate", real)

    return repair


def test_search_by_mrn_accession_type_status_interface_and_time(
    client, tokens, embedded_worker, mrn
) -> None:
    token = tokens["technologist"]
    started = datetime.now(UTC) - timedelta(seconds=1)
    accession = f"ACC{mrn[-8:]}"
    processed = send_json(client, mrn, [DARA], accession=accession, message_type="labflow.therapy")
    parked = send_json(client, mrn, [{**PANREACTIVE, "interpretation": "maybe"}])
    wait_for(lambda: message_status(processed) == "processed")
    ended = datetime.now(UTC) + timedelta(seconds=1)

    assert ids(search(client, token, mrn=mrn)) == {processed, parked} or ids(
        search(client, token, mrn=mrn)
    ) == {processed}  # a body that cannot be mapped may carry no MRN
    assert ids(search(client, token, accession=accession)) == {processed}
    assert ids(search(client, token, mrn=mrn, message_type="labflow.therapy")) == {processed}
    assert ids(search(client, token, mrn=mrn, status="processed")) == {processed}
    assert parked in ids(search(client, token, status="parked", interface=INTERFACE))
    assert not ids(search(client, token, mrn=mrn, interface=HL7_INTERFACE))
    window = {"received_from": started.isoformat(), "received_to": ended.isoformat()}
    assert {processed, parked} <= ids(search(client, token, **window, limit="500"))
    before = {"received_to": started.isoformat(), "accession": accession}
    assert search(client, token, **before) == []
    # The same instant written with another UTC offset finds the same messages.
    local = timezone(timedelta(hours=2))
    shifted = {
        "received_from": started.astimezone(local).isoformat(),
        "received_to": ended.astimezone(local).isoformat(),
        "accession": accession,
    }
    assert ids(search(client, token, **shifted)) == {processed}


def test_search_hl7_by_message_type_and_accession(client, tokens, mrn) -> None:
    body = hl7_message("oru_antibody_screen_dtt.hl7", mrn=mrn, control_id=new_control_id())
    message_id = post(client, body, "application/hl7-v2", interface=HL7_INTERFACE)["message_id"]
    rows = search(
        client,
        tokens["integration"],
        mrn=mrn,
        interface=HL7_INTERFACE,
        message_type="ORU^R01",
        accession="ACC20260302-17",
    )
    assert ids(rows) == {message_id}


def test_detail_shows_body_summary_errors_attempts_and_decisions(
    client, tokens, embedded_worker, mrn
) -> None:
    token = tokens["auditor"]  # reading is open to every role
    body = json_event(mrn, [DARA, PANREACTIVE])
    message_id = post(client, body, "application/json")["message_id"]
    wait_for(lambda: message_status(message_id) == "processed")
    detail = client.get(f"/api/v1/messages/{message_id}", headers=bearer(token)).json()
    assert json.loads(detail["body"]) == json.loads(body)
    assert detail["parsed"]["facts"] == {"therapy": 1, "antibody_screen": 1}
    assert (detail["status"], detail["attempts"], detail["errors"]) == ("processed", 1, [])
    assert len(detail["decisions"]) == 1
    decisions = client.get(f"/api/v1/patients/{mrn}/decisions", headers=bearer(token)).json()
    assert detail["decisions"][0] in json.dumps(decisions)

    broken = json_event(mrn, [{**PANREACTIVE, "interpretation": "maybe"}])
    parked_id = post(client, broken, "application/json")["message_id"]
    parked = client.get(f"/api/v1/messages/{parked_id}", headers=bearer(token)).json()
    assert parked["status"] == "parked" and parked["decisions"] == []
    assert any("interpretation" in e for e in parked["errors"])
    assert client.get("/api/v1/messages/no-such-id", headers=bearer(token)).status_code == 404


def test_reprocess_one_parked_message_needs_a_reason_and_is_audited(
    client, tokens, embedded_worker, mrn, failing_evaluator
) -> None:
    message_id = send_json(client, mrn, [DARA, PANREACTIVE])
    wait_for(lambda: message_status(message_id) == "parked")
    failing_evaluator()  # the fix is deployed
    url = f"/api/v1/messages/{message_id}/reprocess"
    headers = bearer(tokens["technologist"])
    assert client.post(url, json={}, headers=headers).status_code == 422
    assert client.post(url, json={"reason": ""}, headers=headers).status_code == 422
    reason = "rule engine restored after outage INC-4711"
    response = client.post(url, json={"reason": reason}, headers=headers)
    assert response.status_code == 200, response.text
    wait_for(lambda: message_status(message_id) == "processed")
    (event,) = audit_events(message_id, "message.reprocess")
    assert event.reason == reason
    assert event.actor.startswith("user:test-technologist")
    detail = client.get(f"/api/v1/messages/{message_id}", headers=headers).json()
    assert detail["reprocess_reason"] == reason and len(detail["decisions"]) == 1


def test_reprocess_a_filtered_set(client, tokens, embedded_worker, mrn, failing_evaluator) -> None:
    parked = [send_json(client, mrn, [DARA]), send_json(client, mrn, [PANREACTIVE])]
    for message_id in parked:
        wait_for(lambda m=message_id: message_status(m) == "parked")
    failing_evaluator()
    params = {"mrn": mrn, "status": "parked"}
    technologist = client.post(
        "/api/v1/messages/reprocess",
        params=params,
        json={"reason": "outage over"},
        headers=bearer(tokens["technologist"]),
    )
    assert technologist.status_code == 403  # bulk reprocessing is for supervisors
    response = client.post(
        "/api/v1/messages/reprocess",
        params=params,
        json={"reason": "outage over"},
        headers=bearer(tokens["supervisor"]),
    )
    assert response.status_code == 200, response.text
    assert set(response.json()["reprocessed"]) == set(parked)
    for message_id in parked:
        wait_for(lambda m=message_id: message_status(m) == "processed")
        assert len(audit_events(message_id, "message.reprocess")) == 1


def test_edited_copy_is_applied_and_the_original_left_as_it_was(
    client, tokens, embedded_worker, mrn
) -> None:
    broken = json_event(mrn, [DARA, {**PANREACTIVE, "interpretation": "pos"}])
    original_id = post(client, broken, "application/json")["message_id"]
    assert message_status(original_id) == "parked"
    url = f"/api/v1/messages/{original_id}/edit"
    corrected = json_event(mrn, [DARA, PANREACTIVE]).decode()
    headers = bearer(tokens["supervisor"])
    assert client.post(url, json={"body": corrected}, headers=headers).status_code == 422
    reason = "LIS sent 'pos' for positive; confirmed with the bench"
    response = client.post(url, json={"body": corrected, "reason": reason}, headers=headers)
    assert response.status_code == 200, response.text
    copy = response.json()
    assert copy["original_id"] == original_id and copy["id"] != original_id
    wait_for(lambda: message_status(copy["id"]) == "processed")

    copy_detail = client.get(f"/api/v1/messages/{copy['id']}", headers=headers).json()
    assert copy_detail["body"] == corrected and len(copy_detail["decisions"]) == 1
    assert copy_detail["reprocess_reason"] == reason
    assert copy_detail["submitted_by"].startswith("user:test-supervisor")
    assert copy_detail["mrn"] == mrn  # findable in the store like any message
    assert copy["id"] in ids(search(client, tokens["technologist"], mrn=mrn))
    original = client.get(f"/api/v1/messages/{original_id}", headers=headers).json()
    assert original["status"] == "parked"
    assert original["body"] == broken.decode()
    assert original["decisions"] == [] and original["copies"] == [copy["id"]]
    (event,) = audit_events(copy["id"], "message.copied_for_reprocess")
    assert event.reason == reason


def test_roles_and_authentication(client, tokens, mrn) -> None:
    broken = json_event(mrn, [{**PANREACTIVE, "interpretation": "maybe"}])
    message_id = post(client, broken, "application/json")["message_id"]
    reprocess = f"/api/v1/messages/{message_id}/reprocess"
    edit = f"/api/v1/messages/{message_id}/edit"
    reason = {"reason": "trying"}
    edited = {"reason": "trying", "body": "{}"}

    assert client.get("/api/v1/messages").status_code == 401
    assert client.get(f"/api/v1/messages/{message_id}").status_code == 401
    assert client.post(reprocess, json=reason).status_code == 401
    bad = bearer("lf_not-a-token")
    assert client.get("/api/v1/messages", headers=bad).status_code == 401
    auditor = bearer(tokens["auditor"])
    assert client.post(reprocess, json=reason, headers=auditor).status_code == 403
    assert client.post(edit, json=edited, headers=auditor).status_code == 403
    assert (
        client.post("/api/v1/messages/reprocess", json=reason, headers=auditor).status_code == 403
    )
    technologist = bearer(tokens["technologist"])
    assert client.post(edit, json=edited, headers=technologist).status_code == 403
    assert audit_events(message_id, "message.reprocess") == []
    assert message_status(message_id) == "parked"
    with session_scope() as s:
        assert s.get(InboundMessage, message_id).reprocess_reason is None


def test_bulk_reprocess_without_any_filter_is_refused(client, tokens) -> None:
    response = client.post(
        "/api/v1/messages/reprocess",
        json={"reason": "replay everything"},
        headers={"Authorization": f"Bearer {tokens['supervisor']}"},
    )
    assert response.status_code == 409
    assert "filter" in response.json()["detail"]
