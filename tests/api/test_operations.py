"""Operational endpoints (contract section 3): liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support import INTERFACE, json_event, signed_headers

SCREEN = {
    "kind": "antibody_screen",
    "effective": "2026-03-01T10:00:00Z",
    "interpretation": "negative",
}


def _families(client: Any) -> dict[str, Any]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def test_healthz(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database_and_broker(client: Any) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "checks": {"database": True, "broker": True}}


def test_metrics_expose_intake_backlog_and_latency(client: Any, mrn: str) -> None:
    body = json_event(mrn, [SCREEN])
    posted = client.post(
        f"/api/v1/inbound/{INTERFACE}",
        content=body,
        headers=signed_headers(body, "application/json"),
    )
    assert posted.status_code == 202
    families = _families(client)

    # The parser names a counter family without its _total suffix.
    received = families["labflow_messages_received"]
    assert received.type == "counter"
    assert any(
        s.name == "labflow_messages_received_total"
        and s.labels == {"interface": INTERFACE, "status": "accepted"}
        and s.value >= 1
        for s in received.samples
    )
    depth = families["labflow_queue_depth"]
    assert depth.type == "gauge"
    assert all(s.value >= 0 for s in depth.samples)
    oldest = families["labflow_oldest_unprocessed_age_seconds"]
    assert oldest.type == "gauge" and len(oldest.samples) == 1
    assert oldest.samples[0].value >= 0
    latency = families["labflow_decision_latency_seconds"]
    assert latency.type == "histogram"
    assert any(s.name == "labflow_decision_latency_seconds_count" for s in latency.samples)


def test_metrics_and_probes_need_no_token(client: Any) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path, headers={"Authorization": "Bearer nonsense"}).status_code == 200
