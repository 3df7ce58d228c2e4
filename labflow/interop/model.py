"""What every inbound mapper produces, whatever the wire format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from protocols.facts import Fact


class PatientRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mrn: str = Field(min_length=1, max_length=64)


class LabflowEvent(BaseModel):
    """labflow's own JSON inbound schema (`Content-Type: application/json`).

    One message carries facts about one patient; each fact has its own clinical time.
    """

    model_config = ConfigDict(extra="forbid")

    patient: PatientRef
    message_type: str = Field(default="labflow.facts", max_length=64)
    accession: str | None = Field(default=None, max_length=64)
    facts: list[Fact] = Field(min_length=1)


class MappingError(Exception):
    """The message could not be parsed or mapped; `errors` says what, for people to read."""

    def __init__(self, errors: list[str], *, mrn: str | None = None,
                 message_type: str | None = None) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
        self.mrn = mrn
        self.message_type = message_type


@dataclass(frozen=True)
class MappedMessage:
    """The normalised content of one inbound message."""

    mrn: str
    message_type: str
    facts: tuple[Fact, ...]
    accession: str | None = None
    control_id: str | None = None  # HL7 MSH-10, FHIR Bundle.identifier
    sender: str | None = None  # HL7 MSH-3^MSH-4
    warnings: tuple[str, ...] = ()

    @property
    def clinical_time(self) -> datetime:
        return max(f.effective for f in self.facts)


@dataclass(frozen=True)
class CodeMaps:
    """Terminology a mapper needs: drug codes and the lab's local code map.

    Keys are "system|code" (system as sent: a FHIR URI, or an HL7 v2 coding system such as
    `WC`, `LN`, `LF`, `L`); values are labflow concepts: an agent name for drugs, a LOINC or
    LF code for local observation codes (e.g. "LOCAL|ABSC" -> "890-4").
    """

    drug_codes: Mapping[str, str] = field(default_factory=dict)
    local_codes: Mapping[str, str] = field(default_factory=dict)
    # IANA zone for wire timestamps sent without an offset (HL7 TS often has none).
    timezone: str = "UTC"
