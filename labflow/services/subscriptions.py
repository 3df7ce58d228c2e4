"""Outbound webhook subscriptions: from LABFLOW_OUTBOUND_WEBHOOKS and the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from labflow import audit, jobs
from labflow.errors import NotFound
from labflow.models import OutboundDelivery, Subscription, utcnow
from labflow.services.delivery import pause_pending
from labflow.settings import OutboundWebhook


def sync_from_settings(session: Session, webhooks: list[OutboundWebhook]) -> None:
    """Make sure every configured endpoint exists (by URL); leave API-made ones alone."""
    existing = {s.url: s for s in session.scalars(select(Subscription))}
    for hook in webhooks:
        row = existing.get(hook.url)
        if row is None:
            create(session, hook, actor="config")
        elif (row.secret, row.events, row.format) != (hook.secret, hook.events, hook.format):
            row.secret, row.events, row.format = hook.secret, hook.events, hook.format
            audit.record(
                session,
                actor="config",
                action="subscription.updated",
                subject_type="subscription",
                subject_id=row.id,
                after=view(row),
            )
            session.commit()


def create(session: Session, hook: OutboundWebhook, *, actor: str) -> Subscription:
    row = Subscription(url=hook.url, secret=hook.secret, events=hook.events, format=hook.format)
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="subscription.created",
        subject_type="subscription",
        subject_id=row.id,
        after=view(row),
    )
    session.commit()
    return row


def view(row: Subscription) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "events": row.events,
        "format": row.format,
        "enabled": row.enabled,
        "disabled_reason": row.disabled_reason,
    }


def set_enabled(
    session: Session, subscription_id: str, enabled: bool, *, actor: str
) -> dict[str, Any]:
    row = session.get(Subscription, subscription_id)
    if row is None:
        raise NotFound("no such subscription")
    before = view(row)
    row.enabled, row.disabled_reason = enabled, None if enabled else f"disabled by {actor}"
    audit.record(
        session,
        actor=actor,
        action="subscription.enabled" if enabled else "subscription.disabled",
        subject_type="subscription",
        subject_id=row.id,
        before=before,
        after=view(row),
    )
    if not enabled:
        pause_pending(session, row.id)  # so the sweeper stops re-queueing them
    else:
        session.execute(  # what waited while disabled is due now
            update(OutboundDelivery)
            .where(
                col(OutboundDelivery.subscription_id) == row.id,
                col(OutboundDelivery.status) == "paused",
            )
            .values(status="pending", next_attempt_at=utcnow())
        )
        for mrn in set(
            session.scalars(
                select(col(OutboundDelivery.mrn)).where(
                    col(OutboundDelivery.subscription_id) == row.id,
                    col(OutboundDelivery.status) == "pending",
                )
            )
        ):
            jobs.enqueue(session, jobs.DELIVER_EVENTS, row.id, mrn)
    session.commit()
    return view(row)


def deliveries(
    session: Session, subscription_id: str, *, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    query = select(OutboundDelivery).where(col(OutboundDelivery.subscription_id) == subscription_id)
    if status:
        query = query.where(col(OutboundDelivery.status) == status)
    rows = session.scalars(query.order_by(col(OutboundDelivery.seq)).limit(limit))
    return [
        {
            "id": d.id,
            "event_id": d.event_id,
            "event": d.event_type,
            "status": d.status,
            "attempts": d.attempts,
            "last_error": d.last_error,
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
        }
        for d in rows
    ]


def replay(session: Session, delivery_id: str, *, actor: str) -> dict[str, Any]:
    """Send an event again (failed, or delivered but lost on the receiver's side)."""
    d = session.get(OutboundDelivery, delivery_id)
    if d is None:
        raise NotFound("no such delivery")
    before = {"status": d.status, "attempts": d.attempts}
    d.status, d.next_attempt_at, d.attempts = "pending", utcnow(), 0
    audit.record(
        session,
        actor=actor,
        action="delivery.replayed",
        subject_type="delivery",
        subject_id=d.id,
        before=before,
        after={"status": "pending"},
    )
    jobs.enqueue(session, jobs.DELIVER_EVENTS, d.subscription_id, d.mrn)
    session.commit()
    return {"id": d.id, "status": d.status}
