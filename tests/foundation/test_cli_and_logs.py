"""The `labflow` command's profile tools, and logs that never carry patient identifiers."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from tests.support import INTERFACE, json_event, message_status, signed_headers, wait_for
from workers.cli import app


def test_profile_check_names_the_bad_key_and_value(tmp_path: Path) -> None:
    bad = tmp_path / "lab.yaml"
    bad.write_text("window_months:\n  isatuximab: twelve\nmass_spec: maybe\n")
    result = CliRunner().invoke(app, ["profile", "check", str(bad)])
    assert result.exit_code == 1
    assert "window_months.isatuximab" in result.output and "twelve" in result.output
    assert "mass_spec" in result.output and "maybe" in result.output


def test_profile_check_accepts_a_partial_profile(tmp_path: Path) -> None:
    good = tmp_path / "lab.yaml"
    good.write_text("window_months:\n  isatuximab: 12\ndtt_available: false\n")
    result = CliRunner().invoke(app, ["profile", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_profile_show_prints_the_effective_profile_with_defaults_kept(tmp_path: Path) -> None:
    partial = tmp_path / "lab.yaml"
    partial.write_text("window_months:\n  isatuximab: 12\n")
    result = CliRunner().invoke(app, ["profile", "show", str(partial)])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["window_months"]["isatuximab"] == 12
    assert shown["window_months"]["daratumumab"] == 6  # untouched keys keep the defaults
    assert shown["mspike_threshold_g_dl"] == 0.25


def test_token_create_prints_the_token_last_and_rejects_unknown_roles() -> None:
    result = CliRunner().invoke(app, ["token", "create", "--role", "auditor", "--name", "cap"])
    assert result.exit_code == 0
    assert result.output.strip().splitlines()[-1].startswith("lf_")
    bad = CliRunner().invoke(app, ["token", "create", "--role", "janitor", "--name", "x"])
    assert bad.exit_code == 2


def test_processing_logs_carry_no_patient_identifier(client, embedded_worker, mrn, capfd) -> None:
    facts = [{"kind": "antibody_screen", "effective": "2026-05-10T08:00:00Z",
              "interpretation": "positive", "cells": {"I": "1+", "II": "1+"}}]
    body = json_event(mrn, facts, accession="ACC-PRIVATE-1")
    response = client.post(f"/api/v1/inbound/{INTERFACE}", content=body,
                           headers=signed_headers(body, "application/json"))
    message_id = response.json()["message_id"]
    wait_for(lambda: message_status(message_id) == "processed")
    out, err = capfd.readouterr()
    assert message_id in err  # the logs do say what happened, by row id
    assert mrn not in out + err
    assert "ACC-PRIVATE-1" not in out + err


def test_serve_refuses_several_api_processes_in_the_embedded_mode() -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "LABFLOW_BROKER_URL" in result.output
