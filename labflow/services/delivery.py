"""Delivering outbox events to subscribers: signed, in order per patient, retried, logged."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import select, update
from sqlmodel import Session, col

from labflow import audit, jobs, metrics
from labflow.db import is_postgres
from labflow.interop.render import render
from labflow.models import DeliveryAttempt, OutboundDelivery, Subscription, as_utc, utcnow
from labflow.signing import sign

log = structlog.get_logger(__name__)
SessionFactory = Callable[[], AbstractContextManager[Session]]

# The Standard Webhooks example schedule: wait before attempt n+1 (seconds).
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
SHORT_RETRY_SECONDS = 60  # retries this soon go on the queue; later ones wait for the sweeper
TIMEOUT_SECONDS = 15.0


def _body(fmt: str, payload: dict[str, Any]) -> tuple[bytes, str]:
    # labflow JSON carries the whole event (protocol, profile hash...); FHIR and HL7 v2 map it.
    if fmt == "json":
        return json.dumps(payload, sort_keys=True).encode(), "application/json"
    return render(payload, fmt)


def deliver_events(
    sessions: SessionFactory, subscription_id: str, mrn: str, client: httpx.Client | None = None
) -> int:
    """Send this patient's due events to one subscriber, oldest first; stop at a failure."""
    delivered = 0
    own_client = client is None
    client = client or httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False)
    try:
        while True:
            with sessions() as session:
                result = _deliver_next(session, client, subscription_id, mrn)
            if result != "delivered":
                return delivered
            delivered += 1
    finally:
        if own_client:
            client.close()


def _deliver_next(session: Session, client: httpx.Client, subscription_id: str, mrn: str) -> str:
    subscription = session.get(Subscription, subscription_id)
    if subscription is None or not subscription.enabled:
        if subscription is not None and pause_pending(session, subscription_id):
            session.commit()
        return "disabled"
    head = (
        select(col(OutboundDelivery.id))
        .where(
            col(OutboundDelivery.subscription_id) == subscription_id,
            col(OutboundDelivery.mrn) == mrn,
            col(OutboundDelivery.status) == "pending",
        )
        .order_by(col(OutboundDelivery.seq))
        .limit(1)
        .scalar_subquery()
    )
    # Lock only the patient's *oldest* pending event. SKIP LOCKED on the whole pending set let
    # a second worker pass a locked head and send the next event first (out of order); here
    # it finds nothing and leaves the patient to the worker already sending.
    query = select(OutboundDelivery).where(
        col(OutboundDelivery.id) == head,
        col(OutboundDelivery.status) == "pending",  # re-checked after a concurrent commit
    )
    query = query.with_for_update(skip_locked=True) if is_postgres(session) else query
    delivery = session.scalars(query).first()
    if delivery is None:
        return "empty"  # nothing due, or another worker holds this patient's head event
    if as_utc(delivery.next_attempt_at) > utcnow():
        return "not_due"
    body, content_type = _body(subscription.format, delivery.payload)
    headers = sign(subscription.secret, delivery.event_id, body)
    headers["content-type"] = content_type
    started = time.perf_counter()
    status_code: int | None = None
    error: str | None = None
    try:
        response = client.post(subscription.url, content=body, headers=headers)
        status_code = response.status_code
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    elapsed = (time.perf_counter() - started) * 1000
    delivery.attempts += 1
    session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            status_code=status_code,
            error=error,
            duration_ms=round(elapsed, 1),
        )
    )
    if status_code is not None and 200 <= status_code < 300:
        delivery.status, delivery.delivered_at = "delivered", utcnow()
        session.commit()
        metrics.DELIVERIES.inc()
        return "delivered"
    metrics.DELIVERY_FAILURES.labels(subscription_id).inc()
    if status_code == 410:
        _disable(session, subscription, "endpoint answered 410 Gone")
        delivery.last_error = "410 Gone: endpoint disabled"
        session.commit()
        return "disabled"
    delivery.last_error = error or f"HTTP {status_code}"
    wait = _next_wait(delivery.attempts)
    if wait is None:
        delivery.status = "failed"  # kept for manual replay
        log.warning("delivery.gave_up", delivery_id=delivery.id, attempts=delivery.attempts)
    else:
        delivery.next_attempt_at = utcnow() + timedelta(seconds=wait)
    session.commit()
    if wait is not None and wait <= SHORT_RETRY_SECONDS:
        jobs.send_now(jobs.DELIVER_EVENTS, subscription_id, mrn, countdown=wait)
    return "failed"


def _next_wait(attempts: int) -> float | None:
    if attempts > len(RETRY_SCHEDULE):
        return None
    base = RETRY_SCHEDULE[attempts - 1]
    return base * random.uniform(1.0, 1.1)  # jitter keeps retries from arriving in waves


def pause_pending(session: Session, subscription_id: str) -> int:
    """Park a disabled endpoint's waiting events as `paused` until it is enabled again.

    The sweeper re-dispatches every due `pending` row; left pending, a disabled endpoint's
    events went back on the queue at every sweep, forever, crowding out real work.
    """
    result = session.execute(
        update(OutboundDelivery)
        .where(
            col(OutboundDelivery.subscription_id) == subscription_id,
            col(OutboundDelivery.status) == "pending",
        )
        .values(status="paused")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _disable(session: Session, subscription: Subscription, reason: str) -> None:
    subscription.enabled, subscription.disabled_reason = False, reason
    pause_pending(session, subscription.id)
    audit.record(
        session,
        actor="worker:delivery",
        action="subscription.disabled",
        subject_type="subscription",
        subject_id=subscription.id,
        reason=reason,
        after={"url": subscription.url, "enabled": False},
    )
    log.warning("delivery.endpoint_disabled", subscription_id=subscription.id)
