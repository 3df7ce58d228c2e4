"""Format-neutral observations and orders, and the facts they become.

The FHIR and HL7 v2 mappers only extract codes, values and times into `ObservationIn`; the
clinical reading (what a screen cell grade or an IFE band means) lives here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, cast

from labflow.interop import terminology as t
from labflow.interop.model import CodeMaps, MappingError
from protocols.facts import (
    AboRh,
    AntibodyIdentification,
    AntibodyScreen,
    AntigenTyping,
    DirectAntiglobulin,
    Fact,
    Immunofixation,
    MProteinIsotype,
    MSpike,
    Order,
    OrderCode,
    Phase,
    ShiftResult,
    Transfusion,
    TreatmentMethod,
    TypingMethod,
)

# Concepts that only qualify a parent observation (FHIR component / HL7 sibling OBX).
COMPONENT_CONCEPTS = frozenset({"auto-control", "phase", "specificity", "ife-band",
                                t.REVERSE_UNEXPECTED})
_SCREEN_PARTS = frozenset({"auto-control", "phase"})
_NO_FINDING = {"", "none", "negative", "neg", "no band", "no bands", "not detected",
               "no antibodies identified", "260385009"}
_PHASES = {"IS", "RT", "IAT"}
_ORDERS: dict[str, OrderCode] = {
    t.SCREEN: "TYPE_AND_SCREEN", t.CROSSMATCH: "CROSSMATCH", "RBC": "RBC", "PLT": "PLT",
    "FFP": "FFP", "EMERGENCY-RELEASE": "EMERGENCY_RELEASE", t.IFE: "IFE",
}
_SHIFT_VALUES = {
    "HYDRASHIFT_DARATUMUMAB": {"SHIFTED_COMPLETE", "RESIDUAL_BAND"},
    "HYDRASHIFT_ISATUXIMAB": {"SHIFTED_COMPLETE", "RESIDUAL_BAND"},
    "MASS_SPEC_MPROTEIN": {"DETECTED", "NOT_DETECTED"},
}
_Assay = Literal["HYDRASHIFT_DARATUMUMAB", "HYDRASHIFT_ISATUXIMAB", "MASS_SPEC_MPROTEIN"]
_ShiftValue = Literal["SHIFTED_COMPLETE", "RESIDUAL_BAND", "DETECTED", "NOT_DETECTED"]
# Unit -> factor to g/dL (UCUM codes and the spellings LIS feeds use).
_TO_G_DL = {"g/dl": 1.0, "g/l": 0.1, "mg/dl": 0.001}


@dataclass
class Value:
    """One observation value as sent; at most one of the kinds is usually set."""

    codings: list[t.Coded] = field(default_factory=list)
    text: str | None = None
    boolean: bool | None = None
    number: float | None = None
    unit: str | None = None

    def as_text(self, codes: CodeMaps) -> str | None:
        """Text of the value; an LF or locally mapped code beats free text (it is normalised)."""
        for c in self.codings:
            local = codes.local_codes.get(str(c))
            if local:
                return local
            if c.system in (t.LF, "LF"):
                return c.code
        if self.text:
            return self.text.strip()
        if self.codings:
            return (self.codings[0].code or self.codings[0].display).strip()
        if self.number is not None:
            return f"{self.number:g}"
        return None


@dataclass
class Component:
    concept: str
    value: Value
    where: str


@dataclass
class ObservationIn:
    concept: str
    where: str  # names the resource / segment in error messages
    effective: datetime
    values: list[Value] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)
    method: list[t.Coded] = field(default_factory=list)
    historical: bool = False
    source_ref: str | None = None


def observation_fact(obs: ObservationIn, codes: CodeMaps) -> Fact:
    """The fact an observation states; MappingError if it cannot be read."""
    base = {"effective": obs.effective, "source_ref": obs.source_ref}
    c = obs.concept
    if c == t.SCREEN:
        return _screen(obs, codes)
    if c == t.IDENTIFICATION:
        found = _texts(obs, codes, "specificity")
        return AntibodyIdentification(**base, specificities=tuple(found),
                                      method=_treatment(obs, codes),
                                      historical=obs.historical)
    if c == t.DAT:
        return DirectAntiglobulin(**base, positive=_polarity(obs, codes))
    if c == t.ABO_RH:
        group = _first_text(obs, codes)
        unexpected = any(
            t.polarity(p.value.codings, _bool_text(p.value), codes, p.where)
            for p in obs.components if p.concept == t.REVERSE_UNEXPECTED
        )
        _only(obs, {t.REVERSE_UNEXPECTED})
        return AboRh(**base, group=group, reverse_unexpected_reactions=unexpected)
    if c.startswith(t.ANTIGEN_PREFIX):
        method = t.method_code(obs.method, codes, obs.where) or "serology-direct"
        if method not in t.TYPING_METHODS:
            raise MappingError([f"{obs.where}: method {method} is not a typing method "
                                "(serology-direct, serology-iat, genotype)"])
        return AntigenTyping(**base, antigen=c.removeprefix(t.ANTIGEN_PREFIX),
                             positive=_polarity(obs, codes), method=cast(TypingMethod, method))
    if c == t.MSPIKE:
        return MSpike(**base, g_dl=_g_dl(obs))
    if c == t.IFE:
        return Immunofixation(**base, bands=tuple(_texts(obs, codes, "ife-band")))
    if c == "mprotein-isotype":
        return MProteinIsotype(**base, isotype=_first_text(obs, codes))
    if c in t.SHIFT_ASSAYS:
        return _shift(obs, codes)
    if c == t.TRANSFUSION:
        return Transfusion(**base)
    raise MappingError([f"{obs.where}: code {c} is not a result labflow reads"])


def order_fact(concept: str, where: str, effective: datetime, *, priority: str = "routine",
               suspected_cr: bool = False, source_ref: str | None = None) -> Order:
    code = _ORDERS.get(concept)
    if code is None:
        raise MappingError([f"{where}: code {concept} is not an order labflow reads "
                            "(890-4, 1250-0, RBC, PLT, FFP, EMERGENCY-RELEASE, 25700-6)"])
    if priority not in ("routine", "urgent", "asap", "stat"):
        raise MappingError([f"{where}: unknown priority '{priority}'"])
    return Order(effective=effective, source_ref=source_ref, code=code,
                 priority=cast(Literal["routine", "urgent", "asap", "stat"], priority),
                 suspected_cr=suspected_cr)


def _screen(obs: ObservationIn, codes: CodeMaps) -> AntibodyScreen:
    cells: dict[str, str] = {}
    auto: str | None = None
    phase = "IAT"
    for p in obs.components:
        text = p.value.as_text(codes) or ""
        if p.concept.startswith(t.SCREEN_CELL_PREFIX):
            cells[p.concept.removeprefix(t.SCREEN_CELL_PREFIX)] = _grade(text)
        elif p.concept == "auto-control":
            auto = _grade(text)
        elif p.concept == "phase":
            if text.upper() not in _PHASES:
                raise MappingError([f"{p.where}: phase '{text}' is not IS, RT or IAT"])
            phase = text.upper()
        else:
            raise MappingError([f"{p.where}: {p.concept} does not belong to an antibody screen"])
    return AntibodyScreen(effective=obs.effective, source_ref=obs.source_ref,
                          interpretation="positive" if _polarity(obs, codes) else "negative",
                          cells=cells, auto_control=auto, phase=cast(Phase, phase),
                          method=_treatment(obs, codes))


def _shift(obs: ObservationIn, codes: CodeMaps) -> ShiftResult:
    raw = _first_text(obs, codes)
    value = raw.upper().replace(" ", "_").replace("-", "_")
    if value not in _SHIFT_VALUES[obs.concept]:
        allowed = " / ".join(sorted(_SHIFT_VALUES[obs.concept]))
        raise MappingError([f"{obs.where}: {obs.concept} value '{raw}' is not {allowed}"])
    return ShiftResult(effective=obs.effective, source_ref=obs.source_ref,
                       assay=cast(_Assay, obs.concept), value=cast(_ShiftValue, value))


def _treatment(obs: ObservationIn, codes: CodeMaps) -> TreatmentMethod:
    method = t.method_code(obs.method, codes, obs.where) or "UNTREATED"
    if method not in t.TREATMENTS:
        raise MappingError([f"{obs.where}: method {method} is not a cell/plasma treatment "
                            "(DTT, TCEP, TRYPSIN, CD38-NEUTRALIZATION)"])
    return cast(TreatmentMethod, method)


def _polarity(obs: ObservationIn, codes: CodeMaps) -> bool:
    if not obs.values:
        raise MappingError([f"{obs.where}: {obs.concept} has no value"])
    v = obs.values[0]
    return t.polarity(v.codings, _bool_text(v), codes, obs.where)


def _bool_text(v: Value) -> str | None:
    return str(v.boolean).lower() if v.boolean is not None else v.text


def _first_text(obs: ObservationIn, codes: CodeMaps) -> str:
    for v in obs.values:
        text = v.as_text(codes)
        if text:
            return text
    raise MappingError([f"{obs.where}: {obs.concept} has no value"])


def _texts(obs: ObservationIn, codes: CodeMaps, part: str) -> list[str]:
    """Findings from the value(s) and the `part` components, without 'none'/'negative'."""
    _only(obs, {part})
    raw = [v.as_text(codes) for v in obs.values]
    raw += [p.value.as_text(codes) for p in obs.components]
    found: list[str] = []
    for text in raw:
        if text is not None and text.strip().lower() not in _NO_FINDING and text not in found:
            found.append(text.strip())
    return found


def _only(obs: ObservationIn, allowed: set[str]) -> None:
    for p in obs.components:
        if p.concept not in allowed:
            raise MappingError([f"{p.where}: {p.concept} does not belong to {obs.concept}"])


def _grade(text: str) -> str:
    text = text.strip()
    return text.lower() if text.upper() in ("W+", "MF") else text


def _g_dl(obs: ObservationIn) -> float:
    v = obs.values[0] if obs.values else None
    if v is None or v.number is None:
        raise MappingError([f"{obs.where}: M-spike has no numeric value"])
    unit = (v.unit or "g/dL").strip()
    factor = _TO_G_DL.get(unit.lower())
    if factor is None:
        raise MappingError([f"{obs.where}: M-spike unit '{unit}' is not g/dL, g/L or mg/dL"])
    if v.number < 0:
        raise MappingError([f"{obs.where}: M-spike {v.number} is negative"])
    return round(v.number * factor, 4)
