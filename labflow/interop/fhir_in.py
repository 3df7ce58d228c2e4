"""FHIR R4 inbound: one resource or a Bundle -> `MappedMessage`.

Parsed with the fhir.resources R4B models (closest to R4; one `model_validate` per body, the
Bundle validates its entries). Resources read:

- Observation (890-4, 888-8, 1007-4, 882-1, 33358-3, 25700-6, LF#antigen-*, LF#mprotein-isotype,
  LF#HYDRASHIFT_*/MASS_SPEC_MPROTEIN, LF#transfusion), ServiceRequest (orders)
- MedicationAdministration / MedicationRequest / MedicationStatement (therapy)
- Procedure SNOMED 116859006 or LF#transfusion, status completed (an RBC transfusion)

Patient, Encounter, Specimen, Practitioner, MessageHeader, DiagnosticReport, ... carry nothing
labflow uses and are skipped. Extensions beyond the contract: Observation.category LF#historical
marks an 888-8 as historical; component LF#abo-reverse-unexpected on 882-1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from labflow.interop import terminology as t
from labflow.interop.clock import from_fhir, zone
from labflow.interop.model import CodeMaps, MappedMessage, MappingError
from labflow.interop.observations import (
    Component,
    ObservationIn,
    Value,
    observation_fact,
    order_fact,
)
from protocols.facts import Fact, Therapy

_BUNDLE_TYPES = frozenset({"collection", "transaction", "message", "batch", "document"})
_RESULT_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})
_ORDER_STATUSES = frozenset({"active", "completed", "on-hold"})
_SILENT_SKIP = frozenset({
    "Patient", "Encounter", "Specimen", "Practitioner", "PractitionerRole", "Organization",
    "MessageHeader", "DiagnosticReport", "Medication", "Location", "Device", "Provenance",
})


def map_fhir(body: bytes, codes: CodeMaps) -> MappedMessage:
    """Map one FHIR R4 resource or Bundle; MappingError says what is wrong, for people."""
    raw = _load_json(body)
    rtype = raw.get("resourceType")
    try:
        model = get_fhir_model_class(str(rtype))
    except (ValueError, KeyError):
        raise MappingError([f"resourceType '{rtype}' is not a FHIR R4 resource"]) from None
    try:
        resource: Any = model.model_validate(raw)
    except ValidationError as exc:
        raise MappingError(_validation_messages(exc, raw), message_type=str(rtype)) from None

    ctx = _Context(codes=codes, tz=zone(codes.timezone))
    control_id = sender = None
    if rtype == "Bundle":
        if resource.type not in _BUNDLE_TYPES:
            raise MappingError([f"Bundle.type '{resource.type}' is not supported (send "
                                "collection, transaction, message, batch or document)"])
        entries = [(e.fullUrl, e.resource) for e in resource.entry or [] if e.resource]
        control_id = resource.identifier.value if resource.identifier else None
        message_type = f"Bundle/{resource.type}"
    else:
        entries = [(None, resource)]
        message_type = str(rtype)
    for full_url, res in entries:
        ctx.index(full_url, res)
    try:
        for _, res in entries:
            if res.get_resource_type() == "MessageHeader" and res.source:
                sender = res.source.name or res.source.endpoint
            ctx.map_resource(res)
    except MappingError as exc:  # keep the patient on the error so a parked message is findable
        mrn = next(iter(ctx.mrns)) if len(ctx.mrns) == 1 else None
        raise MappingError(exc.errors, mrn=mrn, message_type=message_type) from None

    mrn = ctx.mrn(message_type)
    if not ctx.facts:
        detail = f" ({'; '.join(ctx.warnings)})" if ctx.warnings else ""
        raise MappingError([f"{message_type}: carries no result, order or therapy labflow "
                            f"reads{detail}"], mrn=mrn, message_type=message_type)
    return MappedMessage(mrn=mrn, message_type=message_type, facts=tuple(ctx.facts),
                         control_id=control_id, sender=sender, warnings=tuple(ctx.warnings))


def _load_json(body: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MappingError([f"body is not valid JSON: {exc}"]) from None
    if not isinstance(raw, dict) or "resourceType" not in raw:
        raise MappingError(["body is not a FHIR resource (no resourceType)"])
    return raw


def _validation_messages(exc: ValidationError, raw: dict[str, Any]) -> list[str]:
    """pydantic errors as 'invalid FHIR <resource>: <field>: <why>' lines."""
    out: list[str] = []
    for err in exc.errors():
        loc = list(err["loc"])
        name = str(raw.get("resourceType"))
        if name == "Bundle" and len(loc) >= 3 and loc[0] == "entry" and loc[2] == "resource":
            entry = _entry_resource(raw, loc[1])
            name = f"Bundle entry {loc[1]} ({entry})"
            loc = loc[3:]
        where = ".".join(str(x) for x in loc) or "(resource)"
        out.append(f"invalid FHIR {name}: {where}: {err['msg']}")
    return out


def _entry_resource(raw: dict[str, Any], index: object) -> str:
    try:
        res = raw["entry"][int(str(index))]["resource"]
        return f"{res.get('resourceType')}/{res.get('id', '?')}"
    except (KeyError, IndexError, TypeError, ValueError):
        return "?"


def _codings(cc: Any) -> list[t.Coded]:
    if cc is None:
        return []
    return [t.Coded(c.system or "", c.code or "", c.display or "") for c in cc.coding or []]


def _codings_all(ccs: Any) -> list[t.Coded]:
    return [c for cc in ccs or [] for c in _codings(cc)]


def _value(holder: Any) -> Value:
    """The value[x] of an Observation or component."""
    if holder.valueCodeableConcept is not None:
        cc = holder.valueCodeableConcept
        return Value(codings=_codings(cc), text=cc.text)
    if holder.valueQuantity is not None:
        q = holder.valueQuantity
        number = float(q.value) if q.value is not None else None
        return Value(number=number, unit=q.code or q.unit)
    if holder.valueInteger is not None:
        return Value(number=float(holder.valueInteger))
    if holder.valueBoolean is not None:
        return Value(boolean=holder.valueBoolean)
    if holder.valueString is not None:
        return Value(text=holder.valueString)
    return Value()


def _is_mr(identifier: Any, *, untyped_ok: bool) -> bool:
    if identifier.type is None:
        return untyped_ok
    return any(c.code == "MR" and (c.system or t.V2_0203) == t.V2_0203
               for c in identifier.type.coding or [])


@dataclass
class _Context:
    codes: CodeMaps
    tz: tzinfo
    facts: list[Fact] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    mrns: dict[str, str] = field(default_factory=dict)  # MRN -> where it was found
    by_ref: dict[str, Any] = field(default_factory=dict)

    def index(self, full_url: str | None, res: Any) -> None:
        if full_url:
            self.by_ref[full_url] = res
        if res.id:
            self.by_ref[f"{res.get_resource_type()}/{res.id}"] = res
        if res.get_resource_type() == "Patient":
            self._patient_mrn(res, f"Patient/{res.id}" if res.id else "Patient")

    def mrn(self, message_type: str) -> str:
        if not self.mrns:
            raise MappingError([f"{message_type}: no patient MRN (send a Patient with an "
                                "identifier of type v2-0203#MR, or subject.identifier)"],
                               message_type=message_type)
        if len(self.mrns) > 1:
            shown = ", ".join(f"{m} ({w})" for m, w in self.mrns.items())
            raise MappingError([f"{message_type}: more than one patient MRN: {shown}"],
                               message_type=message_type)
        return next(iter(self.mrns))

    def _patient_mrn(self, patient: Any, where: str) -> None:
        for ident in patient.identifier or []:
            if ident.value and _is_mr(ident, untyped_ok=False):
                self.mrns.setdefault(ident.value, where)

    def _subject(self, res: Any, where: str) -> None:
        ref = getattr(res, "subject", None) or getattr(res, "patient", None)
        if ref is None:
            return
        if ref.identifier is not None and ref.identifier.value and _is_mr(ref.identifier,
                                                                          untyped_ok=True):
            self.mrns.setdefault(ref.identifier.value, f"{where}.subject")
        target = self._resolve(res, ref.reference)
        if target is not None and target.get_resource_type() == "Patient":
            self._patient_mrn(target, f"{where}.subject")

    def _resolve(self, res: Any, reference: str | None) -> Any:
        if not reference:
            return None
        if reference.startswith("#"):
            return next((c for c in res.contained or [] if c.id == reference[1:]), None)
        return self.by_ref.get(reference)

    def map_resource(self, res: Any) -> None:
        rt = res.get_resource_type()
        where = f"{rt}/{res.id}" if res.id else rt
        handler = _HANDLERS.get(rt)
        if handler is None:
            if rt not in _SILENT_SKIP:
                self.warnings.append(f"{where}: skipped (labflow does not read {rt})")
            return
        self._subject(res, where)
        handler(self, res, where)

    def time(self, where: str, *candidates: object) -> datetime:
        for value in candidates:
            when = from_fhir(value, self.tz)
            if when is not None:
                return when
        raise MappingError([f"{where}: no clinical time (effectiveDateTime, effectivePeriod, "
                            "issued, authoredOn, occurrenceDateTime or performed[x])"])

    def skip(self, where: str, status: str) -> None:
        self.warnings.append(f"{where}: skipped (status {status})")

    # -- resource handlers -------------------------------------------------------------

    def observation(self, res: Any, where: str) -> None:
        if res.status not in _RESULT_STATUSES:
            self.skip(where, res.status)
            return
        concept = t.first_concept(_codings(res.code), self.codes, f"{where} code")
        period = res.effectivePeriod
        effective = self.time(where, res.effectiveDateTime, period and period.start,
                              res.effectiveInstant, res.issued)
        components = [
            Component(t.first_concept(_codings(c.code), self.codes, f"{where} component {i}"),
                      _value(c), f"{where} component {i}")
            for i, c in enumerate(res.component or [])
        ]
        historical = any(t.concept(c, self.codes) == t.HISTORICAL
                         for c in _codings_all(res.category))
        obs = ObservationIn(concept=concept, where=where, effective=effective,
                            values=[_value(res)], components=components,
                            method=_codings(res.method), historical=historical,
                            source_ref=_source_ref(res, where))
        self.facts.append(observation_fact(obs, self.codes))

    def service_request(self, res: Any, where: str) -> None:
        if res.status not in _ORDER_STATUSES:
            self.skip(where, res.status)
            return
        concept = t.first_concept(_codings(res.code), self.codes, f"{where} code")
        period = res.occurrencePeriod
        effective = self.time(where, res.authoredOn, res.occurrenceDateTime,
                              period and period.start)
        suspected = any(t.concept(c, self.codes) == "suspected-cr"
                        for c in _codings_all(res.reasonCode))
        self.facts.append(order_fact(concept, where, effective, priority=res.priority or "routine",
                                     suspected_cr=suspected, source_ref=_source_ref(res, where)))

    def administration(self, res: Any, where: str) -> None:
        if res.status not in ("completed", "in-progress"):
            self.skip(where, res.status)
            return
        period = res.effectivePeriod
        when = self.time(where, res.effectiveDateTime, period and period.start)
        route = t.route(_codings(res.dosage.route) if res.dosage else [], self.codes,
                        f"{where} dosage.route")
        agent, product = self._drug(res, where)
        self.facts.append(Therapy(effective=when, source_ref=_source_ref(res, where),
                                  agent=agent, route=route, record="administered",
                                  first_dose=when.date(), last_dose=when.date(), product=product,
                                  evidence_source="eMAR"))

    def request(self, res: Any, where: str) -> None:
        if res.status not in ("active", "completed", "on-hold"):
            self.skip(where, res.status)
            return
        dosage = (res.dosageInstruction or [None])[0]
        route = t.route(_codings(dosage.route) if dosage else [], self.codes,
                        f"{where} dosageInstruction.route")
        bounds = dosage.timing.repeat.boundsPeriod if (
            dosage and dosage.timing and dosage.timing.repeat) else None
        start = from_fhir(bounds.start, self.tz) if bounds else None
        when = self.time(where, res.authoredOn, start)
        agent, product = self._drug(res, where)
        self.facts.append(Therapy(effective=when, source_ref=_source_ref(res, where),
                                  agent=agent, route=route, record="planned",
                                  first_dose=start.date() if start else None, product=product,
                                  evidence_source="pharmacy-order"))

    def statement(self, res: Any, where: str) -> None:
        if res.status not in ("active", "completed", "stopped"):
            self.skip(where, res.status)
            return
        period = res.effectivePeriod
        start = from_fhir(period.start if period else res.effectiveDateTime, self.tz)
        end = from_fhir(period.end, self.tz) if period else None
        ongoing = res.status == "active"
        # The statement is true as of when it was asserted (or the last dose it reports).
        when = self.time(where, res.dateAsserted, end, start)
        agent, product = self._drug(res, where)
        route = t.route(_codings_all(d.route for d in res.dosage or []), self.codes,
                        f"{where} dosage.route")
        self.facts.append(Therapy(effective=when, source_ref=_source_ref(res, where),
                                  agent=agent, route=route, record="history",
                                  first_dose=_date(start),
                                  last_dose=None if ongoing else _date(end),
                                  ongoing=ongoing, product=product,
                                  evidence_source="external-record"))

    def procedure(self, res: Any, where: str) -> None:
        if res.status not in ("completed", "in-progress"):
            self.skip(where, res.status)
            return
        concept = t.first_concept(_codings(res.code), self.codes, f"{where} code")
        if concept != t.TRANSFUSION:
            raise MappingError([f"{where}: procedure code {concept} is not a transfusion"])
        period = res.performedPeriod
        when = self.time(where, res.performedDateTime, period and period.start)
        obs = ObservationIn(concept=concept, where=where, effective=when,
                            source_ref=_source_ref(res, where))
        self.facts.append(observation_fact(obs, self.codes))

    def _drug(self, res: Any, where: str) -> tuple[str, str | None]:
        cc = res.medicationCodeableConcept
        if cc is None and res.medicationReference is not None:
            med = self._resolve(res, res.medicationReference.reference)
            cc = med.code if med is not None else None
        if cc is None:
            raise MappingError([f"{where}: no medication code (medicationCodeableConcept or a "
                                "resolvable medicationReference)"])
        return t.agent(_codings(cc), self.codes, f"{where} medication"), cc.text


def _date(value: datetime | None) -> date | None:
    return value.date() if value else None


def _source_ref(res: Any, where: str) -> str:
    for ident in getattr(res, "identifier", None) or []:
        if ident.value:
            return str(ident.value)
    return where


_HANDLERS = {
    "Observation": _Context.observation,
    "ServiceRequest": _Context.service_request,
    "MedicationAdministration": _Context.administration,
    "MedicationRequest": _Context.request,
    "MedicationStatement": _Context.statement,
    "Procedure": _Context.procedure,
}
