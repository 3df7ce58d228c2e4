"""The queued pipeline on the embedded default: a real Celery worker, not eager mode."""

from __future__ import annotations

from sqlalchemy import func, select

from labflow.db import session_scope
from labflow.models import Decision, InboundMessage
from tests.support import (
    DARA,
    INTERFACE,
    PANREACTIVE,
    json_event,
    message_status,
    signed_headers,
    wait_for,
)


def _send(client, mrn: str, facts: list[dict]) -> str:
    body = json_event(mrn, facts)
    response = client.post(
        f"/api/v1/inbound/{INTERFACE}",
        content=body,
        headers=signed_headers(body, "application/json"),
    )
    assert response.status_code == 202, response.text
    return response.json()["message_id"]


def test_accepted_message_becomes_one_decision(client, embedded_worker, mrn, tokens) -> None:
    message_id = _send(client, mrn, [DARA, PANREACTIVE])
    wait_for(lambda: message_status(message_id) == "processed")
    with session_scope() as s:
        decisions = s.scalars(select(Decision).where(Decision.message_id == message_id)).all()
    assert len(decisions) == 1
    assert "R-C1" in decisions[0].rules_fired
    view = client.get(
        f"/api/v1/patients/{mrn}", headers={"Authorization": f"Bearer {tokens['technologist']}"}
    ).json()
    assert "IAT_INTERFERENCE_SUSPECTED" in {f["code"] for f in view["flags"]}


def test_redelivered_task_adds_no_second_decision(client, embedded_worker, mrn) -> None:
    from labflow import jobs

    message_id = _send(client, mrn, [PANREACTIVE])
    wait_for(lambda: message_status(message_id) == "processed")
    for _ in range(3):  # the broker delivers the same id again (visibility timeout, restarts)
        jobs.send_now(jobs.PROCESS_MESSAGE, message_id)
    marker = _send(client, mrn, [DARA])  # processed after the repeats (one worker queue)
    wait_for(lambda: message_status(marker) == "processed")
    with session_scope() as s:
        count = s.scalar(
            select(func.count()).select_from(Decision).where(Decision.message_id == message_id)
        )
    assert count == 1


def test_message_that_keeps_failing_is_parked_with_its_error(
    client, embedded_worker, mrn, monkeypatch
) -> None:
    from labflow.services import processing

    def broken(*_args, **_kwargs):
        raise RuntimeError("evaluator exploded")

    monkeypatch.setattr(processing, "evaluate", broken)
    message_id = _send(client, mrn, [PANREACTIVE])
    wait_for(lambda: message_status(message_id) == "parked", timeout=60)
    with session_scope() as s:
        message = s.get(InboundMessage, message_id)
        assert message.attempts == 5
        assert any("evaluator exploded" in e for e in message.errors)
        assert "gave up after 5 attempts" in message.errors[-1]
        assert (
            s.scalar(
                select(func.count()).select_from(Decision).where(Decision.message_id == message_id)
            )
            == 0
        )


def test_parked_message_can_be_reprocessed_after_the_fix(
    client, embedded_worker, mrn, tokens, monkeypatch
) -> None:
    from labflow.services import processing

    real = processing.evaluate
    monkeypatch.setattr(
        processing,
        "evaluate",
        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("temporarily broken")),
    )
    message_id = _send(client, mrn, [PANREACTIVE])
    wait_for(lambda: message_status(message_id) == "parked", timeout=60)
    monkeypatch.setattr(processing, "evaluate", real)
    response = client.post(
        f"/api/v1/messages/{message_id}/reprocess",
        json={"reason": "evaluator fixed"},
        headers={"Authorization": f"Bearer {tokens['supervisor']}"},
    )
    assert response.status_code == 200, response.text
    wait_for(lambda: message_status(message_id) == "processed")
