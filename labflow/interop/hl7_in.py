"""HL7 v2 inbound (ER7, python-hl7): ORU^R01, ORM^O01, OML^O21, RAS^O17, RDE^O11.

ORU: OBX rows are grouped by their OBR and OBX-4 sub-ID; qualifier rows (`screen-cell-I^^LF`,
`auto-control^^LF`, `phase^^LF`, `specificity^^LF`, `ife-band^^LF`) attach to the result of the
same group (890-4, 888-8, 25700-6, 882-1). Repeated 888-8 or 25700-6 rows in a group merge
(one OBX per specificity / band). OBX-17 `historical^^LF` marks an 888-8 as historical.
Clinical time: OBX-14, else OBR-7 (orders: OBR-7, else ORC-9; RAS: RXA-3; RDE: ORC-9, TQ1-7).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

import hl7

from labflow.interop import terminology as t
from labflow.interop.clock import parse_hl7_ts, zone
from labflow.interop.hl7_header import Hl7Header, hl7_header, normalise
from labflow.interop.model import CodeMaps, MappedMessage, MappingError
from labflow.interop.observations import (
    COMPONENT_CONCEPTS,
    Component,
    ObservationIn,
    Value,
    observation_fact,
    order_fact,
)
from protocols.facts import Fact, Therapy

__all__ = ["Hl7Header", "hl7_header", "map_hl7"]

_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_CODED_TYPES = frozenset({"CWE", "CE", "CNE", "CF", "CV"})
_NUMERIC_TYPES = frozenset({"NM", "SN"})
_SKIP_RESULT = {"X": "cannot be obtained", "D": "deleted", "W": "wrong patient/record",
                "I": "pending"}
_CANCEL_CONTROLS = frozenset({"CA", "DC", "OC", "CR", "OD", "DR", "DE"})
_PRIORITIES = {"S": "stat", "A": "asap", "R": "routine", "T": "urgent", "P": "routine",
               "C": "routine", "STAT": "stat", "ASAP": "asap", "ROUTINE": "routine",
               "URGENT": "urgent"}
# Which result a qualifier OBX belongs to.
_OWNER = {"auto-control": t.SCREEN, "phase": t.SCREEN, "specificity": t.IDENTIFICATION,
          "ife-band": t.IFE, t.REVERSE_UNEXPECTED: t.ABO_RH}
_MERGED = frozenset({t.IDENTIFICATION, t.IFE})

Segment = Any  # hl7.Segment; python-hl7 ships no type hints


def map_hl7(body: bytes, codes: CodeMaps) -> MappedMessage:
    """Map one HL7 v2 message; MappingError with a readable reason if it cannot be."""
    text = normalise(body)
    header = hl7_header(text)
    if header is None:
        raise MappingError([_why_not_hl7(text)])
    _check_segments(text, header.field_separator)
    if not header.message_type:
        raise MappingError(["MSH-9 message type is empty"])
    if not header.control_id:
        raise MappingError(["MSH-10 message control ID is empty"],
                           message_type=header.message_type)
    handler = _HANDLERS.get(header.message_type)
    if handler is None:
        raise MappingError([f"unsupported message type {header.message_type} (labflow reads "
                            f"{', '.join(_HANDLERS)})"], message_type=header.message_type)
    try:
        msg = hl7.parse(text)
    except Exception as exc:  # python-hl7 raises assorted errors on malformed input
        raise MappingError([f"HL7 message cannot be parsed: {exc}"],
                           message_type=header.message_type) from None

    segments = list(msg)
    mrn = _mrn(segments, header.message_type)
    ctx = _Context(codes=codes, tz=zone(codes.timezone))
    try:
        handler(ctx, segments)
    except MappingError as exc:
        raise MappingError(exc.errors, mrn=mrn, message_type=header.message_type) from None
    if not ctx.facts:
        detail = f" ({'; '.join(ctx.warnings)})" if ctx.warnings else ""
        raise MappingError([f"{header.message_type}: carries no result, order or therapy "
                            f"labflow reads{detail}"], mrn=mrn, message_type=header.message_type)
    return MappedMessage(
        mrn=mrn, message_type=header.message_type, facts=tuple(ctx.facts),
        accession=ctx.accession, control_id=header.control_id,
        sender=f"{header.sending_app}^{header.sending_facility}", warnings=tuple(ctx.warnings),
    )


def _why_not_hl7(text: str) -> str:
    if not text:
        return "empty message: no HL7 v2 content"
    if not text.startswith("MSH"):
        return f"not an HL7 v2 message: it must start with an MSH segment (starts with " \
               f"{text[:20]!r})"
    return f"MSH delimiters {text[3:8]!r} are not valid HL7 encoding characters (expected " \
           "'|^~\\&')"


def _check_segments(text: str, sep: str) -> None:
    for n, line in enumerate(text.split("\r"), start=1):
        if line and (not _SEGMENT_ID.match(line[:3]) or (len(line) > 3 and line[3] != sep)):
            raise MappingError([f"segment {n} ({line[:20]!r}) is not an HL7 segment "
                                "(expected a 3-character segment ID and '|')"])


# -- field access -------------------------------------------------------------------------


def _get(seg: Segment, field_num: int, comp: int = 1, rep: int = 1) -> str:
    try:
        return str(seg.extract_field(field_num=field_num, repeat_num=rep, component_num=comp))
    except IndexError:
        return ""


def _reps(seg: Segment, field_num: int) -> int:
    if field_num >= len(seg) or not str(seg[field_num]):
        return 0
    value = seg[field_num]
    return len(value) if isinstance(value, hl7.Field) else 1


def _cwe(seg: Segment, field_num: int, rep: int = 1) -> list[t.Coded]:
    """Identifier and alternate identifier triplets of a CWE/CE field."""
    out = []
    for first in (1, 4):
        code = _get(seg, field_num, first, rep)
        if code:
            out.append(t.Coded(_get(seg, field_num, first + 2, rep), code,
                               _get(seg, field_num, first + 1, rep)))
    return out


def _cwe_all(seg: Segment, field_num: int) -> list[t.Coded]:
    return [c for r in range(1, _reps(seg, field_num) + 1) for c in _cwe(seg, field_num, r)]


def _mrn(segments: list[Segment], message_type: str) -> str:
    pid = next((s for s in segments if str(s[0]) == "PID"), None)
    if pid is not None:
        for rep in range(1, _reps(pid, 3) + 1):
            if _get(pid, 3, 5, rep) == "MR" and _get(pid, 3, 1, rep):
                return _get(pid, 3, 1, rep)
    raise MappingError(["no patient MRN: PID-3 has no identifier of type MR"],
                       message_type=message_type)


# -- mapping ------------------------------------------------------------------------------


@dataclass
class _Context:
    codes: CodeMaps
    tz: tzinfo
    facts: list[Fact] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    accession: str | None = None

    def time(self, where: str, *candidates: tuple[str, str]) -> datetime:
        """The first non-empty timestamp of (field name, value) pairs."""
        for name, value in candidates:
            if value:
                try:
                    return parse_hl7_ts(value, self.tz)
                except ValueError as exc:
                    raise MappingError([f"{where} {name}: {exc}"]) from None
        names = " or ".join(name for name, _ in candidates)
        raise MappingError([f"{where}: no clinical time ({names} is empty)"])

    def order_ref(self, orc: Segment | None, obr: Segment | None) -> str | None:
        ref = None
        for seg, fields in ((obr, (3, 2)), (orc, (3, 2))):
            for n in fields if seg is not None else ():
                ref = ref or _get(seg, n) or None
        if self.accession is None:
            self.accession = ref
        return ref


def _oru(ctx: _Context, segments: list[Segment]) -> None:
    groups: dict[tuple[int, str], list[tuple[str, ObservationIn]]] = {}
    obr: Segment | None = None
    obr_index = obx_count = 0
    for seg in segments:
        sid = str(seg[0])
        if sid == "OBR":
            obr, obr_index = seg, obr_index + 1
        elif sid == "OBX":
            obx_count += 1
            where = f"OBX #{obx_count}"
            status = _get(seg, 11)
            if status in _SKIP_RESULT:
                ctx.warnings.append(f"{where}: skipped (result status {status}: "
                                    f"{_SKIP_RESULT[status]})")
                continue
            key = (obr_index, _get(seg, 4))
            groups.setdefault(key, []).append((where, _obx(ctx, seg, obr, where)))
    for rows in groups.values():
        _group_facts(ctx, rows)


def _obx(ctx: _Context, seg: Segment, obr: Segment | None, where: str) -> ObservationIn:
    concept = t.first_concept(_cwe(seg, 3), ctx.codes, f"{where} OBX-3")
    value_type = _get(seg, 2).upper()
    values = [_obx_value(seg, value_type, rep, where) for rep in range(1, _reps(seg, 5) + 1)]
    methods = _cwe_all(seg, 17)
    historical = [m for m in methods if t.concept(m, ctx.codes) == t.HISTORICAL]
    effective = ctx.time(where, ("OBX-14", _get(seg, 14)),
                         ("OBR-7", _get(obr, 7) if obr is not None else ""))
    return ObservationIn(concept=concept, where=where, effective=effective, values=values,
                         method=[m for m in methods if m not in historical],
                         historical=bool(historical), source_ref=ctx.order_ref(None, obr))


def _obx_value(seg: Segment, value_type: str, rep: int, where: str) -> Value:
    if value_type in _CODED_TYPES:
        return Value(codings=_cwe(seg, 5, rep))
    if value_type in _NUMERIC_TYPES:
        raw = _get(seg, 5, 2, rep) if value_type == "SN" else _get(seg, 5, 1, rep)
        try:
            number = float(raw)
        except ValueError:
            raise MappingError([f"{where} OBX-5: '{raw}' is not a number"]) from None
        return Value(number=number, unit=_get(seg, 6, 1) or _get(seg, 6, 2) or None)
    return Value(text=_get(seg, 5, 1, rep))


def _group_facts(ctx: _Context, rows: list[tuple[str, ObservationIn]]) -> None:
    """Attach qualifier OBXs to their result and merge one-row-per-finding results."""
    results: list[ObservationIn] = []
    merged: dict[str, ObservationIn] = {}
    parts: list[tuple[str, ObservationIn]] = []
    for where, obs in rows:
        if obs.concept in COMPONENT_CONCEPTS or obs.concept.startswith(t.SCREEN_CELL_PREFIX):
            parts.append((where, obs))
        elif obs.concept in _MERGED and obs.concept in merged:
            merged[obs.concept].values.extend(obs.values)
        else:
            if obs.concept in _MERGED:
                merged[obs.concept] = obs
            results.append(obs)
    for where, part in parts:
        owner_concept = _OWNER.get(part.concept, t.SCREEN)
        owners = [r for r in results if r.concept == owner_concept]
        if len(owners) != 1:
            problem = "no" if not owners else "more than one"
            raise MappingError([f"{where}: {part.concept} has {problem} {owner_concept} OBX "
                                "in the same OBR and OBX-4 sub-ID"])
        for value in part.values or [Value()]:
            owners[0].components.append(Component(part.concept, value, where))
    ctx.facts.extend(observation_fact(obs, ctx.codes) for obs in results)


def _orders(ctx: _Context, segments: list[Segment]) -> None:
    orc: Segment | None = None
    tq1: Segment | None = None
    obr_count = 0
    for seg in segments:
        sid = str(seg[0])
        if sid == "ORC":
            orc, tq1 = seg, None
        elif sid == "TQ1":
            tq1 = seg
        elif sid == "OBR":
            obr_count += 1
            where = f"OBR #{obr_count}"
            control = _get(orc, 1) if orc is not None else ""
            if control in _CANCEL_CONTROLS:
                ctx.warnings.append(f"{where}: skipped (ORC-1 order control {control})")
                continue
            concept = t.first_concept(_cwe(seg, 4), ctx.codes, f"{where} OBR-4")
            effective = ctx.time(where, ("OBR-7", _get(seg, 7)),
                                 ("ORC-9", _get(orc, 9) if orc is not None else ""))
            suspected = any(t.concept(c, ctx.codes) == "suspected-cr" for c in _cwe_all(seg, 31))
            ctx.facts.append(order_fact(concept, where, effective,
                                        priority=_priority(seg, orc, tq1, where),
                                        suspected_cr=suspected,
                                        source_ref=ctx.order_ref(orc, seg)))


def _priority(obr: Segment, orc: Segment | None, tq1: Segment | None, where: str) -> str:
    raw = (_get(obr, 5) or (_get(tq1, 9) if tq1 is not None else "")
           or (_get(orc, 7, 6) if orc is not None else ""))
    if not raw:
        return "routine"
    found = _PRIORITIES.get(raw.upper())
    if found is None:
        raise MappingError([f"{where}: unknown priority '{raw}' (expected S, A, R or T)"])
    return found


def _administrations(ctx: _Context, segments: list[Segment]) -> None:
    orc: Segment | None = None
    pending: list[tuple[Segment, Segment | None, Segment | None]] = []  # RXA, RXR, ORC
    for seg in segments:
        sid = str(seg[0])
        if sid == "ORC":
            orc = seg
        elif sid == "RXA":
            pending.append((seg, None, orc))
        elif sid == "RXR" and pending and pending[-1][1] is None:
            pending[-1] = (pending[-1][0], seg, pending[-1][2])
    for n, (rxa, rxr, rxa_orc) in enumerate(pending, start=1):
        where = f"RXA #{n}"
        status = _get(rxa, 20)
        if status in ("RE", "NA"):
            ctx.warnings.append(f"{where}: skipped (RXA-20 completion status {status})")
            continue
        when = ctx.time(where, ("RXA-3", _get(rxa, 3)))
        ctx.facts.append(Therapy(
            effective=when, source_ref=ctx.order_ref(rxa_orc, None),
            agent=t.agent(_cwe(rxa, 5), ctx.codes, f"{where} RXA-5"),
            route=t.route(_cwe(rxr, 1) if rxr is not None else [], ctx.codes, f"{where} RXR-1"),
            record="administered", first_dose=when.date(), last_dose=when.date(),
            product=_get(rxa, 5, 2) or None, evidence_source="eMAR",
        ))


def _pharmacy_orders(ctx: _Context, segments: list[Segment]) -> None:
    orc: Segment | None = None
    tq1: Segment | None = None
    rxe: Segment | None = None
    found: list[tuple[Segment, Segment | None, Segment | None, Segment | None]] = []
    for seg in segments:
        sid = str(seg[0])
        if sid == "ORC":
            orc, tq1 = seg, None
        elif sid == "TQ1":
            tq1 = seg
        elif sid == "RXE":
            rxe = seg
            found.append((rxe, None, orc, tq1))
        elif sid == "RXR" and found and found[-1][1] is None:
            found[-1] = (found[-1][0], seg, found[-1][2], found[-1][3])
    for n, (rxe, rxr, rxe_orc, rxe_tq1) in enumerate(found, start=1):
        where = f"RXE #{n}"
        control = _get(rxe_orc, 1) if rxe_orc is not None else ""
        if control in _CANCEL_CONTROLS:
            ctx.warnings.append(f"{where}: skipped (ORC-1 order control {control})")
            continue
        start_raw = (_get(rxe_tq1, 7) if rxe_tq1 is not None else "") or _get(rxe, 1, 4)
        start = ctx.time(where, ("TQ1-7", start_raw)) if start_raw else None
        when = ctx.time(where, ("ORC-9", _get(rxe_orc, 9) if rxe_orc is not None else ""),
                        ("TQ1-7", start_raw))
        ctx.facts.append(Therapy(
            effective=when, source_ref=ctx.order_ref(rxe_orc, None),
            agent=t.agent(_cwe(rxe, 2), ctx.codes, f"{where} RXE-2"),
            route=t.route(_cwe(rxr, 1) if rxr is not None else [], ctx.codes, f"{where} RXR-1"),
            record="planned", first_dose=start.date() if start else None,
            product=_get(rxe, 2, 2) or None, evidence_source="pharmacy-order",
        ))


_HANDLERS: dict[str, Callable[[_Context, list[Segment]], None]] = {
    "ORU^R01": _oru,
    "ORM^O01": _orders,
    "OML^O21": _orders,
    "RAS^O17": _administrations,
    "RDE^O11": _pharmacy_orders,
}
