"""The Celery app and its configuration (the queue boundary, consume side).

Settings follow the research on Celery-on-Redis loss and duplication: late acks, prefetch 1,
reject on worker lost, a visibility timeout far above the longest task, JSON only. None of it is
trusted for durability: the database attempt counter and the sweeper are the backstop.
"""

from __future__ import annotations

from celery import Celery

from labflow import jobs
from labflow.settings import get_settings

VISIBILITY_TIMEOUT = 3600  # seconds; the longest task (a delivery burst) takes well under this

app = Celery("labflow", include=["workers.tasks"], set_as_current=False)


def configure(broker_url: str | None = None) -> Celery:
    settings = get_settings()
    url = broker_url or jobs.broker_url()
    embedded = url == jobs.EMBEDDED_BROKER
    transport_options: dict[str, float] = {"visibility_timeout": VISIBILITY_TIMEOUT}
    if embedded:
        # kombu's in-memory transport polls; its 1 s default idles the worker between tasks.
        transport_options["polling_interval"] = 0.005
    app.conf.update(
        broker_url=url,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_default_queue=jobs.QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # In-memory messages die with the process anyway (the database is the record), so the
        # embedded worker may hold a few; Redis workers take one at a time (kill -9 loses less).
        worker_prefetch_multiplier=4 if embedded else 1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # ride out a Redis restart
        broker_transport_options=transport_options,
        visibility_timeout=VISIBILITY_TIMEOUT,
        timezone="UTC",
        beat_schedule={
            "sweep": {"task": jobs.SWEEP, "schedule": settings.sweep_interval_seconds},
        },
    )
    return app
