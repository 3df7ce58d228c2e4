"""Prometheus metrics. Gauges that come from the database are computed at scrape time."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES_RECEIVED = Counter(
    "labflow_messages_received_total", "Inbound messages stored", ["interface", "status"]
)
MESSAGES_PROCESSED = Counter(
    "labflow_messages_processed_total", "Inbound messages turned into a decision", ["interface"]
)
MESSAGES_PARKED = Counter(
    "labflow_messages_parked_total", "Inbound messages parked for review", ["interface"]
)
DELIVERY_FAILURES = Counter(
    "labflow_delivery_failures_total", "Failed outbound webhook attempts", ["subscription"]
)
DELIVERIES = Counter("labflow_deliveries_total", "Delivered outbound webhook events")
DECISION_LATENCY = Histogram(
    "labflow_decision_latency_seconds",
    "From task start to committed decision",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
