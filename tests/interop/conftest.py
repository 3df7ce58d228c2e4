from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def hl7_bytes(name: str, sep: str = "\r") -> bytes:
    """A fixture file (stored with \\n for readability) with the given segment separator."""
    text = (FIXTURES / "hl7" / name).read_text().strip("\n")
    return text.replace("\n", sep).encode()


def fhir_dict(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "fhir" / name).read_text())
    return data


def fhir_bytes(name: str) -> bytes:
    return (FIXTURES / "fhir" / name).read_bytes()


@pytest.fixture(scope="session")
def configured() -> None:
    """Overrides the suite's database set-up: the wire-format layer is pure and needs none."""
