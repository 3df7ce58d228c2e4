"""Read-only access to the audit trail for auditors (and supervisors)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlmodel import col

from labflow import audit
from labflow.api.deps import NoNul, SessionDep, require
from labflow.models import ApiToken, AuditEvent, utc_bound

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], dependencies=[NoNul])
Auditor = Annotated[ApiToken, Depends(require("auditor", "supervisor"))]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Token required"},
    403: {"description": "Auditors and supervisors only"},
}


@router.get("", responses=ERRORS)
def list_events(
    session: SessionDep,
    _token: Auditor,
    subject_id: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    occurred_from: datetime | None = None,
    occurred_to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after_seq: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[dict[str, Any]]:
    """Events in chain order (page with `after_seq`), with their hashes for outside checks."""
    query = select(AuditEvent).where(col(AuditEvent.seq) > after_seq)
    for column, value in (
        (AuditEvent.subject_id, subject_id),
        (AuditEvent.action, action),
        (AuditEvent.actor, actor),
    ):
        if value is not None:
            query = query.where(col(column) == value)
    if occurred_from is not None:
        query = query.where(col(AuditEvent.occurred_at) >= utc_bound(occurred_from))
    if occurred_to is not None:
        query = query.where(col(AuditEvent.occurred_at) < utc_bound(occurred_to))
    rows = session.scalars(query.order_by(col(AuditEvent.seq)).limit(limit))
    return [row.model_dump(mode="json") for row in rows]


@router.get("/verify", responses=ERRORS)
def verify_chain(session: SessionDep, _token: Auditor) -> dict[str, Any]:
    """Walk the whole hash chain, as `labflow audit verify` does."""
    report = audit.verify(session)
    return {
        "ok": report.ok,
        "checked": report.checked,
        "first_broken_seq": report.first_broken_seq,
        "problem": report.problem,
    }
