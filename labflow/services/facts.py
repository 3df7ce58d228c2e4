"""Patient facts: storing what messages tell us, and rebuilding it for the evaluator."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

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

_FACT = TypeAdapter(Fact)
_ROW_TABLES: tuple[type[_FactRow], ...] = (
    TherapyExposure,
    LabOrder,
    LabResult,
    PhenotypeRecord,
    AntibodyRecord,
    TransfusionRecord,
)


def lock_patient(session: Session, mrn: str) -> Patient:
    """Get or create the patient and lock it: one message per patient at a time."""
    dialect = postgresql if is_postgres(session) else sqlite
    session.execute(
        dialect.insert(Patient)
        .values(id=Patient().id, mrn=mrn, created_at=Patient().created_at)
        .on_conflict_do_nothing(index_elements=["mrn"])
    )
    return session.scalars(select(Patient).where(Patient.mrn == mrn).with_for_update()).one()


def find_patient(session: Session, mrn: str) -> Patient | None:
    return session.scalars(select(Patient).where(Patient.mrn == mrn)).first()


def store_facts(
    session: Session, patient: Patient, message_id: str | None, facts: Iterable[Fact]
) -> None:
    for fact in facts:
        session.add(_row_for(fact, patient_id=patient.id, message_id=message_id))


def _row_for(fact: Fact, **common: str | None) -> _FactRow:
    stored = fact.model_dump(mode="json")
    base = {"effective_at": fact.effective, "fact": stored, **common}
    if isinstance(fact, Therapy):
        return TherapyExposure(
            **base,
            agent=fact.agent,
            route=fact.route,
            record=fact.record,
            first_dose=fact.first_dose,
            last_dose=fact.last_dose,
            ongoing=fact.ongoing,
        )
    if isinstance(fact, Order):
        return LabOrder(**base, code=fact.code, priority=fact.priority)
    if isinstance(fact, AntigenTyping):
        return PhenotypeRecord(
            **base, antigen=fact.antigen, positive=fact.positive, method=fact.method
        )
    if isinstance(fact, AntibodyIdentification):
        return AntibodyRecord(
            **base,
            specificities=list(fact.specificities),
            method=fact.method,
            historical=fact.historical,
        )
    if isinstance(fact, Transfusion):
        return TransfusionRecord(**base)
    return LabResult(**base, kind=fact.kind)


def load_facts(session: Session, patient: Patient, trigger: Fact | None = None) -> PatientFacts:
    facts: list[Fact] = []
    for table in _ROW_TABLES:
        stored = session.scalars(
            select(table.fact).where(table.patient_id == patient.id)  # type: ignore[arg-type]
        ).all()
        facts.extend(_FACT.validate_python(item) for item in stored)
    facts.sort(key=lambda f: (f.effective, f.kind))
    active = session.scalars(
        select(Requirement).where(
            Requirement.patient_id == patient.id, Requirement.status != "removed"
        )
    ).all()
    return PatientFacts(
        facts=tuple(facts),
        active_requirements=tuple(
            ActiveRequirement(code=r.code, since=r.created_at) for r in active
        ),
        trigger=trigger,
    )
