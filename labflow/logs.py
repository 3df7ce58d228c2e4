"""Structured JSON logs. Never log patient identifiers: ids of rows only."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_FORBIDDEN = {"mrn", "patient", "name", "birth_date", "body"}


def _drop_patient_identifiers(
    _logger: object, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in _FORBIDDEN & event.keys():
        event[key] = "[redacted]"
    return event


class _StderrLogger:
    """Writes to whatever sys.stderr is *now* (a bound file object would outlive redirects)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    debug = info = warning = warn = error = critical = exception = log = msg


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level)
    # Celery logs every task at INFO; with thousands of messages that drowns the real events.
    logging.getLogger("celery").setLevel(max(level, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_patient_identifiers,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_args: _StderrLogger(),
        cache_logger_on_first_use=True,
    )
