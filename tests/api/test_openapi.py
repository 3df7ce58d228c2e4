"""Schemathesis over the whole OpenAPI description, in process (ASGI), as an admin.

Checks: no 5xx, every status code documented, and responses match their documented schemas.
The run uses a database of its own, because generated admin calls change state (subscriptions,
reprocessing, requirement removals) that other test modules must not see.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import TEST_DB, _create_postgres_database, _drop_postgres_database
from tests.support import postgres_admin_url

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@schemathesis.serializer("application/hl7-v2")
def _hl7_text(_ctx: Any, value: Any) -> bytes:
    # Inbound HL7 v2 is plain ER7 text; without this the HL7 cases would be skipped.
    return value.encode() if isinstance(value, str) else str(value).encode()


@pytest.fixture(scope="module")
def isolated_admin(tmp_path_factory: pytest.TempPathFactory, configured: None) -> Iterator[str]:
    """Point the service at a fresh, migrated database for this module; yield an admin token."""
    from labflow.auth import create_token
    from labflow.db import engine_for, session_scope
    from labflow.migrate import upgrade
    from labflow.settings import get_settings

    pg_name = _create_postgres_database() if TEST_DB == "postgres" else None
    if pg_name:
        url = postgres_admin_url(pg_name, driver="postgresql+psycopg")
    else:
        path: Path = tmp_path_factory.mktemp("openapi") / "labflow.db"
        url = f"sqlite:///{path}"
    saved = os.environ["LABFLOW_DATABASE_URL"]
    os.environ["LABFLOW_DATABASE_URL"] = url
    get_settings.cache_clear()
    try:
        upgrade()
        with session_scope() as session:
            token = create_token(session, role="admin", name=f"openapi-{uuid.uuid4().hex[:6]}")
        yield token
    finally:
        os.environ["LABFLOW_DATABASE_URL"] = saved
        get_settings.cache_clear()
        engine_for(url).dispose()
        if pg_name:
            _drop_postgres_database(pg_name)


def _app() -> Any:
    # Built at collection time: schemathesis' lazy `from_fixture` loader does not work with
    # pytest 9. The app reads its settings per request, so the fixtures below still apply.
    from labflow.main import create_app

    return create_app()


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_api_conforms_to_its_openapi(case: schemathesis.Case, isolated_admin: str) -> None:
    # Unsigned inbound webhooks are answered 401, which the description documents.
    case.call_and_validate(headers={"Authorization": f"Bearer {isolated_admin}"}, checks=CHECKS)
