"""Receiving inbound messages: store first, answer second, never lose a body."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from labflow import audit, jobs
from labflow.clinical import code_maps
from labflow.interop.hl7_in import Hl7Header, hl7_header
from labflow.interop.model import MappedMessage, MappingError
from labflow.models import InboundMessage, new_id, utcnow
from labflow.services.mapping import HL7, map_body, media_type

log = structlog.get_logger(__name__)


@dataclass
class Receipt:
    """What to answer the sender."""

    http_status: int
    status: str
    message_id: str
    errors: list[str] = field(default_factory=list)
    hl7: Hl7Header | None = None


def receive(
    session: Session,
    *,
    interface: str,
    webhook_id: str,
    content_type: str,
    body: bytes,
    max_body_bytes: int,
) -> Receipt:
    digest = hashlib.sha256(body).hexdigest()
    kind = media_type(content_type)
    header = hl7_header(body) if kind == HL7 and len(body) <= max_body_bytes else None
    control_key = _control_key(header)

    earlier = _find_earlier(session, interface, webhook_id, control_key)
    if earlier is not None:
        return _repeat(session, earlier, interface, webhook_id, content_type, body, digest, header)

    http_status, status, errors, mapped = _validate(kind, content_type, body, max_body_bytes)
    now = utcnow()
    message: dict[str, Any] = {
        "id": new_id(),
        "interface": interface,
        "dedupe_key": webhook_id,
        "control_key": control_key,
        "webhook_id": webhook_id,
        "content_type": content_type[:100],
        # An oversized body is kept up to the limit: enough for a person to see what it was.
        "body": body[:max_body_bytes],
        "body_sha256": digest,
        "status": status,
        "attempts": 0,
        "errors": errors,
        "received_at": now,
        "dispatched_at": now if status == "accepted" else None,
        **_describe(mapped, header),
    }
    try:
        # A Core insert: the front door is the hottest path; an ORM object buys nothing here.
        session.connection().execute(insert(InboundMessage), [message])
    except IntegrityError:
        # A concurrent delivery of the same id won the race; answer as for a repeat.
        session.rollback()
        return _answer_repeat(
            session, interface, webhook_id, control_key, content_type, body, digest, header
        )
    if status == "accepted":
        jobs.enqueue(session, jobs.PROCESS_MESSAGE, message["id"])
    audit.record(
        session,
        actor=f"interface:{interface}",
        action=f"message.{status}",
        subject_type="inbound_message",
        subject_id=message["id"],
        after={"webhook_id": webhook_id, "sha256": digest, "errors": errors},
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return _answer_repeat(
            session, interface, webhook_id, control_key, content_type, body, digest, header
        )
    log.info("inbound.stored", message_id=message["id"], interface=interface, status=status)
    return Receipt(http_status, status, message["id"], errors, header)


def _answer_repeat(
    session: Session,
    interface: str,
    webhook_id: str,
    control_key: str | None,
    content_type: str,
    body: bytes,
    digest: str,
    header: Hl7Header | None,
) -> Receipt:
    earlier = _find_earlier(session, interface, webhook_id, control_key)
    if earlier is None:
        raise RuntimeError("unique key conflict without an earlier message")
    return _repeat(session, earlier, interface, webhook_id, content_type, body, digest, header)


def _validate(
    kind: str | None, content_type: str, body: bytes, limit: int
) -> tuple[int, str, list[str], MappedMessage | None]:
    if len(body) > limit:
        return 413, "parked", [f"body of {len(body)} bytes exceeds the {limit}-byte limit"], None
    if kind is None:
        return 415, "parked", [f"unsupported content type {content_type!r}"], None
    try:
        mapped = map_body(content_type, body, code_maps())
    except MappingError as exc:
        return 202, "parked", exc.errors, None
    return 202, "accepted", [], mapped


def _describe(mapped: MappedMessage | None, header: Hl7Header | None) -> dict[str, Any]:
    """Searchable columns of the message store, from what the mapper understood."""
    if mapped is None:
        return {
            "message_type": header.message_type if header else None,
            "control_id": header.control_id if header else None,
            "summary": {},
        }
    return {
        "mrn": mapped.mrn,
        "accession": mapped.accession,
        "message_type": mapped.message_type,
        "control_id": (header.control_id if header else None) or mapped.control_id,
        "summary": {
            "facts": dict(Counter(f.kind for f in mapped.facts)),
            "clinical_time": mapped.clinical_time.isoformat(),
            "warnings": list(mapped.warnings),
        },
    }


def _control_key(header: Hl7Header | None) -> str | None:
    if header is None or not header.control_id:
        return None
    return "|".join(header.dedupe_key)[:300]


@dataclass(frozen=True)
class _Earlier:
    id: str
    body_sha256: str


def _find_earlier(
    session: Session, interface: str, webhook_id: str, control_key: str | None
) -> _Earlier | None:
    m = InboundMessage
    keys = [col(m.dedupe_key) == webhook_id]
    if control_key:
        keys.append(col(m.control_key) == control_key)
    query = select(col(m.id), col(m.body_sha256)).where(col(m.interface) == interface, or_(*keys))
    row = session.connection().execute(query.limit(1)).first()
    return None if row is None else _Earlier(row.id, row.body_sha256)


def _repeat(
    session: Session,
    earlier: _Earlier,
    interface: str,
    webhook_id: str,
    content_type: str,
    body: bytes,
    digest: str,
    header: Hl7Header | None,
) -> Receipt:
    if earlier.body_sha256 == digest:
        return Receipt(200, "duplicate", earlier.id, [], header)
    # Same id, different content: keep it for review, apply nothing.
    error = f"id reused with a different body (first received as message {earlier.id})"
    quarantined = InboundMessage(
        interface=interface,
        webhook_id=webhook_id,
        content_type=content_type[:100],
        body=body,
        body_sha256=digest,
        status="quarantined",
        errors=[error],
        original_id=earlier.id,
        control_id=header.control_id if header else None,
    )
    session.add(quarantined)
    audit.record(
        session,
        actor=f"interface:{interface}",
        action="message.quarantined",
        subject_type="inbound_message",
        subject_id=quarantined.id,
        after={"webhook_id": webhook_id, "sha256": digest, "original": earlier.id},
    )
    session.commit()
    log.warning("inbound.quarantined", message_id=quarantined.id, original=earlier.id)
    return Receipt(409, "quarantined", quarantined.id, [error], header)
