"""Inbound webhooks: signatures, idempotency, conflicts and bad input (contract section 2)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

from labflow.db import session_scope
from labflow.models import InboundMessage
from tests.support import INTERFACE, json_event, message_status, signed_headers, wait_for

SCREEN = {
    "kind": "antibody_screen",
    "effective": "2026-03-01T10:00:00Z",
    "interpretation": "negative",
}


def _post(client, body: bytes, headers: dict[str, str], interface: str = INTERFACE):
    return client.post(f"/api/v1/inbound/{interface}", content=body, headers=headers)


def _count() -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(InboundMessage))


def test_signed_message_is_stored_and_accepted(client, mrn) -> None:
    body = json_event(mrn, [SCREEN])
    response = _post(client, body, signed_headers(body, "application/json"))
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    with session_scope() as s:
        stored = s.get(InboundMessage, response.json()["message_id"])
        assert stored.body == body and stored.mrn == mrn


def test_bad_signature_wrong_secret_and_missing_headers_are_401_and_store_nothing(
    client, mrn
) -> None:
    body = json_event(mrn, [SCREEN])
    headers = signed_headers(body, "application/json")
    before = _count()
    tampered = dict(headers, **{"webhook-signature": "v1,AAAA"})
    assert _post(client, body, tampered).status_code == 401
    other = signed_headers(
        body, "application/json", secret="whsec_b3RoZXItc2VjcmV0LXZhbHVlLTEyMzQ1Njc4"
    )
    assert _post(client, body, other).status_code == 401
    assert _post(client, body, {"content-type": "application/json"}).status_code == 401
    assert _post(client, body + b" ", headers).status_code == 401  # body changed after signing
    assert _post(client, body, headers, interface="unknown-lis").status_code == 401
    assert _count() == before


def test_timestamp_more_than_five_minutes_off_is_rejected(client, mrn) -> None:
    body = json_event(mrn, [SCREEN])
    for skew in (-301, 301):
        response = _post(
            client, body, signed_headers(body, "application/json", at=time.time() + skew)
        )
        assert response.status_code == 401, skew
    assert (
        _post(
            client, body, signed_headers(body, "application/json", at=time.time() - 200)
        ).status_code
        == 202
    )


def test_same_id_same_body_is_a_duplicate_with_no_new_effect(client, mrn) -> None:
    body = json_event(mrn, [SCREEN])
    headers = signed_headers(body, "application/json")
    first = _post(client, body, headers)
    before = _count()
    again = _post(
        client, body, signed_headers(body, "application/json", webhook_id=headers["webhook-id"])
    )
    assert again.status_code == 200
    assert again.json() == {
        "message_id": first.json()["message_id"],
        "status": "duplicate",
        "errors": [],
    }
    assert _count() == before


def test_same_id_different_body_is_409_and_quarantined(client, mrn) -> None:
    body = json_event(mrn, [SCREEN])
    headers = signed_headers(body, "application/json")
    first = _post(client, body, headers).json()["message_id"]
    other = json_event(mrn, [dict(SCREEN, interpretation="positive")])
    response = _post(
        client, other, signed_headers(other, "application/json", webhook_id=headers["webhook-id"])
    )
    assert response.status_code == 409
    with session_scope() as s:
        kept = s.get(InboundMessage, response.json()["message_id"])
        assert kept.status == "quarantined" and kept.body == other
        assert kept.original_id == first


def test_unparseable_and_unmappable_bodies_are_kept_and_parked(client, tokens, mrn) -> None:
    cases = {
        "malformed json": (b'{"patient": {"mrn": ', "application/json"),
        "schema violation": (json_event(mrn, [{"kind": "nonsense"}]), "application/json"),
        "no mrn": (b'{"patient": {}, "facts": []}', "application/json"),
        "invalid fhir": (b'{"resourceType": "Observation", "status": 12}', "application/fhir+json"),
        "broken hl7": (b"this is not hl7", "application/hl7-v2"),
        "unknown code": (json.dumps({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "99999-9"}]},
            "subject": {"identifier": {"value": mrn}},
            "effectiveDateTime": "2026-03-01T10:00:00Z",
            "valueString": "whatever"}).encode(), "application/fhir+json"),
        "unsupported type": (b"<xml/>", "application/xml"),
    }
    auth = {"Authorization": f"Bearer {tokens['technologist']}"}
    for label, (body, content_type) in cases.items():
        response = _post(client, body, signed_headers(body, content_type))
        assert response.status_code in (202, 415), label
        message_id = response.headers.get("x-labflow-message-id") or response.json()["message_id"]
        status = client.get(f"/api/v1/inbound/{message_id}", headers=auth).json()
        assert status["status"] == "parked", label
        assert status["errors"], label
        if label == "unknown code":
            assert "99999-9" in " ".join(status["errors"])
        with session_scope() as s:
            assert s.get(InboundMessage, message_id).body == body, label


def test_oversized_body_is_answered_413_and_kept_for_review(client, tokens, monkeypatch) -> None:
    from labflow.settings import get_settings

    monkeypatch.setattr(get_settings(), "max_body_bytes", 2000)
    body = b'{"patient": {"mrn": "X"}, "facts": [' + b" " * 5000 + b"]}"
    response = _post(client, body, signed_headers(body, "application/json"))
    assert response.status_code == 413
    assert "exceeds" in response.json()["errors"][0]
    with session_scope() as s:
        kept = s.get(InboundMessage, response.json()["message_id"])
        assert kept.status == "parked" and len(kept.body) == 2000


def test_status_endpoint_needs_a_token(client) -> None:
    assert client.get("/api/v1/inbound/anything").status_code == 401


def _hl7(mrn: str, control_id: str) -> bytes:
    text = (Path(__file__).parents[1] / "fixtures/hl7/oru_antibody_screen_dtt.hl7").read_text()
    text = text.replace("LIS000451", control_id).replace("MRN123", mrn)
    return text.replace("\n", "\r").encode()


def test_hl7_v2_is_answered_with_an_ack_echoing_msh10(client, embedded_worker, mrn) -> None:
    body = _hl7(mrn, f"C{uuid.uuid4().hex[:12]}")
    control_id = body.split(b"|")[9].decode()
    response = _post(client, body, signed_headers(body, "application/hl7-v2"))
    assert response.status_code == 202
    assert response.headers["content-type"].startswith("application/hl7-v2")
    segments = response.text.split("\r")
    assert segments[0].startswith("MSH|^~\\&|LABFLOW|LAB|LIS|HOSP|")  # sender and receiver swap
    assert segments[1].split("|")[:3] == ["MSA", "AA", control_id]
    message_id = response.headers["x-labflow-message-id"]
    wait_for(lambda: message_status(message_id) == "processed")


def test_hl7_resend_with_a_new_webhook_id_is_a_duplicate_by_msh10(client, mrn) -> None:
    body = _hl7(mrn, f"C{uuid.uuid4().hex[:12]}")
    first = _post(client, body, signed_headers(body, "application/hl7-v2"))
    before = _count()
    again = _post(client, body, signed_headers(body, "application/hl7-v2"))  # new webhook-id
    assert again.status_code == 200
    assert again.headers["x-labflow-status"] == "duplicate"
    assert again.headers["x-labflow-message-id"] == first.headers["x-labflow-message-id"]
    assert "|AA|" in again.text
    assert _count() == before


def test_broken_hl7_gets_an_ae_ack_with_an_error_segment(client) -> None:
    body = b"MSH|^~\\&|LIS|HOSP|LABFLOW|LAB|20260302101500||ORU^R01|X1|P|2.5.1\rPID|1||\r"
    response = _post(client, body, signed_headers(body, "application/hl7-v2"))
    assert response.status_code == 202
    segments = response.text.split("\r")
    assert segments[1].startswith("MSA|AE|X1")
    assert any(s.startswith("ERR|") for s in segments)
