"""`labflow` commands that need no worker: tokens, audit, profiles, migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labflow import auth
from labflow.db import session_scope
from labflow.migrate import upgrade

app = typer.Typer(
    help="labflow: anti-CD38 interference workflow service (decision support).",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(help="API bearer tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
profile_app = typer.Typer(help="Lab profiles (the lab's rule parameters).", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(profile_app, name="profile")


@app.command()
def migrate() -> None:
    """Apply database migrations (serve and worker do this at start-up)."""
    upgrade()
    typer.echo("database is at the latest schema")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(auth.ROLES)}")],
    name: Annotated[str, typer.Option(help="Who or what holds the token")],
) -> None:
    """Create a bearer token; it is printed once, as the last line."""
    upgrade()
    try:
        with session_scope() as session:
            token = auth.create_token(session, role=role, name=name)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"token for {name} ({role}):")
    typer.echo(token)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; report the first broken link (exit 1 if any)."""
    from labflow.audit import verify

    upgrade()
    with session_scope() as session:
        report = verify(session)
    if report.ok:
        typer.echo(f"audit chain intact: {report.checked} events verified")
        return
    typer.echo(
        f"audit chain BROKEN at event {report.first_broken_seq}: {report.problem} "
        f"({report.checked} events verified before it)",
        err=True,
    )
    raise typer.Exit(1)


@profile_app.command("check")
def profile_check(file: Annotated[Path, typer.Argument(exists=False)]) -> None:
    """Validate a lab-profile YAML file; name every bad key and value."""
    from protocols import ProfileError, load_profile

    try:
        profile = load_profile(file)
    except ProfileError as exc:
        typer.echo(f"{file}: invalid lab profile\n{exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{file}: valid (content hash {profile.content_hash})")


@profile_app.command("show")
def profile_show(
    file: Annotated[Path | None, typer.Argument(help="Defaults to LABFLOW_LAB_PROFILE")] = None,
) -> None:
    """Print the effective profile (file merged over the shipped defaults) as YAML."""
    from labflow.clinical import profile
    from protocols import ProfileError, load_profile

    try:
        effective = load_profile(file) if file else profile()
    except ProfileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(effective.to_yaml())


@app.command()
def mllp(
    port: Annotated[int, typer.Option(help="TCP port to listen on")],
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    interface: Annotated[
        str, typer.Option(help="Interface name stored with each message (dedupe scope)")
    ] = "mllp",
) -> None:
    """Receive HL7 v2 over MLLP: store each message, then answer with its ACK."""
    import asyncio

    from labflow import mllp as listener
    from labflow.logs import configure_logging
    from labflow.settings import get_settings

    configure_logging()
    upgrade()
    if get_settings().embedded:
        # No broker shared with a worker: `labflow serve`'s sweeper picks the rows up.
        typer.echo(
            "LABFLOW_BROKER_URL is not set: messages are stored here and processed by "
            "`labflow serve` on the same database (its sweeper dispatches them)",
            err=True,
        )
    typer.echo(f"MLLP listener on {host}:{port} (interface {interface!r}); Ctrl-C stops it")
    try:
        asyncio.run(listener.serve(host, port, interface))
    except KeyboardInterrupt:
        typer.echo("MLLP listener stopped")
