"""Helpers shared by tests: signing, service checks, waiting for the pipeline."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

INTERFACE = "lis-main"
SECRET = "whsec_" + base64.b64encode(b"labflow-test-secret-0123456789abcdef").decode()
IN_CI = os.environ.get("CI", "").lower() == "true"


def postgres_admin_url(database: str = "test", driver: str = "postgresql") -> str:
    host = os.environ.get("LABFLOW_TEST_PG_HOST", "127.0.0.1")
    user = os.environ.get("LABFLOW_TEST_PG_USER", "postgres")
    return f"{driver}://{user}@{host}:5432/{database}"


def redis_url(db: int = 0) -> str:
    return os.environ.get("LABFLOW_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{db}")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Fail in CI, skip on a developer machine, when a service the test needs is down."""
    port = {"postgres": 5432, "redis": 6379}[name]
    if _port_open(port):
        return
    message = f"{name} is not reachable on 127.0.0.1:{port}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def signed_headers(
    body: bytes,
    content_type: str,
    *,
    webhook_id: str | None = None,
    secret: str = SECRET,
    at: float | None = None,
) -> dict[str, str]:
    from datetime import UTC, datetime

    from labflow.signing import sign

    moment = datetime.fromtimestamp(at, UTC) if at is not None else None
    headers = sign(secret, webhook_id or f"msg_{uuid.uuid4().hex}", body, moment)
    headers["content-type"] = content_type
    return headers


def json_event(mrn: str, facts: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"patient": {"mrn": mrn}, "facts": facts, **extra}).encode()


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def message_status(message_id: str) -> str:
    from labflow.db import session_scope
    from labflow.models import InboundMessage

    with session_scope() as s:
        row = s.get(InboundMessage, message_id)
        return row.status if row else "missing"


# Sample facts shared by pipeline tests: daratumumab given, then a panreactive IAT screen.
DARA = {
    "kind": "therapy",
    "effective": "2026-05-01T09:00:00Z",
    "agent": "daratumumab",
    "route": "IV",
    "record": "administered",
    "first_dose": "2026-01-05",
    "last_dose": "2026-05-01",
}
PANREACTIVE = {
    "kind": "antibody_screen",
    "effective": "2026-05-10T08:00:00Z",
    "interpretation": "positive",
    "cells": {"I": "1+", "II": "1+", "III": "1+"},
}
