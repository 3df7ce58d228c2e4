"""The default terminology map (contract section 4) and the lab's local code map.

Both inbound formats reduce a code to `Coded(system, code)` and ask this module what labflow
concept it stands for, so FHIR and HL7 v2 interpret codes identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from labflow.interop.model import CodeMaps, MappingError

LF = "http://labflow.example.org/fhir/CodeSystem/labflow"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ATC = "http://www.whocc.no/atc"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

# FHIR URIs and HL7 v2 coding-system names that mean the same code system.
_LF_SYSTEMS = frozenset({LF, "LF"})
_LOINC_SYSTEMS = frozenset({LOINC, "LN"})
_SNOMED_SYSTEMS = frozenset({SNOMED, "SCT", "SNM", "SNOMED", "SNOMEDCT"})
_ATC_SYSTEMS = frozenset({ATC, "WC", "ATC"})

AGENTS = frozenset(
    {"daratumumab", "isatuximab", "felzartamab", "mezagitamab", "magrolimab", "elotuzumab"}
)
_ATC_AGENTS = {"L01FC01": "daratumumab", "L01FC02": "isatuximab"}

# LOINC codes labflow reads (observations and orders).
SCREEN, IDENTIFICATION, DAT, ABO_RH = "890-4", "888-8", "1007-4", "882-1"
MSPIKE, IFE, CROSSMATCH = "33358-3", "25700-6", "1250-0"
_LOINC_CONCEPTS = frozenset({SCREEN, IDENTIFICATION, DAT, ABO_RH, MSPIKE, IFE, CROSSMATCH})

SCREEN_CELL_PREFIX = "screen-cell-"
ANTIGEN_PREFIX = "antigen-"
SHIFT_ASSAYS = frozenset({"HYDRASHIFT_DARATUMUMAB", "HYDRASHIFT_ISATUXIMAB", "MASS_SPEC_MPROTEIN"})
TRANSFUSION = "transfusion"
HISTORICAL = "historical"
REVERSE_UNEXPECTED = "abo-reverse-unexpected"
_LF_CONCEPTS = frozenset(
    {
        "auto-control", "phase", "specificity", "ife-band", "mprotein-isotype", TRANSFUSION,
        REVERSE_UNEXPECTED, "RBC", "PLT", "FFP", "EMERGENCY-RELEASE", "suspected-cr",
        HISTORICAL,
    }
    | SHIFT_ASSAYS
)
_SNOMED_CONCEPTS = {"116859006": TRANSFUSION}  # Transfusion of blood product (procedure)

TREATMENTS = frozenset({"UNTREATED", "DTT", "TCEP", "TRYPSIN", "CD38-NEUTRALIZATION"})
TYPING_METHODS = frozenset({"serology-direct", "serology-iat", "genotype"})

_ROUTES = {"47625008": "IV", "34206005": "SC", "IV": "IV", "SC": "SC"}
_POSITIVE = {"10828004", "pos", "positive", "p", "+", "detected", "reactive", "true", "y"}
_NEGATIVE = {"260385009", "neg", "negative", "n", "-", "not detected", "nonreactive",
             "non-reactive", "false"}


@dataclass(frozen=True, slots=True)
class Coded:
    """One code as sent on the wire (FHIR Coding or HL7 CWE triplet)."""

    system: str
    code: str
    display: str = ""

    def __str__(self) -> str:
        return f"{self.system}|{self.code}"


def _local(c: Coded, codes: CodeMaps) -> str | None:
    value = codes.local_codes.get(f"{c.system}|{c.code}")
    if value is None:
        return None
    # Tolerate "LN|890-4"-style values in a lab profile: the concept is the code part.
    return value.rsplit("|", 1)[-1].strip()


def _known(value: str) -> str | None:
    if (value in _LOINC_CONCEPTS or value in _LF_CONCEPTS or value.startswith(ANTIGEN_PREFIX)
            or value.startswith(SCREEN_CELL_PREFIX)):
        return value
    return None


def concept(c: Coded, codes: CodeMaps) -> str | None:
    """The labflow concept (a LOINC or LF code) a code stands for, or None if unknown."""
    local = _local(c, codes)
    if local is not None:
        return _known(local) or _SNOMED_CONCEPTS.get(local)
    if c.system in _LOINC_SYSTEMS:
        return c.code if c.code in _LOINC_CONCEPTS else None
    if c.system in _LF_SYSTEMS:
        return _known(c.code)
    if c.system in _SNOMED_SYSTEMS:
        return _SNOMED_CONCEPTS.get(c.code)
    return None


def first_concept(codings: list[Coded], codes: CodeMaps, where: str) -> str:
    """The concept of the first recognised coding; MappingError naming the codes otherwise."""
    for c in codings:
        found = concept(c, codes)
        if found is not None:
            return found
    raise MappingError([f"{where}: unknown code {_names(codings)} (not in the terminology "
                        "map or the lab's local code map)"])


def agent(codings: list[Coded], codes: CodeMaps, where: str) -> str:
    """Agent name for a drug code (ATC, LF agent name, drug_codes or local_codes)."""
    for c in codings:
        key = f"{c.system}|{c.code}"
        name = codes.drug_codes.get(key) or _local(c, codes)
        if name:
            return name
        if c.system in _ATC_SYSTEMS and c.code in _ATC_AGENTS:
            return _ATC_AGENTS[c.code]
        if c.system in _LF_SYSTEMS and c.code in AGENTS:
            return c.code
    raise MappingError([f"{where}: unknown drug code {_names(codings)} (not in the "
                        "terminology map, drug codes or the lab's local code map)"])


def route(codings: list[Coded], codes: CodeMaps, where: str) -> Literal["IV", "SC"] | None:
    if not codings:
        return None
    for c in codings:
        found = _ROUTES.get(_local(c, codes) or c.code)
        if found == "IV":
            return "IV"
        if found == "SC":
            return "SC"
    raise MappingError([f"{where}: unknown route code {_names(codings)} "
                        "(expected SNOMED 47625008 IV or 34206005 SC)"])


def method_code(codings: list[Coded], codes: CodeMaps, where: str) -> str | None:
    """Treatment or typing method (LF code), or None when no method was sent."""
    if not codings:
        return None
    for c in codings:
        value = _local(c, codes) or (c.code if c.system in _LF_SYSTEMS else None)
        if value in TREATMENTS or value in TYPING_METHODS:
            return value
    raise MappingError([f"{where}: unknown method code {_names(codings)}"])


def polarity(codings: list[Coded], text: str | None, codes: CodeMaps, where: str) -> bool:
    """Positive (True) or negative (False) from a SNOMED/local code or a plain word."""
    candidates = [(_local(c, codes) or c.code) for c in codings]
    candidates += [c.display for c in codings if c.display]
    if text is not None:
        candidates.append(text)
    for raw in candidates:
        word = raw.strip().lower()
        if word in _POSITIVE:
            return True
        if word in _NEGATIVE:
            return False
    shown = _names(codings) if codings else repr(text)
    raise MappingError([f"{where}: value {shown} is neither positive nor negative "
                        "(expected SNOMED 10828004 / 260385009, POS / NEG or a boolean)"])


def _names(codings: list[Coded]) -> str:
    return ", ".join(f"'{c}'" for c in codings) or "(no code)"
