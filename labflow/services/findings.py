"""The lifecycle of requirements, flags and reflex orders as decisions come and go.

R-D4: a requirement is never removed by evaluation. When the evaluator stops supporting it (or
keeps it only for review), it is *proposed* for removal; only a person removes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from labflow import audit
from labflow.models import Patient, PatientFlag, ReflexOrder, Requirement, utcnow
from protocols.decision import Decision, Finding

REVIEW_ONLY = ("R-D4",)


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def note(
        self, event: str, code: str, status: str, finding_rules: list[str], explanation: str
    ) -> None:
        self.events.append(
            {
                "event": event,
                "code": code,
                "status": status,
                "rules": finding_rules,
                "explanation": explanation,
            }
        )


def apply_decision(
    session: Session, patient: Patient, decision: Decision, decision_id: str, actor: str
) -> Changes:
    changes = Changes()
    hashes = {"protocol_hash": decision.protocol_hash, "profile_hash": decision.profile_hash}
    _apply_requirements(session, patient, decision, decision_id, actor, changes, hashes)
    _apply_flags(session, patient, decision, decision_id, actor, changes, hashes)
    _apply_reflexes(session, patient, decision, decision_id, actor, changes, hashes)
    return changes


def _apply_requirements(
    session: Session,
    patient: Patient,
    decision: Decision,
    decision_id: str,
    actor: str,
    changes: Changes,
    hashes: dict[str, str],
) -> None:
    wanted = {f.code: f for f in decision.requirements if tuple(f.rules) != REVIEW_ONLY}
    current = {
        r.code: r
        for r in session.scalars(
            select(Requirement).where(
                Requirement.patient_id == patient.id, Requirement.status != "removed"
            )
        )
    }
    now = utcnow()
    for code, finding in wanted.items():
        row = current.get(code)
        if row is None:
            row = Requirement(
                patient_id=patient.id,
                code=code,
                rules=list(finding.rules),
                reason=finding.explanation,
                decision_id=decision_id,
            )
            session.add(row)
            changes.added.append(code)
            changes.note(
                "requirement.added", code, "active", list(finding.rules), finding.explanation
            )
            _audit(session, actor, "requirement.added", row.id, None, _state(row), hashes)
        elif row.status != "active" or row.rules != list(finding.rules):
            before = _state(row)
            row.status, row.rules, row.reason = "active", list(finding.rules), finding.explanation
            row.updated_at, row.decision_id = now, decision_id
            _audit(session, actor, "requirement.kept", row.id, before, _state(row), hashes)
    for code, row in current.items():
        if code in wanted or row.status == "removal_proposed":
            continue
        before = _state(row)
        row.status, row.updated_at, row.decision_id = "removal_proposed", now, decision_id
        changes.removed.append(code)
        _audit(
            session,
            actor,
            "requirement.removal_proposed",
            row.id,
            before,
            _state(row),
            hashes,
            reason="no longer supported by the rules; a person must confirm (R-D4)",
        )


def _apply_flags(
    session: Session,
    patient: Patient,
    decision: Decision,
    decision_id: str,
    actor: str,
    changes: Changes,
    hashes: dict[str, str],
) -> None:
    wanted = {f.code: f for f in decision.flags}
    current = {
        f.code: f
        for f in session.scalars(
            select(PatientFlag).where(
                PatientFlag.patient_id == patient.id, PatientFlag.status == "open"
            )
        )
    }
    now = utcnow()
    for code, finding in wanted.items():
        row = current.get(code)
        if row is None:
            row = PatientFlag(
                patient_id=patient.id,
                code=code,
                rules=list(finding.rules),
                reason=finding.explanation,
                decision_id=decision_id,
            )
            session.add(row)
            changes.added.append(code)
            changes.note("flag.raised", code, "open", list(finding.rules), finding.explanation)
            _audit(session, actor, "flag.raised", row.id, None, _state(row), hashes)
        elif row.rules != list(finding.rules) or row.reason != finding.explanation:
            row.rules, row.reason, row.updated_at = list(finding.rules), finding.explanation, now
    for code, row in current.items():
        if code in wanted:
            continue
        before = _state(row)
        row.status, row.updated_at, row.decision_id = "resolved", now, decision_id
        changes.removed.append(code)
        changes.note(
            "flag.resolved", code, "resolved", list(row.rules), "no longer raised by the rules"
        )
        _audit(session, actor, "flag.resolved", row.id, before, _state(row), hashes)


def _apply_reflexes(
    session: Session,
    patient: Patient,
    decision: Decision,
    decision_id: str,
    actor: str,
    changes: Changes,
    hashes: dict[str, str],
) -> None:
    open_codes = set(
        session.scalars(
            select(ReflexOrder.code).where(
                ReflexOrder.patient_id == patient.id, ReflexOrder.status == "requested"
            )
        )
    )
    for finding in decision.reflex_orders:
        if finding.code in open_codes:
            continue
        row = ReflexOrder(
            patient_id=patient.id,
            code=finding.code,
            rules=list(finding.rules),
            reason=finding.explanation,
            decision_id=decision_id,
        )
        session.add(row)
        changes.added.append(finding.code)
        changes.note(
            "reflex.requested", finding.code, "requested", list(finding.rules), finding.explanation
        )
        _audit(session, actor, "reflex.requested", row.id, None, _state(row), hashes)


def _state(row: Requirement | PatientFlag | ReflexOrder) -> dict[str, Any]:
    return {"code": row.code, "status": row.status, "rules": list(row.rules)}


def _audit(
    session: Session,
    actor: str,
    action: str,
    subject_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    hashes: dict[str, str],
    reason: str | None = None,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        subject_type=action.split(".")[0],
        subject_id=subject_id,
        before=before,
        after=after,
        reason=reason,
        **hashes,
    )


def finding_summary(findings: tuple[Finding, ...]) -> list[dict[str, Any]]:
    return [f.model_dump(mode="json") for f in findings]
