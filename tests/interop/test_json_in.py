"""labflow's own JSON schema inbound."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from labflow.interop.json_in import map_json
from labflow.interop.model import MappingError
from protocols.facts import AntibodyScreen, Therapy

EVENT = {
    "patient": {"mrn": "MRN123"},
    "accession": "ACC1",
    "facts": [
        {"kind": "therapy", "effective": "2026-01-05T10:30:00+01:00", "agent": "daratumumab",
         "route": "IV", "record": "administered", "first_dose": "2026-01-05"},
        {"kind": "antibody_screen", "effective": "2026-03-02T09:45:00",
         "interpretation": "positive", "cells": {"I": "2+"}},
    ],
}


def test_valid_event() -> None:
    msg = map_json(json.dumps(EVENT).encode())
    assert (msg.mrn, msg.message_type, msg.accession) == ("MRN123", "labflow.facts", "ACC1")
    therapy, screen = msg.facts
    assert isinstance(therapy, Therapy) and therapy.first_dose == date(2026, 1, 5)
    assert isinstance(screen, AntibodyScreen) and screen.cells == {"I": "2+"}
    # a naive time is read as UTC so it compares with every other fact
    assert screen.effective == datetime(2026, 3, 2, 9, 45, tzinfo=UTC)


def test_errors_name_the_location() -> None:
    bad = json.loads(json.dumps(EVENT))
    bad["facts"][0]["route"] = "oral"
    del bad["patient"]["mrn"]
    with pytest.raises(MappingError) as info:
        map_json(json.dumps(bad).encode())
    assert "patient.mrn: Field required" in info.value.errors
    assert any(e.startswith("facts.0.therapy.route: Input should be 'IV' or 'SC'")
               for e in info.value.errors)


def test_malformed_json() -> None:
    with pytest.raises(MappingError) as info:
        map_json(b'{"patient": ')
    assert info.value.errors[0].startswith("body: Invalid JSON")


def test_unknown_fact_kind() -> None:
    bad = {"patient": {"mrn": "M"}, "facts": [{"kind": "weather", "effective": "2026-01-01"}]}
    with pytest.raises(MappingError) as info:
        map_json(json.dumps(bad).encode())
    assert "does not match any of the expected tags" in info.value.errors[0]
