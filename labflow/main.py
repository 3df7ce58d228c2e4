"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from labflow import __version__
from labflow.api import audit, evaluate, health, inbound, messages, patients, subscriptions
from labflow.errors import Conflict, NotFound
from labflow.logs import configure_logging

DESCRIPTION = """
labflow flags anti-CD38 (daratumumab, isatuximab) interference with indirect antiglobulin
tests, drives DTT- and Kell-aware transfusion workflows, routes immunofixation to drug-matched
shift assays or mass spectrometry, and keeps a tamper-evident audit trail.

It is **decision support**: it recommends, orders reflex tests and records. The laboratory's
validated blood-bank system still issues blood.
"""


def create_app() -> FastAPI:
    configure_logging()
    app = FastAPI(title="labflow", version=__version__, description=DESCRIPTION)
    for module in (inbound, messages, patients, evaluate, subscriptions, audit, health):
        app.include_router(module.router)
    health.register_backlog_metrics()

    # Services raise domain errors; this is the one place they become HTTP answers.
    @app.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # Never leak internals (or patient data) in an error; the log has the type only.
        import structlog

        structlog.get_logger("labflow.api").error("api.unexpected", error=type(exc).__name__)
        return JSONResponse({"detail": "internal error"}, status_code=500)

    return app
