"""Liveness, readiness and Prometheus metrics (unauthenticated, contract section 3)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlmodel import col

from labflow import jobs
from labflow.db import session_scope
from labflow.models import InboundMessage, OutboundDelivery, as_utc, utcnow

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "database or broker unreachable"}})
def readyz() -> Response:
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    ready = all(checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


def _database_ok() -> bool:
    try:
        with session_scope() as session:
            session.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _broker_ok() -> bool:
    url = jobs.broker_url()
    if url == jobs.EMBEDDED_BROKER:
        return True
    try:
        from kombu import Connection

        with Connection(url, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


@router.get("/metrics")
def metrics_endpoint() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class BacklogCollector(Collector):
    """Queue depth and the age of the oldest unfinished message, read from the database."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "labflow_queue_depth", "Messages accepted, not yet finished", labels=["interface"]
        )
        oldest = GaugeMetricFamily(
            "labflow_oldest_unprocessed_age_seconds", "Age of the oldest unfinished message"
        )
        pending = GaugeMetricFamily("labflow_outbox_pending", "Outbound events not yet delivered")
        try:
            with session_scope() as session:
                unfinished = col(InboundMessage.status).in_(("accepted", "processing"))
                rows = session.execute(
                    select(col(InboundMessage.interface), func.count())
                    .where(unfinished)
                    .group_by(col(InboundMessage.interface))
                ).all()
                first = session.scalar(
                    select(func.min(col(InboundMessage.received_at))).where(unfinished)
                )
                waiting = session.scalar(
                    select(func.count())
                    .select_from(OutboundDelivery)
                    .where(col(OutboundDelivery.status) == "pending")
                )
        except Exception:
            return
        for interface, count in rows:
            depth.add_metric([interface], count)
        oldest.add_metric([], (utcnow() - as_utc(first)).total_seconds() if first else 0.0)
        pending.add_metric([], waiting or 0)
        yield depth
        yield oldest
        yield pending


_collector = BacklogCollector()


def register_backlog_metrics() -> None:
    # Several apps in one process (tests) would register it twice.
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)
