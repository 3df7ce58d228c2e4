"""The audit trail: append-only, hash-chained, written in the caller's transaction.

`record()` is the only writer. Events wait in the session until commit; a `before_commit` hook
then locks the chain head, links them and inserts them, so the change and its audit rows commit
or roll back together and the lock is held only for the last moment of the transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, insert, select, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col

from labflow.models import AuditEvent, AuditHead, utcnow

GENESIS = "0" * 64
_PENDING = "audit_pending"


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    reason: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    protocol_hash: str | None = None,
    profile_hash: str | None = None,
) -> None:
    session.info.setdefault(_PENDING, []).append(
        {
            "occurred_at": utcnow(),
            "actor": actor,
            "action": action,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "reason": reason,
            "before": _plain(before),
            "after": _plain(after),
            "protocol_hash": protocol_hash,
            "profile_hash": profile_hash,
        }
    )


def _plain(value: dict[str, Any] | None) -> dict[str, Any] | None:
    # Round-trip through JSON so what is hashed is exactly what the JSON column gives back.
    return None if value is None else json.loads(json.dumps(value, default=str, sort_keys=True))


def _utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


_HASHED = (
    "seq",
    "occurred_at",
    "actor",
    "action",
    "subject_type",
    "subject_id",
    "reason",
    "before",
    "after",
    "protocol_hash",
    "profile_hash",
    "prev_hash",
)


def event_hash(values: Mapping[str, Any]) -> str:
    content = {key: values[key] for key in _HASHED}
    content["occurred_at"] = _utc_text(content["occurred_at"])
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@event.listens_for(OrmSession, "before_commit")
def _append_pending(session: OrmSession) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    # Core statements on the connection, not ORM objects: this runs in every transaction.
    conn = session.connection()
    seq, last_hash = conn.execute(
        select(col(AuditHead.last_seq), col(AuditHead.last_hash))
        .where(col(AuditHead.id) == 1)
        .with_for_update()
    ).one()
    rows = []
    for item in pending:
        seq += 1
        row = {**item, "seq": seq, "prev_hash": last_hash}
        row["hash"] = last_hash = event_hash(row)
        rows.append(row)
    conn.execute(insert(AuditEvent), rows)
    conn.execute(
        update(AuditHead).where(col(AuditHead.id) == 1).values(last_seq=seq, last_hash=last_hash)
    )


@event.listens_for(OrmSession, "after_rollback")
def _drop_pending(session: OrmSession) -> None:
    session.info.pop(_PENDING, None)


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    problem: str | None = None


def verify(session: Session, *, batch: int = 5000) -> VerifyReport:
    """Walk the chain from the start; report the first link that does not hold."""
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    last_seq = 0
    while True:
        query = select(AuditEvent).where(col(AuditEvent.seq) > last_seq)
        rows = session.scalars(query.order_by(col(AuditEvent.seq)).limit(batch)).all()
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return VerifyReport(
                    False, checked, expected_seq, f"event {expected_seq} is missing"
                )
            if row.prev_hash != expected_prev:
                return VerifyReport(
                    False, checked, row.seq, "prev_hash does not match the previous event"
                )
            if event_hash(row.model_dump()) != row.hash:
                return VerifyReport(
                    False, checked, row.seq, "content does not match its hash (edited)"
                )
            expected_prev, expected_seq, checked = row.hash, expected_seq + 1, checked + 1
            last_seq = row.seq
    head = session.get(AuditHead, 1)
    if head is not None and (head.last_seq != expected_seq - 1 or head.last_hash != expected_prev):
        return VerifyReport(
            False, checked, expected_seq, "chain head does not match the last event (removed)"
        )
    return VerifyReport(True, checked)
