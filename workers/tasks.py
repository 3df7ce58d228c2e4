"""Thin tasks: ids in, a short session, a labflow service call."""

from __future__ import annotations

from labflow import jobs
from labflow.db import session_scope
from labflow.services import delivery, processing, sweeper
from workers.app import app


@app.task(name=jobs.PROCESS_MESSAGE)
def process_message(message_id: str) -> str:
    return processing.process_message(session_scope, message_id)


@app.task(name=jobs.DELIVER_EVENTS)
def deliver_events(subscription_id: str, mrn: str) -> int:
    return delivery.deliver_events(session_scope, subscription_id, mrn)


@app.task(name=jobs.SWEEP)
def sweep() -> dict[str, int]:
    with session_scope() as session:
        return sweeper.sweep(session)


@app.task(name=jobs.BENCH_NOOP)
def bench_noop(sink: str) -> None:
    """The baseline for bench/pipeline.py: a task that only notes when it ran."""
    import time

    from workers import bench_sink

    bench_sink.note(sink, time.time())
