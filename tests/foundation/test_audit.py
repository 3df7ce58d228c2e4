"""The audit trail: append-only in the database, hash-chained, verifiable."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from typer.testing import CliRunner

from labflow import audit
from labflow.db import get_engine, session_scope
from labflow.models import AuditEvent


def _add_events(n: int) -> list[int]:
    with session_scope() as s:
        for i in range(n):
            audit.record(
                s,
                actor="user:test",
                action="test.event",
                subject_type="test",
                subject_id=f"s{i}",
                reason="why",
                before={"v": i},
                after={"v": i + 1},
            )
        s.commit()
        last = s.scalars(text("SELECT max(seq) FROM audit_event")).one()
    return list(range(last - n + 1, last + 1))


def test_events_written_in_the_callers_transaction_roll_back_with_it() -> None:
    with session_scope() as s:
        before = s.scalars(text("SELECT count(*) FROM audit_event")).one()
        audit.record(s, actor="user:x", action="test.rolled_back", subject_type="t", subject_id="1")
        s.rollback()
        s.commit()
        assert s.scalars(text("SELECT count(*) FROM audit_event")).one() == before


def test_database_refuses_update_and_delete() -> None:
    seq = _add_events(1)[0]
    for statement in (
        f"UPDATE audit_event SET actor = 'mallory' WHERE seq = {seq}",
        f"DELETE FROM audit_event WHERE seq = {seq}",
    ):
        with get_engine().connect() as conn, pytest.raises(DatabaseError):
            conn.exec_driver_sql(statement)
            conn.commit()
    with session_scope() as s:
        assert s.get(AuditEvent, seq).actor == "user:test"


def test_chain_links_each_event_to_the_previous_one() -> None:
    seqs = _add_events(3)
    with session_scope() as s:
        rows = [s.get(AuditEvent, q) for q in seqs]
        assert rows[1].prev_hash == rows[0].hash and rows[2].prev_hash == rows[1].hash
        assert audit.verify(s).ok


def _tamper(sql: str) -> None:
    """An attacker with owner rights drops the guard, changes history, restores the guard."""
    engine = get_engine()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER USER")
            conn.exec_driver_sql(sql)
            conn.exec_driver_sql("ALTER TABLE audit_event ENABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_event_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_event_no_delete")
            conn.exec_driver_sql(sql)
            for verb in ("UPDATE", "DELETE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event"
                    " BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
                )


@pytest.fixture()
def restore_chain():
    """Tampering breaks the shared test database's chain; rebuild it afterwards."""
    yield
    _tamper("DELETE FROM audit_event")
    with get_engine().begin() as conn:
        conn.exec_driver_sql("UPDATE audit_head SET last_seq = 0, last_hash = '" + "0" * 64 + "'")


def test_cli_verify_reports_an_edited_event(restore_chain: None) -> None:
    from workers.cli import app

    seqs = _add_events(3)
    assert CliRunner().invoke(app, ["audit", "verify"]).exit_code == 0
    _tamper(f"UPDATE audit_event SET reason = 'nothing happened' WHERE seq = {seqs[1]}")
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"BROKEN at event {seqs[1]}" in result.output
    assert "edited" in result.output


def test_cli_verify_reports_a_deleted_event(restore_chain: None) -> None:
    from workers.cli import app

    seqs = _add_events(3)
    _tamper(f"DELETE FROM audit_event WHERE seq = {seqs[1]}")
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"BROKEN at event {seqs[1]}" in result.output and "missing" in result.output


def test_cli_verify_reports_events_removed_from_the_end(restore_chain: None) -> None:
    from workers.cli import app

    seqs = _add_events(2)
    _tamper(f"DELETE FROM audit_event WHERE seq = {seqs[-1]}")
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1 and "chain head" in result.output
