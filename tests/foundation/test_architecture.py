"""Layering, packaging and the compose file, checked by test (Docker cannot run here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from typer.main import get_command

ROOT = Path(__file__).resolve().parents[2]


def test_imports_flow_workers_to_labflow_to_protocols() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken" in result.stdout


def test_compose_defines_the_production_services_with_health_checks() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"api", "worker", "beat", "redis", "postgres", "flower"} <= services.keys()
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
        assert service["healthcheck"]["test"], name


def test_every_labflow_command_named_in_compose_exists() -> None:
    from workers.cli import app

    cli = get_command(app)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    named = [
        s["command"]
        for s in compose["services"].values()
        if isinstance(s.get("command"), list) and s["command"][0] == "labflow"
    ]
    assert len(named) == 3
    for command in named:
        sub = cli.commands.get(command[1])  # type: ignore[attr-defined]
        assert sub is not None, f"labflow {command[1]} does not exist"
        options = {o for p in sub.params for o in p.opts}
        for arg in command[2:]:
            if arg.startswith("--"):
                assert arg in options, f"labflow {command[1]} has no option {arg}"


def test_compose_uses_the_same_settings_the_service_reads() -> None:
    from labflow.settings import Settings

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["services"]["api"]["environment"]
    fields = {f"LABFLOW_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields
    assert env["LABFLOW_BROKER_URL"].startswith("redis://")
    assert env["LABFLOW_DATABASE_URL"].startswith("postgresql")
