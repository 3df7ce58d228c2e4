"""The embedded default: a real Celery worker and the sweeper inside the API process.

The broker is kombu's in-memory transport, so nothing survives a restart but the database,
which is enough: at start-up the sweeper dispatches everything accepted and not finished.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import structlog
from celery.worker import WorkController

from labflow.db import session_scope
from labflow.services.sweeper import sweep
from labflow.settings import get_settings
from workers.app import configure

log = structlog.get_logger(__name__)


@dataclass
class EmbeddedWorker:
    controller: WorkController
    thread: threading.Thread
    stop_sweeping: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        self.stop_sweeping.set()
        self.controller.stop(in_sighandler=False)
        self.thread.join(10)


def start() -> EmbeddedWorker:
    settings = get_settings()
    app = configure()
    controller = app.WorkController(
        app=app,
        pool="threads",
        concurrency=settings.embedded_worker_threads,
        hostname="labflow-embedded@localhost",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel="WARNING",
        ready_callback=None,
    )
    thread = threading.Thread(target=controller.start, name="celery-embedded", daemon=True)
    thread.start()
    worker = EmbeddedWorker(controller, thread)
    threading.Thread(
        target=_sweep_forever, args=(worker.stop_sweeping,), name="sweeper", daemon=True
    ).start()
    return worker


def _sweep_forever(stop: threading.Event) -> None:
    interval = get_settings().sweep_interval_seconds
    restart = True  # the in-memory broker starts empty: re-dispatch all unfinished work
    while True:
        try:
            with session_scope() as session:
                sweep(session, restart=restart)
            restart = False
        except Exception as exc:  # the next sweep tries again
            log.warning("sweeper.failed", error=type(exc).__name__)
        if stop.wait(interval):
            return
