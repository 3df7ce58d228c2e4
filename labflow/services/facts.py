"""Patient facts: storing what messages tell us, and rebuilding it for the evaluator.

Hot path of the pipeline: rows go in with one bulk INSERT per table (no ORM unit of work) and
come back with one UNION query, because round trips to the database dominate its cost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import CompoundSelect, insert, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from labflow.db import is_postgres
from labflow.models import (
    AntibodyRecord,
    LabOrder,
    LabResult,
    Patient,
    PhenotypeRecord,
    Requirement,
    TherapyExposure,
    TransfusionRecord,
    _FactRow,
    new_id,
    utcnow,
)
from protocols.facts import (
    ActiveRequirement,
    AntibodyIdentification,
    AntigenTyping,
    Fact,
    Order,
    PatientFacts,
    Therapy,
    Transfusion,
)

_FACTS = TypeAdapter(list[Fact])
_ROW_TABLES: tuple[type[_FactRow], ...] = (
    TherapyExposure,
    LabOrder,
    LabResult,
    PhenotypeRecord,
    AntibodyRecord,
    TransfusionRecord,
)


def lock_patient(session: Session, mrn: str) -> Patient:
    """Get or create the patient and lock its row: one message per patient at a time.

    A plain SELECT ... FOR UPDATE for a known patient (no new row version, unlike an upsert);
    a new patient is inserted, and a concurrent insert of the same MRN is simply read back.
    """
    conn = session.connection()
    locked = select(col(Patient.id), col(Patient.created_at)).where(col(Patient.mrn) == mrn)
    row = conn.execute(locked.with_for_update()).first()
    if row is None:
        dialect = postgresql if is_postgres(session) else sqlite
        created = (
            dialect.insert(Patient)
            .values(id=new_id(), mrn=mrn, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["mrn"])
            .returning(col(Patient.id), col(Patient.created_at))
        )
        row = conn.execute(created).first() or conn.execute(locked.with_for_update()).one()
    return Patient(id=row[0], mrn=mrn, created_at=row[1])


def find_patient(session: Session, mrn: str) -> Patient | None:
    return session.scalars(select(Patient).where(col(Patient.mrn) == mrn)).first()


def store_facts(
    session: Session, patient: Patient, message_id: str | None, facts: Iterable[Fact]
) -> None:
    rows: dict[type[_FactRow], list[dict[str, Any]]] = defaultdict(list)
    for fact in facts:
        table, columns = _columns_for(fact)
        rows[table].append(
            {
                "id": new_id(),
                "patient_id": patient.id,
                "message_id": message_id,
                "effective_at": fact.effective,
                "fact": fact.model_dump(mode="json"),
                **columns,
            }
        )
    for table, values in rows.items():
        session.connection().execute(insert(table), values)


def _columns_for(fact: Fact) -> tuple[type[_FactRow], dict[str, Any]]:
    if isinstance(fact, Therapy):
        return TherapyExposure, {
            "agent": fact.agent,
            "route": fact.route,
            "record": fact.record,
            "first_dose": fact.first_dose,
            "last_dose": fact.last_dose,
            "ongoing": fact.ongoing,
        }
    if isinstance(fact, Order):
        return LabOrder, {"code": fact.code, "priority": fact.priority}
    if isinstance(fact, AntigenTyping):
        return PhenotypeRecord, {
            "antigen": fact.antigen,
            "positive": fact.positive,
            "method": fact.method,
        }
    if isinstance(fact, AntibodyIdentification):
        return AntibodyRecord, {
            "specificities": list(fact.specificities),
            "method": fact.method,
            "historical": fact.historical,
        }
    if isinstance(fact, Transfusion):
        return TransfusionRecord, {}
    return LabResult, {"kind": fact.kind}


def load_facts(
    session: Session,
    patient: Patient,
    trigger: Fact | None = None,
    active: list[ActiveRequirement] | None = None,
) -> PatientFacts:
    """All stored facts of the patient; `active` requirements if the caller already has them."""
    everything: CompoundSelect[dict[str, Any]] = union_all(
        *(
            select(col(table.fact).label("fact")).where(col(table.patient_id) == patient.id)
            for table in _ROW_TABLES
        )
    )
    combined = everything.subquery()
    stored = list(session.connection().execute(select(combined.c.fact)).scalars())
    facts = _FACTS.validate_python(stored)
    facts.sort(key=lambda f: (f.effective, f.kind))
    if active is None:
        rows = session.execute(
            select(col(Requirement.code), col(Requirement.created_at)).where(
                col(Requirement.patient_id) == patient.id, col(Requirement.status) != "removed"
            )
        ).all()
        active = [ActiveRequirement(code=code, since=since) for code, since in rows]
    return PatientFacts(facts=tuple(facts), active_requirements=tuple(active), trigger=trigger)
