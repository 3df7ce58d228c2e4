"""Engine and sessions. The same code runs on SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlmodel import Session

from labflow.settings import get_settings


@lru_cache
def engine_for(url: str) -> Engine:
    # hide_parameters: SQL errors end up in logs and must not carry MRNs or message content.
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
        )
        _make_sqlite_serializable(engine)
    else:
        # No pre-ping: it costs a round trip per checkout on the hot path. A connection broken
        # by a database restart fails once, SQLAlchemy then invalidates the pool, and the
        # message is retried (its attempt is counted; the sweeper re-dispatches it).
        engine = create_engine(
            url, pool_size=10, max_overflow=20, pool_recycle=1800, hide_parameters=True
        )
    return engine


def _make_sqlite_serializable(engine: Engine) -> None:
    # pysqlite's deferred BEGIN lets two writers read the same audit-chain head and then
    # collide; BEGIN IMMEDIATE takes the write lock up front, so writers queue instead.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def get_engine() -> Engine:
    return engine_for(get_settings().database_url)


def get_session() -> Iterator[Session]:
    """FastAPI dependency: one session per request; services commit, routes never do."""
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


@contextmanager
def session_scope() -> Iterator[Session]:
    """A short-lived session for workers and scripts."""
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
