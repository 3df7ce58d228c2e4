"""The message store: find inbound messages, look inside, and reprocess them."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlmodel import Session, col

from labflow import audit, jobs
from labflow.clinical import code_maps
from labflow.errors import Conflict, NotFound
from labflow.interop.model import MappingError
from labflow.models import Decision, InboundMessage, utc_bound, utcnow
from labflow.services.mapping import map_body


@dataclass(frozen=True)
class MessageFilter:
    interface: str | None = None
    status: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    mrn: str | None = None
    accession: str | None = None
    message_type: str | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        m = InboundMessage
        for column, value in (
            (m.interface, self.interface),
            (m.status, self.status),
            (m.mrn, self.mrn),
            (m.accession, self.accession),
            (m.message_type, self.message_type),
        ):
            if value is not None:
                query = query.where(col(column) == value)
        # In UTC: SQLite compares the stored UTC text, so 10:00+02:00 must become 08:00.
        if self.received_from is not None:
            query = query.where(col(m.received_at) >= utc_bound(self.received_from))
        if self.received_to is not None:
            query = query.where(col(m.received_at) < utc_bound(self.received_to))
        return query


def search(
    session: Session, flt: MessageFilter, *, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    query = flt.apply(select(InboundMessage)).order_by(InboundMessage.received_at.desc())  # type: ignore[attr-defined]
    return [summary(m) for m in session.scalars(query.offset(offset).limit(limit))]


def summary(m: InboundMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "interface": m.interface,
        "status": m.status,
        "message_type": m.message_type,
        "mrn": m.mrn,
        "accession": m.accession,
        "received_at": m.received_at.isoformat(),
        "attempts": m.attempts,
        "errors": m.errors,
        "webhook_id": m.webhook_id,
        "control_id": m.control_id,
        "original_id": m.original_id,
    }


def detail(session: Session, message_id: str) -> dict[str, Any]:
    m = session.get(InboundMessage, message_id)
    if m is None:
        raise NotFound("no such message")
    decisions = session.scalars(
        select(col(Decision.id)).where(col(Decision.message_id) == m.id)
    ).all()
    copies = session.scalars(
        select(col(InboundMessage.id)).where(col(InboundMessage.original_id) == m.id)
    ).all()
    return {
        **summary(m),
        "content_type": m.content_type,
        "body": m.body.decode("utf-8", errors="replace"),
        "body_sha256": m.body_sha256,
        "parsed": m.summary,
        "processed_at": m.processed_at.isoformat() if m.processed_at else None,
        "reprocess_reason": m.reprocess_reason,
        "submitted_by": m.submitted_by,
        "decisions": list(decisions),
        "copies": list(copies),
    }


def reprocess(session: Session, message_id: str, *, actor: str, reason: str) -> dict[str, Any]:
    """Parked or stuck: retried in place. Processed or quarantined: a linked copy is applied."""
    m = session.get(InboundMessage, message_id)
    if m is None:
        raise NotFound("no such message")
    if m.status == "duplicate":
        raise Conflict("a duplicate is never applied; reprocess its original")
    if m.status in ("parked", "accepted", "processing"):
        before = summary(m)
        m.status, m.attempts, m.claimed_at, m.dispatched_at = "accepted", 0, None, utcnow()
        m.reprocess_reason, m.errors = reason, [*m.errors, f"reprocess requested: {reason}"]
        jobs.enqueue(session, jobs.PROCESS_MESSAGE, m.id)
        audit.record(
            session,
            actor=actor,
            action="message.reprocess",
            subject_type="inbound_message",
            subject_id=m.id,
            reason=reason,
            before=before,
            after=summary(m),
        )
        session.commit()
        return summary(m)
    return _copy(session, m, m.body, m.content_type, actor=actor, reason=reason)


def reprocess_matching(
    session: Session, flt: MessageFilter, *, actor: str, reason: str, limit: int = 1000
) -> list[str]:
    ids = [m["id"] for m in search(session, flt, limit=limit)]
    for message_id in ids:
        reprocess(session, message_id, actor=actor, reason=reason)
    return ids


def edit_and_reprocess(
    session: Session,
    message_id: str,
    *,
    body: bytes,
    content_type: str | None,
    actor: str,
    reason: str,
) -> dict[str, Any]:
    m = session.get(InboundMessage, message_id)
    if m is None:
        raise NotFound("no such message")
    return _copy(session, m, body, content_type or m.content_type, actor=actor, reason=reason)


def _copy(
    session: Session,
    original: InboundMessage,
    body: bytes,
    content_type: str,
    *,
    actor: str,
    reason: str,
) -> dict[str, Any]:
    copy = InboundMessage(
        interface=original.interface,
        content_type=content_type,
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        status="accepted",
        original_id=original.id,
        reprocess_reason=reason,
        submitted_by=actor,
        webhook_id=original.webhook_id,
        dispatched_at=utcnow(),
        mrn=original.mrn,
        accession=original.accession,
        message_type=original.message_type,
    )
    _describe_edit(copy)
    session.add(copy)
    jobs.enqueue(session, jobs.PROCESS_MESSAGE, copy.id)
    audit.record(
        session,
        actor=actor,
        action="message.copied_for_reprocess",
        subject_type="inbound_message",
        subject_id=copy.id,
        reason=reason,
        before={"original": original.id, "sha256": original.body_sha256},
        after={"sha256": copy.body_sha256, "edited": body != original.body},
    )
    session.commit()
    return summary(copy)


def _describe_edit(copy: InboundMessage) -> None:
    """Search fields from the copy's own body: an edit may fix the MRN or accession itself.

    A body that still cannot be mapped keeps the original's fields; processing parks it.
    """
    try:
        mapped = map_body(copy.content_type, copy.body, code_maps())
    except MappingError:
        return
    copy.mrn, copy.accession = mapped.mrn, mapped.accession
    copy.message_type = mapped.message_type
    copy.control_id = mapped.control_id
    copy.summary = {
        "facts": dict(Counter(f.kind for f in mapped.facts)),
        "clinical_time": mapped.clinical_time.isoformat(),
        "warnings": list(mapped.warnings),
    }
