"""Every table, in one module (SQLModel's advice against circular imports).

Rows are never built from raw input: services validate with pydantic first.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, LargeBinary, MetaData, UniqueConstraint
from sqlalchemy import DateTime as SADateTime
from sqlmodel import Field, SQLModel

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def utc_bound(moment: datetime) -> datetime:
    """A filter bound in UTC (SQLite compares stored UTC text, so 10:00+02:00 is 08:00).

    Bounds beyond the calendar once shifted (0001-01-01T00:00+14:00) clamp to its ends.
    """
    try:
        return as_utc(moment).astimezone(UTC)
    except OverflowError:
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    # sa_type (not sa_column) so mixins can share the column definition across tables.
    if nullable:
        return Field(default=None, sa_type=SADateTime(timezone=True), nullable=True, index=index)
    return Field(
        default_factory=utcnow, sa_type=SADateTime(timezone=True), nullable=False, index=index
    )


def _json(*, nullable: bool = False, default: Any = None) -> Any:
    if nullable:
        return Field(default=None, sa_type=JSON, nullable=True)
    return Field(default_factory=default or dict, sa_type=JSON, nullable=False)


# --- inbound / outbound -------------------------------------------------------------------


class InboundMessage(SQLModel, table=True):
    """The inbox: every accepted body, committed before the sender hears back."""

    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("interface", "dedupe_key", name="uq_inbound_message_dedupe"),
        UniqueConstraint("interface", "control_key", name="uq_inbound_message_control"),
        Index("ix_inbound_status_dispatched", "status", "dispatched_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    interface: str = Field(max_length=64, index=True)
    # webhook-id, or for HL7 v2 "app|facility|MSH-10"; NULL for quarantined/edited copies.
    dedupe_key: str | None = Field(default=None, max_length=300)
    # HL7 v2 only: "sending app|facility|MSH-10", a second idempotency key (LIS resends).
    control_key: str | None = Field(default=None, max_length=300)
    webhook_id: str | None = Field(default=None, max_length=255)
    content_type: str = Field(max_length=100)
    body: bytes = Field(sa_type=LargeBinary, nullable=False)
    body_sha256: str = Field(max_length=64)
    status: str = Field(default="accepted", max_length=16, index=True)
    attempts: int = 0
    errors: list[str] = _json(default=list)
    message_type: str | None = Field(default=None, max_length=64, index=True)
    mrn: str | None = Field(default=None, max_length=64, index=True)
    accession: str | None = Field(default=None, max_length=64, index=True)
    control_id: str | None = Field(default=None, max_length=255)
    summary: dict[str, Any] = _json()
    received_at: datetime = _ts(index=True)
    dispatched_at: datetime | None = _ts(nullable=True)
    claimed_at: datetime | None = _ts(nullable=True)
    processed_at: datetime | None = _ts(nullable=True)
    original_id: str | None = Field(default=None, max_length=36, index=True)
    reprocess_reason: str | None = None
    submitted_by: str | None = Field(default=None, max_length=128)


class Subscription(SQLModel, table=True):
    """An outbound webhook endpoint (from LABFLOW_OUTBOUND_WEBHOOKS or the API)."""

    __tablename__ = "subscription"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    url: str = Field(max_length=2000, unique=True)
    secret: str = Field(max_length=255)
    events: list[str] = _json(default=list)
    format: str = Field(default="json", max_length=8)
    enabled: bool = True
    disabled_reason: str | None = None
    created_at: datetime = _ts()


class OutboundDelivery(SQLModel, table=True):
    """The outbox: one event for one subscription, written with the decision it reports."""

    __tablename__ = "outbound_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_outbound_delivery_event"),
        Index("ix_outbound_status_next", "status", "next_attempt_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    # Per-patient order of events (patients are processed one message at a time).
    seq: int = Field(default=0, sa_type=BigInteger, index=True)
    subscription_id: str = Field(foreign_key="subscription.id", max_length=36, index=True)
    event_id: str = Field(max_length=80)
    event_type: str = Field(max_length=40)
    mrn: str = Field(max_length=64, index=True)
    payload: dict[str, Any] = _json()
    status: str = Field(default="pending", max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime = _ts()
    last_error: str | None = None
    created_at: datetime = _ts()
    delivered_at: datetime | None = _ts(nullable=True)


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(foreign_key="outbound_delivery.id", max_length=36, index=True)
    attempted_at: datetime = _ts()
    status_code: int | None = None
    error: str | None = None
    duration_ms: float | None = None


# --- patient facts ----------------------------------------------------------------------------


class Patient(SQLModel, table=True):
    __tablename__ = "patient"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    mrn: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts()


class _FactRow(SQLModel):
    """Columns every stored fact shares: who, when (clinically), and from which message."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    patient_id: str = Field(foreign_key="patient.id", max_length=36, index=True)
    message_id: str | None = Field(default=None, max_length=36, index=True)
    effective_at: datetime = _ts()
    # The full fact as validated (protocols.facts), so evaluation can rebuild it exactly.
    fact: dict[str, Any] = _json()


