"""The lifecycle of requirements, flags and reflex orders as decisions come and go.

R-D4: a requirement is never removed by evaluation. When the evaluator stops supporting it (or
keeps it only for review), it is *proposed* for removal; only a person removes it.

This runs inside every pipeline transaction, so it reads the current state of all three tables
in one query and writes with bulk Core statements rather than ORM objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, literal, select, union_all, update
from sqlmodel import Session, col

from labflow import audit
from labflow.models import PatientFlag, ReflexOrder, Requirement, new_id, utcnow
from protocols.decision import Decision, Finding

REVIEW_ONLY = ("R-D4",)
_TABLES: dict[str, type[Requirement | PatientFlag | ReflexOrder]] = {
    "requirement": Requirement,
    "flag": PatientFlag,
    "reflex": ReflexOrder,
}
# Rows still "in force" per table: these are the ones a decision can keep or change.
_LIVE = {"requirement": ("active", "removal_proposed"), "flag": ("open",), "reflex": ("requested",)}


@dataclass
class Current:
    id: str
    code: str
    status: str
    rules: list[str]
    reason: str
    since: datetime


CurrentFindings = dict[str, dict[str, Current]]


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def note(self, event: str, code: str, status: str, rules: list[str], text: str) -> None:
        self.events.append(
            {"event": event, "code": code, "status": status, "rules": rules, "explanation": text}
        )


@dataclass
class _Writer:
    """Collects the rows and audit events of one decision, then writes them in bulk."""

    session: Session
    patient_id: str
    decision_id: str
    actor: str
    hashes: dict[str, str]
    changes: Changes = field(default_factory=Changes)
    inserts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, kind: str, finding: Finding, status: str, event: str) -> None:
        now = utcnow()
        row: dict[str, Any] = {
            "id": new_id(),
            "patient_id": self.patient_id,
            "code": finding.code,
            "rules": list(finding.rules),
            "reason": finding.explanation,
            "status": status,
            "decision_id": self.decision_id,
            "created_at": now,
            "updated_at": now,
        }
        self.inserts.setdefault(kind, []).append(row)
        self.changes.added.append(finding.code)
        self.changes.note(event, finding.code, status, list(finding.rules), finding.explanation)
        self.audit(event, row["id"], None, _state(finding.code, status, row["rules"]))

    def set(
        self,
        kind: str,
        row: Current,
        *,
        status: str,
        rules: list[str],
        reason: str,
        action: str,
        why: str | None = None,
    ) -> None:
        self.session.connection().execute(
            update(_TABLES[kind])
            .where(col(_TABLES[kind].id) == row.id)
            .values(
                status=status,
                rules=rules,
                reason=reason,
                updated_at=utcnow(),
                decision_id=self.decision_id,
            )
        )
        self.audit(
            action,
            row.id,
            _state(row.code, row.status, row.rules),
            _state(row.code, status, rules),
            why,
        )

    def audit(
        self,
        action: str,
        subject_id: str,
        before: dict[str, Any] | None,
        after: dict[str, Any],
        reason: str | None = None,
    ) -> None:
        audit.record(
            self.session,
            actor=self.actor,
            action=action,
            subject_type=action.split(".")[0],
            subject_id=subject_id,
            before=before,
            after=after,
            reason=reason,
            **self.hashes,
        )

    def flush(self) -> None:
        for kind, rows in self.inserts.items():
            self.session.connection().execute(insert(_TABLES[kind]), rows)


def apply_decision(
    session: Session,
    patient_id: str,
    decision: Decision,
    decision_id: str,
    actor: str,
    current: CurrentFindings | None = None,
) -> Changes:
    writer = _Writer(
        session,
        patient_id,
        decision_id,
        actor,
        {"protocol_hash": decision.protocol_hash, "profile_hash": decision.profile_hash},
    )
    current = current if current is not None else current_findings(session, patient_id)
    _requirements(writer, decision, current["requirement"])
    _flags(writer, decision, current["flag"])
    _reflexes(writer, decision, current["reflex"])
    writer.flush()
    return writer.changes


def current_findings(session: Session, patient_id: str) -> CurrentFindings:
    """Requirements, flags and reflex orders in force, by kind and code (one query)."""
    parts = [
        select(
            literal(kind).label("kind"),
            col(table.id),
            col(table.code),
            col(table.status),
            col(table.rules),
            col(table.reason),
            col(table.created_at),
        ).where(col(table.patient_id) == patient_id, col(table.status).in_(_LIVE[kind]))
        for kind, table in _TABLES.items()
    ]
    found: dict[str, dict[str, Current]] = {kind: {} for kind in _TABLES}
    for kind, *values in session.connection().execute(union_all(*parts)):
        row = Current(*values)  # type: ignore[arg-type]  # columns in Current's field order
        found[kind][row.code] = row
    return found


def _requirements(w: _Writer, decision: Decision, current: dict[str, Current]) -> None:
    wanted = {f.code: f for f in decision.requirements if tuple(f.rules) != REVIEW_ONLY}
    for code, finding in wanted.items():
        row = current.get(code)
        if row is None:
            w.add("requirement", finding, "active", "requirement.added")
        elif row.status != "active" or row.rules != list(finding.rules):
            w.set(
                "requirement",
                row,
                status="active",
                rules=list(finding.rules),
                reason=finding.explanation,
                action="requirement.kept",
            )
    for code, row in current.items():
        if code in wanted or row.status == "removal_proposed":
            continue
        w.set(
            "requirement",
            row,
            status="removal_proposed",
            rules=row.rules,
            reason=row.reason,
            action="requirement.removal_proposed",
            why="no longer supported by the rules; a person must confirm (R-D4)",
        )
        w.changes.removed.append(code)


def _flags(w: _Writer, decision: Decision, current: dict[str, Current]) -> None:
    wanted = {f.code: f for f in decision.flags}
    for code, finding in wanted.items():
        row = current.get(code)
        if row is None:
            w.add("flag", finding, "open", "flag.raised")
        elif row.rules != list(finding.rules) or row.reason != finding.explanation:
            w.session.connection().execute(
                update(PatientFlag)
                .where(col(PatientFlag.id) == row.id)
                .values(rules=list(finding.rules), reason=finding.explanation, updated_at=utcnow())
            )
    for code, row in current.items():
        if code in wanted:
            continue
        w.set(
            "flag",
            row,
            status="resolved",
            rules=row.rules,
            reason=row.reason,
            action="flag.resolved",
        )
        w.changes.removed.append(code)
        w.changes.note(
            "flag.resolved", code, "resolved", row.rules, "no longer raised by the rules"
        )


def _reflexes(w: _Writer, decision: Decision, current: dict[str, Current]) -> None:
    # A reflex order, once requested, stays requested: it is an order, not a state.
    for finding in decision.reflex_orders:
        if finding.code not in current:
            w.add("reflex", finding, "requested", "reflex.requested")


def _state(code: str, status: str, rules: list[str]) -> dict[str, Any]:
    return {"code": code, "status": status, "rules": list(rules)}
