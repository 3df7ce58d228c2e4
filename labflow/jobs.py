"""The queue boundary, publish side. Only this module talks to the broker.

Jobs carry task names and row ids only. They are sent after the database commit (never before),
so a worker can always find what it is asked to process; if the send fails the row is still
there and the sweeper dispatches it again.
"""

from __future__ import annotations

import queue
import threading
from functools import lru_cache
from typing import Any

import structlog
from celery import Celery
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from labflow.settings import get_settings

PROCESS_MESSAGE = "labflow.process_message"
DELIVER_EVENTS = "labflow.deliver_events"
SWEEP = "labflow.sweep"
BENCH_NOOP = "labflow.bench_noop"
QUEUE = "labflow"

EMBEDDED_BROKER = "memory://"
log = structlog.get_logger(__name__)
_PENDING = "pending_jobs"


def broker_url() -> str:
    return get_settings().broker_url or EMBEDDED_BROKER


@lru_cache
def _producer(url: str) -> Celery:
    app = Celery("labflow-producer", broker=url, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = True
    app.conf.broker_transport_options = {"visibility_timeout": 3600}
    return app


def enqueue(session: Session, name: str, *args: Any) -> None:
    """Queue a job to be sent when `session` commits (dropped if it rolls back)."""
    session.info.setdefault(_PENDING, []).append((name, args))


def send_now(name: str, *args: Any, countdown: float | None = None) -> bool:
    """Send a job immediately (sweeper, CLI). False if the broker could not take it."""
    try:
        _producer(broker_url()).send_task(
            name,
            args=list(args),
            queue=QUEUE,
            countdown=countdown,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.5},
        )
    except Exception as exc:  # the broker is down: the database row keeps the work
        log.warning("broker.send_failed", task=name, error=type(exc).__name__)
        return False
    return True


class _Publisher:
    """Sends committed jobs from a background thread, off the request's critical path.

    A job still waiting here when the process dies is not lost work: its row is committed and
    the sweeper dispatches it again.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, tuple[Any, ...]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, name: str, args: tuple[Any, ...]) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="job-publisher",
                                                    daemon=True)
                    self._thread.start()
        self._queue.put((name, args))

    def _run(self) -> None:
        while True:
            name, args = self._queue.get()
            send_now(name, *args)


_publisher = _Publisher()


@event.listens_for(OrmSession, "after_commit")
def _send_pending(session: OrmSession) -> None:
    for name, args in session.info.pop(_PENDING, []):
        _publisher.put(name, args)


@event.listens_for(OrmSession, "after_rollback")
def _drop_pending(session: OrmSession) -> None:
    session.info.pop(_PENDING, None)
