"""Schema migrations (Alembic), applied by `labflow serve` / `labflow worker` at start-up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from labflow.db import engine_for
from labflow.settings import get_settings

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url or get_settings().database_url)
    return config


def upgrade(url: str | None = None) -> None:
    url = url or get_settings().database_url
    engine = engine_for(url)
    config = alembic_config(url)
    # Run on a plain connection (no BEGIN IMMEDIATE games needed: alembic owns the DDL).
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Concurrent starters (api + workers) must not race; released at commit.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(720331)")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
