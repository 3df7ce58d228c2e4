"""The `labflow` command. It lives on the outer layer because `serve` and `worker` start the
Celery worker (workers) next to the API (labflow): imports flow workers -> labflow only."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from labflow.cli import app
from labflow.settings import get_settings


def _prepare() -> None:
    from labflow.db import session_scope
    from labflow.logs import configure_logging
    from labflow.migrate import upgrade
    from labflow.services.subscriptions import sync_from_settings

    configure_logging()
    upgrade()
    with session_scope() as session:
        sync_from_settings(session, get_settings().outbound_webhooks)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int, typer.Option(help="API processes (production only: the embedded mode needs one)")
    ] = 1,
) -> None:
    """Run the API. With no LABFLOW_BROKER_URL, a Celery worker and the sweeper run inside."""
    import uvicorn

    from labflow.main import create_app

    if workers > 1 and get_settings().embedded:
        typer.echo(
            "--workers needs LABFLOW_BROKER_URL: the embedded worker lives in one process", err=True
        )
        raise typer.Exit(2)
    _prepare()
    if workers > 1:
        # Ingest is a commit per request; more processes use more cores (production only).
        uvicorn.run(
            "labflow.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
        return
    embedded = None
    if get_settings().embedded:
        from workers import embedded as embedded_worker

        embedded = embedded_worker.start()
        typer.echo("embedded worker started (in-memory broker, database is the record)")
    try:
        uvicorn.run(create_app(), host=host, port=port, log_level="warning")
    finally:
        if embedded is not None:
            embedded.stop()


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes")] = 1,
    beat: Annotated[bool, typer.Option(help="Also run the periodic sweeper (beat)")] = False,
    pool: Annotated[str, typer.Option(help="prefork, threads or solo")] = "prefork",
) -> None:
    """Run a Celery worker against LABFLOW_BROKER_URL (production)."""
    from labflow.db import session_scope
    from labflow.services.sweeper import sweep
    from workers.app import configure

    if get_settings().embedded:
        typer.echo(
            "LABFLOW_BROKER_URL is not set: `labflow serve` runs the embedded worker", err=True
        )
        raise typer.Exit(2)
    _prepare()
    celery_app = configure()
    with session_scope() as session:
        sweep(session)  # whatever was accepted while no worker ran
    argv = [
        "worker",
        "--loglevel=WARNING",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        "-Ofair",
        "--without-gossip",
        "--without-mingle",
        "-Q",
        "labflow",
        f"--hostname=labflow-{os.getpid()}@%h",
    ]
    if beat:
        argv.append("--beat")
    celery_app.worker_main(argv)


@app.command("beat")
def beat_command() -> None:
    """Run Celery beat: schedules the sweeper (production)."""
    from workers.app import configure

    _prepare()
    configure().start(["beat", "--loglevel=WARNING", "--schedule=/tmp/labflow-beat-schedule"])


@app.command("sweep")
def sweep_command() -> None:
    """Dispatch every message accepted but not finished, and due outbound events, once."""
    from labflow.db import session_scope
    from labflow.services.sweeper import sweep

    _prepare()
    with session_scope() as session:
        typer.echo(sweep(session))


def main() -> None:
    app()
