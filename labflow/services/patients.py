"""Reading a patient's state; removing a requirement (a person's decision, R-D4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from labflow import audit, clinical
from labflow.errors import NotFound
from labflow.models import Decision, PatientFlag, ReflexOrder, Requirement, utcnow
from labflow.services.facts import find_patient, load_facts
from labflow.services.outbox import record_person_event
from protocols import exposures


def patient_view(session: Session, mrn: str, as_of: datetime | None = None) -> dict[str, Any]:
    patient = find_patient(session, mrn)
    if patient is None:
        raise NotFound(f"no patient with MRN {mrn!r}")
    as_of = as_of or utcnow()
    facts = load_facts(session, patient)
    therapies = exposures(clinical.protocol(), clinical.profile(), facts, as_of)
    active = [t for t in therapies if t.active]
    until = [t.interference_until for t in active if t.interference_until is not None]
    latest = session.scalars(
        select(Decision)
        # The crossmatch comes from the last evaluation, not from a person's action.
        .where(col(Decision.patient_id) == patient.id, col(Decision.message_id).is_not(None))
        .order_by(col(Decision.created_at).desc())
        .limit(1)
    ).first()
    rows = lambda table: session.scalars(  # noqa: E731
        select(table).where(table.patient_id == patient.id).order_by(table.created_at)
    )
    return {
        "mrn": patient.mrn,
        "therapies": [t.model_dump(mode="json") for t in therapies],
        "interference": {
            "active": bool(active),
            "profiles": sorted({t.profile for t in active}),
            "until": None
            if any(t.ongoing for t in active) or not until
            else max(until).isoformat(),
        },
        "requirements": [_finding(r) for r in rows(Requirement) if r.status != "removed"],
        "flags": [_finding(f) for f in rows(PatientFlag) if f.status == "open"],
        "reflex_orders": [_finding(r) for r in rows(ReflexOrder)],
        "crossmatch": (latest.outcome.get("crossmatch") if latest else None),
        "last_decision_id": latest.id if latest else None,
    }


def _finding(row: Requirement | PatientFlag | ReflexOrder) -> dict[str, Any]:
    return {
        "code": row.code,
        "status": row.status,
        "rules": row.rules,
        "reason": row.reason,
        "since": row.created_at.isoformat(),
    }


def decisions(
    session: Session, mrn: str, *, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    patient = find_patient(session, mrn)
    if patient is None:
        raise NotFound(f"no patient with MRN {mrn!r}")
    rows = session.scalars(
        select(Decision)
        .where(col(Decision.patient_id) == patient.id)
        .order_by(col(Decision.created_at))
        .offset(offset)
        .limit(limit)
    )
    return [decision_view(d) for d in rows]


def decision_view(d: Decision) -> dict[str, Any]:
    fired = d.outcome.get("fired", [])
    return {
        "id": d.id,
        "time": d.created_at.isoformat(),
        "as_of": d.as_of.isoformat(),
        "trigger": d.trigger,
        "message_id": d.message_id,
        "protocol": {"id": d.protocol_id, "version": d.protocol_version, "hash": d.protocol_hash},
        "profile_hash": d.profile_hash,
        "rules_fired": d.rules_fired,
        "added": d.added,
        "removed": d.removed,
        "explanation": [f"{f['rule']}: {f['explanation']}" for f in fired],
        "fired": fired,
        "outcome": {
            k: d.outcome.get(k)
            for k in ("flags", "requirements", "reflex_orders", "comments", "crossmatch")
        },
    }


def remove_requirement(
    session: Session, *, mrn: str, code: str, actor: str, reason: str
) -> dict[str, Any]:
    patient = find_patient(session, mrn)
    if patient is None:
        raise NotFound(f"no patient with MRN {mrn!r}")
    row = session.scalars(
        select(Requirement)
        .where(
            col(Requirement.patient_id) == patient.id,
            col(Requirement.code) == code,
            col(Requirement.status) != "removed",
        )
        .with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"no requirement {code!r} in force")
    before = _finding(row)
    row.status, row.removed_by, row.updated_at = "removed", actor, utcnow()
    decision = _person_decision(patient.id, code, actor, reason)
    row.decision_id = decision.id
    session.add(decision)
    audit.record(
        session,
        actor=actor,
        action="requirement.removed",
        subject_type="requirement",
        subject_id=row.id,
        reason=reason,
        before=before,
        after=_finding(row),
        profile_hash=clinical.profile().content_hash,
        protocol_hash=clinical.protocol().content_hash,
    )
    record_person_event(
        session,
        mrn=mrn,
        event={
            "event": "requirement.removed",
            "code": code,
            "status": "removed",
            "rules": list(row.rules),
            "explanation": reason,
            "removed_by": actor,
        },
    )
    session.commit()
    return _finding(row)


def _person_decision(patient_id: str, code: str, actor: str, reason: str) -> Decision:
    """A removal is a decision too: it appears in the history with who, why and under what."""
    protocol, profile = clinical.protocol(), clinical.profile()
    explanation = f"{code} removed by {actor}: {reason}"
    now = utcnow()
    return Decision(
        patient_id=patient_id,
        trigger=f"action:requirement.remove by {actor}"[:200],
        as_of=now,
        protocol_id=protocol.id,
        protocol_version=str(protocol.version),
        protocol_hash=protocol.content_hash,
        profile_hash=profile.content_hash,
        rules_fired=["R-D4"],
        removed=[code],
        outcome={
            "fired": [
                {
                    "rule": "R-D4",
                    "explanation": explanation,
                    "inputs": {"requirement": code, "by": actor, "reason": reason},
                }
            ]
        },
        created_at=now,
    )