class TherapyExposure(_FactRow, table=True):
    __tablename__ = "therapy_exposure"
    agent: str = Field(max_length=40, index=True)
    route: str | None = Field(default=None, max_length=8)
    record: str = Field(max_length=16)
    first_dose: date | None = None
    last_dose: date | None = None
    ongoing: bool = False


class LabOrder(_FactRow, table=True):
    __tablename__ = "lab_order"
    code: str = Field(max_length=40)
    priority: str = Field(default="routine", max_length=16)


class LabResult(_FactRow, table=True):
    """Screens, DAT, ABO/RhD, M-spike, IFE, isotype and shift results."""

    __tablename__ = "lab_result"
    kind: str = Field(max_length=40, index=True)


class PhenotypeRecord(_FactRow, table=True):
    __tablename__ = "phenotype_record"
    antigen: str = Field(max_length=20)
    positive: bool
    method: str = Field(max_length=20)


class AntibodyRecord(_FactRow, table=True):
    __tablename__ = "antibody_record"
    specificities: list[str] = _json(default=list)
    method: str = Field(max_length=24)
    historical: bool = False


class TransfusionRecord(_FactRow, table=True):
    __tablename__ = "transfusion_record"


# --- findings ---------------------------------------------------------------------------------


class _FindingRow(SQLModel):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    patient_id: str = Field(foreign_key="patient.id", max_length=36, index=True)
    code: str = Field(max_length=60)
    rules: list[str] = _json(default=list)
    reason: str = ""
    decision_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Requirement(_FindingRow, table=True):
    """Lifecycle: active -> removal_proposed (R-D4) -> removed (only by a person)."""

    __tablename__ = "requirement"
    status: str = Field(default="active", max_length=20, index=True)
    removed_by: str | None = Field(default=None, max_length=128)


class PatientFlag(_FindingRow, table=True):
    __tablename__ = "patient_flag"
    status: str = Field(default="open", max_length=20, index=True)


class ReflexOrder(_FindingRow, table=True):
    __tablename__ = "reflex_order"
    status: str = Field(default="requested", max_length=20, index=True)


class Decision(SQLModel, table=True):
    """One evaluation and everything needed to explain and replay it."""

    __tablename__ = "decision"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    patient_id: str = Field(foreign_key="patient.id", max_length=36, index=True)
    # One decision per message, enforced by the database: a redelivered task cannot add a second.
    message_id: str | None = Field(default=None, max_length=36, unique=True)
    trigger: str = Field(max_length=200)
    as_of: datetime = _ts()
    protocol_id: str = Field(max_length=80)
    protocol_version: str = Field(max_length=40)
    protocol_hash: str = Field(max_length=64)
    profile_hash: str = Field(max_length=64)
    rules_fired: list[str] = _json(default=list)
    added: list[str] = _json(default=list)
    removed: list[str] = _json(default=list)
    outcome: dict[str, Any] = _json()
    created_at: datetime = _ts()


# --- audit and access -------------------------------------------------------------------------


class AuditEvent(SQLModel, table=True):
    """Append-only and hash-chained; the database refuses UPDATE and DELETE (migration 0001)."""

    __tablename__ = "audit_event"

    seq: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = _ts()
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64, index=True)
    subject_type: str = Field(max_length=40)
    subject_id: str = Field(max_length=80, index=True)
    reason: str | None = None
    before: dict[str, Any] | None = _json(nullable=True)
    after: dict[str, Any] | None = _json(nullable=True)
    protocol_hash: str | None = Field(default=None, max_length=64)
    profile_hash: str | None = Field(default=None, max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditHead(SQLModel, table=True):
    """The chain head: one row, locked while a transaction appends, so links never fork."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    last_seq: int = 0
    last_hash: str = Field(max_length=64)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=128)
    role: str = Field(max_length=20)
    token_sha256: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts()
    revoked: bool = False
