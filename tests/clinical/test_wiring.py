"""The protocol engine wired into the pipeline: facts accumulate, findings have a lifecycle,
decisions are explainable and taken as of clinical time (issue: protocol engine, part 3-5)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from labflow.db import session_scope
from labflow.models import AuditEvent, Decision
from tests.support import INTERFACE, json_event, message_status, signed_headers, wait_for

# The patient view answers "as of now", so the story is set relative to today.
LAST_DOSE = date.today() - timedelta(days=30)
FIRST_DOSE = LAST_DOSE - timedelta(days=90)


def _at(days_after_last_dose: int, hour: int = 8) -> str:
    moment = datetime.combine(LAST_DOSE + timedelta(days=days_after_last_dose),
                              datetime.min.time(), UTC).replace(hour=hour)
    return moment.isoformat()


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    return day.replace(year=day.year + month // 12, month=month % 12 + 1, day=min(day.day, 28))


def _dara(effective: str | None = None, record: str = "administered") -> dict:
    return {"kind": "therapy", "effective": effective or _at(0, 9), "agent": "daratumumab",
            "route": "IV", "record": record, "first_dose": FIRST_DOSE.isoformat(),
            "last_dose": LAST_DOSE.isoformat()}


def _screen(effective: str, interpretation: str = "positive", method: str = "UNTREATED",
            grade: str = "1+") -> dict:
    cells = {c: grade if interpretation == "positive" else "0" for c in ("I", "II", "III")}
    return {"kind": "antibody_screen", "effective": effective, "interpretation": interpretation,
            "cells": cells, "method": method}


def _send(client, mrn: str, facts: list[dict]) -> str:
    body = json_event(mrn, facts)
    response = client.post(f"/api/v1/inbound/{INTERFACE}", content=body,
                           headers=signed_headers(body, "application/json"))
    assert response.status_code == 202, response.text
    message_id = response.json()["message_id"]
    wait_for(lambda: message_status(message_id) == "processed")
    return message_id


def _patient(client, tokens, mrn: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/patients/{mrn}",
                          headers={"Authorization": f"Bearer {tokens['technologist']}"})
    assert response.status_code == 200, response.text
    return response.json()


def _codes(items: list[dict]) -> set[str]:
    return {i["code"] for i in items}


def test_therapy_history_arriving_late_turns_panreactivity_into_the_dtt_path(
        client, embedded_worker, tokens, mrn) -> None:
    _send(client, mrn, [_screen(_at(20))])
    before = _patient(client, tokens, mrn)
    assert "PANREACTIVE_NO_KNOWN_THERAPY" in _codes(before["flags"])
    assert "IAT_INTERFERENCE_SUSPECTED" not in _codes(before["flags"])
    assert before["crossmatch"]["electronic_allowed"] is False

    # Medication reconciliation finds daratumumab given a month before the screen.
    _send(client, mrn, [_dara(effective=_at(21, 10), record="history")])
    after = _patient(client, tokens, mrn)
    assert "IAT_INTERFERENCE_SUSPECTED" in _codes(after["flags"])
    assert "PANREACTIVE_NO_KNOWN_THERAPY" not in _codes(after["flags"])
    assert "DTT_ANTIBODY_SCREEN" in _codes(after["reflex_orders"])
    assert after["interference"]["active"] is True
    assert after["interference"]["profiles"] == ["anti-CD38"]


def test_patient_view_matches_the_contract(client, embedded_worker, tokens, mrn) -> None:
    _send(client, mrn, [_dara(), _screen(_at(9), "negative", "DTT")])
    view = _patient(client, tokens, mrn)
    therapy = view["therapies"][0]
    assert therapy["agent"] == "daratumumab" and therapy["route"] == "IV"
    assert therapy["last_dose"] == LAST_DOSE.isoformat()
    until = _add_months(LAST_DOSE, 6).isoformat()  # six months after the last dose (R-A2)
    assert therapy["interference_until"][:8] == until[:8]
    assert view["interference"]["until"] == therapy["interference_until"]
    k_neg = next(r for r in view["requirements"] if r["code"] == "K_NEGATIVE_RBC")
    assert k_neg["status"] == "active" and "R-D3" in k_neg["rules"] and k_neg["reason"]
    assert view["crossmatch"]["mode"] in {"ELECTRONIC", "IMMEDIATE_SPIN", "AHG_DTT", "AHG"}
    assert isinstance(view["crossmatch"]["electronic_allowed"], bool)


def test_decisions_are_explained_and_versioned(client, embedded_worker, tokens, mrn) -> None:
    message_id = _send(client, mrn, [_dara(), _screen(_at(9))])
    response = client.get(f"/api/v1/patients/{mrn}/decisions",
                          headers={"Authorization": f"Bearer {tokens['auditor']}"})
    decision = response.json()[-1]
    assert decision["message_id"] == message_id
    assert decision["as_of"].startswith(_at(9)[:16])  # clinical time, not wall clock
    assert decision["protocol"]["id"] and decision["protocol"]["version"]
    assert len(decision["protocol"]["hash"]) == 64 and len(decision["profile_hash"]) == 64
    assert "R-C1" in decision["rules_fired"]
    assert "IAT_INTERFERENCE_SUSPECTED" in decision["added"]
    assert any(line.startswith("R-C1: ") for line in decision["explanation"])


def test_the_same_facts_replayed_later_get_the_same_answer(client, embedded_worker, mrn) -> None:
    facts = [_dara(), _screen(_at(9))]
    first = _send(client, mrn, facts)
    second = _send(client, mrn + "R", facts)  # an identical patient, replayed later
    with session_scope() as s:
        a, b = (s.scalars(select(Decision).where(Decision.message_id == m)).one()
                for m in (first, second))
    assert a.as_of == b.as_of
    assert a.rules_fired == b.rules_fired
    for key in ("flags", "requirements", "reflex_orders", "crossmatch", "fired"):
        assert a.outcome[key] == b.outcome[key], key


def test_a_window_that_ends_proposes_removal_and_only_a_person_removes(
        client, embedded_worker, tokens, mrn) -> None:
    _send(client, mrn, [_dara(), _screen(_at(9), "negative", "DTT")])
    assert "K_NEGATIVE_RBC" in _codes(_patient(client, tokens, mrn)["requirements"])

    # Seven months after the last dose a routine screen is negative: the window has ended.
    _send(client, mrn, [_screen(_at(215), "negative")])
    view = _patient(client, tokens, mrn)
    k_neg = next(r for r in view["requirements"] if r["code"] == "K_NEGATIVE_RBC")
    assert k_neg["status"] == "removal_proposed"  # kept in force until a person decides
    assert "REQUIREMENT_REVIEW_DUE" in _codes(view["flags"])

    url = f"/api/v1/patients/{mrn}/requirements/K_NEGATIVE_RBC/remove"
    reason = "negative standard screen 7 months after last daratumumab dose"
    denied = client.post(url, json={"reason": reason},
                         headers={"Authorization": f"Bearer {tokens['technologist']}"})
    assert denied.status_code == 403
    done = client.post(url, json={"reason": reason},
                       headers={"Authorization": f"Bearer {tokens['supervisor']}"})
    assert done.status_code == 200 and done.json()["status"] == "removed"
    assert "K_NEGATIVE_RBC" not in _codes(_patient(client, tokens, mrn)["requirements"])
    history = client.get(f"/api/v1/patients/{mrn}/decisions",
                         headers={"Authorization": f"Bearer {tokens['auditor']}"}).json()
    assert history[-1]["trigger"].startswith("action:requirement.remove by user:test-supervisor")
    assert history[-1]["removed"] == ["K_NEGATIVE_RBC"] and history[-1]["rules_fired"] == ["R-D4"]
    assert reason in history[-1]["explanation"][0]
    with session_scope() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "requirement.removed")
                          .order_by(AuditEvent.seq.desc())).first()
        assert event.reason == reason and event.actor.startswith("user:test-supervisor")
        assert event.before["status"] == "removal_proposed"


def test_what_if_evaluation_uses_a_posted_profile_and_stores_nothing(client, tokens) -> None:
    auth = {"Authorization": f"Bearer {tokens['supervisor']}"}
    body = {"as_of": _at(9, 9),
            "facts": [_dara(), _screen(_at(9))]}
    with session_scope() as s:
        decisions_before = s.scalar(select(func.count()).select_from(Decision))
    default = client.post("/api/v1/evaluate", json=body, headers=auth)
    assert default.status_code == 200, default.text
    assert "DTT_ANTIBODY_SCREEN" in _codes(default.json()["reflex_orders"])
    no_dtt = client.post("/api/v1/evaluate", json={**body, "profile": {"dtt_available": False}},
                         headers=auth).json()
    assert "SCREEN_NOT_INTERPRETABLE" in _codes(no_dtt["flags"])
    assert "DTT_ANTIBODY_SCREEN" not in _codes(no_dtt["reflex_orders"])
    assert no_dtt["profile_hash"] != default.json()["profile_hash"]
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Decision)) == decisions_before


def test_what_if_with_a_bad_profile_names_the_key_and_value(client, tokens) -> None:
    response = client.post(
        "/api/v1/evaluate",
        json={"as_of": "2026-05-10T09:00:00Z", "facts": [],
              "profile": {"window_months": {"isatuximab": "abc"}}},
        headers={"Authorization": f"Bearer {tokens['supervisor']}"})
    assert response.status_code == 400
    assert "window_months.isatuximab" in response.text and "abc" in response.text


def test_reads_need_a_token(client, mrn) -> None:
    assert client.get(f"/api/v1/patients/{mrn}").status_code == 401
    assert client.get(f"/api/v1/patients/{mrn}",
                      headers={"Authorization": "Bearer nope"}).status_code == 401
