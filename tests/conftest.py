"""Test set-up: a real database (SQLite or PostgreSQL) migrated once, settings from env.

Choose the database with LABFLOW_TEST_DB=sqlite|postgres (default sqlite). Tests that need
PostgreSQL or Redis fail, not skip, when CI=true and the service is down.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    INTERFACE,
    SECRET,
    postgres_admin_url,
    redis_url,
    require_service,
)

TEST_DB = os.environ.get("LABFLOW_TEST_DB", "sqlite")


def _create_postgres_database() -> str:
    import psycopg

    name = f"labflow_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_postgres_database(name: str) -> None:
    import psycopg

    with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if TEST_DB == "postgres":
        require_service("postgres")
        name = _create_postgres_database()
        yield postgres_admin_url(name, driver="postgresql+psycopg")
        from labflow.db import engine_for

        engine_for.cache_clear()
        _drop_postgres_database(name)
    else:
        path: Path = tmp_path_factory.mktemp("db") / "labflow.db"
        yield f"sqlite:///{path}"


@pytest.fixture(scope="session", autouse=True)
def configured(database_url: str) -> Iterator[None]:
    """Environment for the whole run; the service reads settings from LABFLOW_* variables."""
    import json

    values = {
        "LABFLOW_DATABASE_URL": database_url,
        "LABFLOW_INBOUND_SECRETS": json.dumps({INTERFACE: SECRET, "hl7lis": SECRET}),
        "LABFLOW_SWEEP_INTERVAL_SECONDS": "0.5",
        "LABFLOW_STALE_AFTER_SECONDS": "1",
        "LABFLOW_CLAIM_LEASE_SECONDS": "5",
    }
    saved = {k: os.environ.get(k) for k in [*values, "LABFLOW_BROKER_URL"]}
    os.environ.update(values)
    os.environ.pop("LABFLOW_BROKER_URL", None)
    from labflow import clinical
    from labflow.migrate import upgrade
    from labflow.settings import get_settings

    get_settings.cache_clear()
    clinical.reset()
    upgrade()
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def embedded_worker(configured: None) -> Iterator[object]:
    """A real Celery worker (threads) on the in-memory broker, plus the sweeper."""
    from workers import embedded

    worker = embedded.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def app(configured: None):
    from labflow.main import create_app

    return create_app()


@pytest.fixture()
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture()
def session():
    from labflow.db import session_scope

    with session_scope() as s:
        yield s


@pytest.fixture(scope="session")
def tokens(configured: None) -> dict[str, str]:
    from labflow.auth import ROLES, create_token
    from labflow.db import session_scope

    with session_scope() as s:
        return {role: create_token(s, role=role, name=f"test-{role}") for role in ROLES}


@pytest.fixture()
def mrn() -> str:
    return f"MRN{uuid.uuid4().hex[:10].upper()}"


__all__ = ["redis_url"]
