"""The sweeper: whatever the broker lost, the database still knows about.

Runs from Celery beat (production), a timer (embedded) and at start-up. It re-dispatches
messages accepted but not finished, and outbound events that are due.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy import and_, or_, select
from sqlmodel import Session, col

from labflow import jobs
from labflow.models import InboundMessage, OutboundDelivery, Subscription, utcnow
from labflow.settings import get_settings

log = structlog.get_logger(__name__)


def sweep(session: Session, *, limit: int = 5000, restart: bool = False) -> dict[str, int]:
    """`restart=True` after an embedded restart: every claim and dispatch before it is dead."""
    settings = get_settings()
    now = utcnow()
    stale = now if restart else now - timedelta(seconds=settings.stale_after_seconds)
    lease = now if restart else now - timedelta(seconds=settings.claim_lease_seconds)
    waiting = or_(
        and_(
            col(InboundMessage.status) == "accepted",
            or_(
                col(InboundMessage.dispatched_at).is_(None),
                col(InboundMessage.dispatched_at) < stale,
            ),
        ),
        and_(
            col(InboundMessage.status) == "processing",
            col(InboundMessage.claimed_at) < lease,
        ),
    )
    ids = list(
        session.scalars(
            select(col(InboundMessage.id))
            .where(waiting)
            .order_by(col(InboundMessage.received_at))
            .limit(limit)
        )
    )
    if ids:
        session.execute(
            InboundMessage.__table__.update()  # type: ignore[attr-defined]
            .where(col(InboundMessage.id).in_(ids))
            .values(dispatched_at=now)
        )
    due = session.execute(
        select(col(OutboundDelivery.subscription_id), col(OutboundDelivery.mrn))
        .join(Subscription, col(Subscription.id) == col(OutboundDelivery.subscription_id))
        .where(
            col(OutboundDelivery.status) == "pending",
            col(OutboundDelivery.next_attempt_at) <= now,
            col(Subscription.enabled),
        )
        .distinct()
        .limit(limit)
    ).all()
    session.commit()
    sent = sum(jobs.send_now(jobs.PROCESS_MESSAGE, message_id) for message_id in ids)
    for subscription_id, mrn in due:
        jobs.send_now(jobs.DELIVER_EVENTS, subscription_id, mrn)
    if ids or due:
        log.info("sweeper.redispatched", messages=len(ids), sent=sent, delivery_groups=len(due))
    return {"messages": len(ids), "sent": sent, "delivery_groups": len(due)}
