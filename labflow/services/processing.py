"""Processing one inbound message: claim, map, evaluate, record, in crash-safe steps.

1. Claim (own transaction): count the attempt, park after `max_attempts`, mark `processing`.
   Counting before the work means a message that kills its worker still runs out of attempts.
2. Work (one transaction): facts, evaluation, findings, decision, audit, outbox, `processed`.
   The unique `decision.message_id` makes a second decision for the same message impossible,
   whatever the broker redelivers.
3. On a mapping error the message is parked at once; on anything else the error is recorded
   and the message goes back to `accepted` for the sweeper to retry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from labflow import audit, clinical, metrics
from labflow.interop.model import MappingError
from labflow.models import Decision, InboundMessage, as_utc, new_id, utcnow
from labflow.services.facts import load_facts, lock_patient, store_facts
from labflow.services.findings import apply_decision, current_findings
from labflow.services.mapping import map_body
from labflow.services.outbox import decision_events, record_events
from labflow.settings import get_settings
from protocols import evaluate
from protocols.facts import ActiveRequirement

log = structlog.get_logger(__name__)
SessionFactory = Callable[[], AbstractContextManager[Session]]
FINAL = {"processed", "parked", "duplicate", "quarantined"}


def process_message(sessions: SessionFactory, message_id: str) -> str:
    """Run the whole pipeline for one message id; returns the resulting status."""
    started = time.perf_counter()
    with sessions() as session:
        outcome = _claim(session, message_id)
    if outcome != "claimed":
        return outcome
    try:
        with sessions() as session:
            status = _work(session, message_id)
    except MappingError as exc:
        with sessions() as session:
            _give_up(session, message_id, exc.errors)
        return "parked"
    except IntegrityError:
        # Another delivery of this task committed the decision first: nothing to add.
        log.info("pipeline.already_decided", message_id=message_id)
        return "processed"
    except Exception as exc:
        # Recorded on the message (visible in the message store) and retried by the sweeper;
        # not re-raised, so Celery does not log an exception text that may quote patient data.
        with sessions() as session:
            _release(session, message_id, f"{type(exc).__name__}: {exc}"[:500])
        return "retry"
    metrics.DECISION_LATENCY.observe(time.perf_counter() - started)
    return status


def _locked(session: Session, message_id: str) -> InboundMessage | None:
    return session.scalars(
        select(InboundMessage).where(col(InboundMessage.id) == message_id).with_for_update()
    ).first()


def _claim(session: Session, message_id: str) -> str:
    settings = get_settings()
    now = utcnow()
    lease = now - timedelta(seconds=settings.claim_lease_seconds)
    m = InboundMessage
    # The common case in one statement: claim it if nobody holds a live claim.
    claimed = (
        session.connection()
        .execute(
            update(m)
            .where(
                col(m.id) == message_id,
                col(m.attempts) < settings.max_attempts,
                or_(
                    col(m.status) == "accepted",
                    and_(col(m.status) == "processing", col(m.claimed_at) < lease),
                ),
            )
            .values(attempts=m.attempts + 1, status="processing", claimed_at=now)
            .returning(col(m.id))
        )
        .first()
    )
    session.commit()
    if claimed is not None:
        return "claimed"
    return _claim_refused(session, message_id)


def _claim_refused(session: Session, message_id: str) -> str:
    """Why a message could not be claimed; parks it once it has run out of attempts."""
    settings = get_settings()
    message = _locked(session, message_id)
    if message is None:
        return "missing"
    if message.status in FINAL:
        return message.status
    now = utcnow()
    if (
        message.status == "processing"
        and message.claimed_at is not None
        and as_utc(message.claimed_at) > now - timedelta(seconds=settings.claim_lease_seconds)
    ):
        return "busy"  # someone else holds a live claim
    if message.attempts >= settings.max_attempts:
        _park(session, message, f"gave up after {message.attempts} attempts")
        session.commit()
        return "parked"
    return "busy"  # claimed meanwhile by someone else


def _work(session: Session, message_id: str) -> str:
    m = InboundMessage
    # Core rows, not ORM objects, on the hot path (the ORM's bookkeeping costs more than SQL).
    conn = session.connection()
    message = conn.execute(
        select(col(m.id), col(m.status), col(m.content_type), col(m.body), col(m.interface))
        .where(col(m.id) == message_id)
        .with_for_update()
    ).first()
    if message is None or message.status != "processing":
        return message.status if message else "missing"
    mapped = map_body(message.content_type, message.body, clinical.code_maps())
    patient = lock_patient(session, mapped.mrn)
    store_facts(session, patient, message.id, mapped.facts)

    protocol, profile = clinical.protocol(), clinical.profile()
    current = current_findings(session, patient.id)
    active = [
        ActiveRequirement(code=r.code, since=r.since) for r in current["requirement"].values()
    ]
    facts = load_facts(session, patient, trigger=mapped.facts[-1], active=active)
    outcome = evaluate(protocol, profile, facts, mapped.clinical_time)

    actor = f"interface:{message.interface}"
    decision_id = new_id()
    changes = apply_decision(session, patient.id, outcome, decision_id, actor, current)
    row: dict[str, Any] = {
        "id": decision_id,
        "patient_id": patient.id,
        "message_id": message.id,
        "trigger": f"message:{message.id} {mapped.message_type}"[:200],
        "as_of": outcome.as_of,
        "protocol_id": outcome.protocol_id,
        "protocol_version": outcome.protocol_version,
        "protocol_hash": outcome.protocol_hash,
        "profile_hash": outcome.profile_hash,
        "rules_fired": list(outcome.rules_fired),
        "added": changes.added,
        "removed": changes.removed,
        "outcome": outcome.model_dump(mode="json"),
        "created_at": utcnow(),
    }
    # The unique message_id makes a second decision for this message fail right here.
    conn.execute(insert(Decision), [row])
    audit.record(
        session,
        actor=actor,
        action="decision.recorded",
        subject_type="decision",
        subject_id=decision_id,
        after={
            "message_id": message.id,
            "rules": row["rules_fired"],
            "added": changes.added,
            "removed": changes.removed,
        },
        protocol_hash=outcome.protocol_hash,
        profile_hash=outcome.profile_hash,
    )
    record_events(
        session,
        mrn=patient.mrn,
        origin_id=decision_id,
        occurred_at=row["created_at"],
        events=decision_events(changes.events, row),
    )
    conn.execute(
        update(m).where(col(m.id) == message.id).values(status="processed", processed_at=utcnow())
    )
    session.commit()
    metrics.MESSAGES_PROCESSED.labels(message.interface).inc()
    log.info(
        "pipeline.processed",
        message_id=message.id,
        decision_id=decision_id,
        rules=len(row["rules_fired"]),
    )
    return "processed"


def _give_up(session: Session, message_id: str, errors: list[str]) -> None:
    message = _locked(session, message_id)
    if message is not None and message.status not in FINAL:
        _park(session, message, *errors)
        session.commit()


def _release(session: Session, message_id: str, error: str) -> None:
    message = _locked(session, message_id)
    if message is None or message.status in FINAL:
        return
    message.errors = [*message.errors, f"attempt {message.attempts}: {error}"][-20:]
    message.status, message.claimed_at = "accepted", None
    session.commit()
    log.warning("pipeline.attempt_failed", message_id=message_id, attempt=message.attempts)


def _park(session: Session, message: InboundMessage, *errors: str) -> None:
    message.status = "parked"
    message.errors = [*message.errors, *errors][-20:]
    audit.record(
        session,
        actor="worker:pipeline",
        action="message.parked",
        subject_type="inbound_message",
        subject_id=message.id,
        after={"errors": list(errors), "attempts": message.attempts},
    )
    metrics.MESSAGES_PARKED.labels(message.interface).inc()
    log.warning("pipeline.parked", message_id=message.id, attempts=message.attempts)
