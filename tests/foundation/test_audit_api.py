"""Auditors read the trail and check the chain over the API."""

from __future__ import annotations

from tests.support import INTERFACE, json_event, message_status, signed_headers, wait_for

SCREEN = {
    "kind": "antibody_screen",
    "effective": "2026-05-10T08:00:00Z",
    "interpretation": "positive",
    "cells": {"I": "1+", "II": "1+", "III": "1+"},
}


def test_auditor_sees_what_a_message_caused_and_the_chain_verifies(
    client, embedded_worker, tokens, mrn
) -> None:
    body = json_event(mrn, [SCREEN])
    response = client.post(
        f"/api/v1/inbound/{INTERFACE}",
        content=body,
        headers=signed_headers(body, "application/json"),
    )
    message_id = response.json()["message_id"]
    wait_for(lambda: message_status(message_id) == "processed")
    auth = {"Authorization": f"Bearer {tokens['auditor']}"}

    received = client.get("/api/v1/audit", params={"subject_id": message_id}, headers=auth)
    assert received.status_code == 200
    assert [e["action"] for e in received.json()] == ["message.accepted"]
    decided = client.get(
        "/api/v1/audit", params={"action": "decision.recorded", "limit": 1000}, headers=auth
    ).json()
    mine = [e for e in decided if e["after"]["message_id"] == message_id]
    assert len(mine) == 1 and "R-C2" in mine[0]["after"]["rules"]
    assert len(mine[0]["protocol_hash"]) == 64 and len(mine[0]["profile_hash"]) == 64

    verified = client.get("/api/v1/audit/verify", headers=auth).json()
    assert verified["ok"] is True and verified["checked"] > 0


def test_audit_trail_is_not_for_every_role(client, tokens) -> None:
    technologist = {"Authorization": f"Bearer {tokens['technologist']}"}
    assert client.get("/api/v1/audit", headers=technologist).status_code == 403
    assert client.get("/api/v1/audit/verify").status_code == 401
