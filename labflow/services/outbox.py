"""The outbox: events written in the same transaction as the change they report."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import Session, col

from labflow import jobs
from labflow.models import OutboundDelivery, Subscription, new_id, utcnow


def decision_events(
    change_events: list[dict[str, Any]], decision: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The events of one decision (its changes, then `decision.recorded`), with its context."""
    summary = {
        "event": "decision.recorded",
        "code": "DECISION",
        "status": "recorded",
        "rules": list(decision["rules_fired"]),
        "explanation": " ".join(
            f"{f['rule']}: {f['explanation']}" for f in decision["outcome"].get("fired", [])
        )[:4000],
        "added": list(decision["added"]),
        "removed": list(decision["removed"]),
    }
    context = {
        "decision_id": decision["id"],
        "as_of": decision["as_of"].isoformat(),
        "protocol": {
            "id": decision["protocol_id"],
            "version": decision["protocol_version"],
            "hash": decision["protocol_hash"],
        },
        "profile_hash": decision["profile_hash"],
    }
    return [{**item, **context} for item in [*change_events, summary]]


def record_events(
    session: Session,
    *,
    mrn: str,
    origin_id: str,
    occurred_at: datetime,
    events: list[dict[str, Any]],
) -> int:
    """Fan events out to every enabled subscription that wants them; return rows written."""
    subscriptions = (
        session.connection()
        .execute(
            select(col(Subscription.id), col(Subscription.events)).where(col(Subscription.enabled))
        )
        .all()
    )
    if not subscriptions:
        return 0
    # Patients are processed one message at a time, so a clock-based sequence keeps each
    # patient's events in the order their decisions were taken.
    base = time.time_ns() // 1000 * 100
    rows: list[dict[str, Any]] = []
    wanted_by: set[str] = set()
    for index, item in enumerate(events):
        payload = {
            **item,
            "event_id": f"evt_{origin_id}_{index}",
            "occurred_at": occurred_at.isoformat(),
            "patient": {"mrn": mrn},
        }
        for sub in subscriptions:
            if "*" not in sub.events and item["event"] not in sub.events:
                continue
            rows.append(
                {
                    "id": new_id(),
                    "seq": base + index,
                    "subscription_id": sub.id,
                    "event_id": payload["event_id"],
                    "event_type": item["event"],
                    "mrn": mrn,
                    "payload": payload,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": occurred_at,
                    "created_at": occurred_at,
                }
            )
            wanted_by.add(sub.id)
    if rows:
        session.connection().execute(insert(OutboundDelivery), rows)
    for subscription_id in sorted(wanted_by):
        jobs.enqueue(session, jobs.DELIVER_EVENTS, subscription_id, mrn)
    return len(rows)


def record_person_event(session: Session, *, mrn: str, event: dict[str, Any]) -> int:
    """An event caused by a person (e.g. a requirement removed), not by a decision."""
    return record_events(
        session, mrn=mrn, origin_id=uuid.uuid4().hex, occurred_at=utcnow(), events=[event]
    )
