"""Time filters at the edges of the calendar are answered, never a 500."""

from __future__ import annotations

import pytest

EDGES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01"]


@pytest.mark.parametrize("value", EDGES)
def test_message_and_audit_time_filters_accept_extreme_times(client, tokens, value) -> None:
    auth = {"Authorization": f"Bearer {tokens['auditor']}"}
    for path, names in (
        ("/api/v1/messages", ("received_from", "received_to")),
        ("/api/v1/audit", ("occurred_from", "occurred_to")),
    ):
        for name in names:
            response = client.get(path, params={name: value}, headers=auth)
            assert response.status_code == 200, (path, name, response.text)
