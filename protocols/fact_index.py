"""One pass over PatientFacts: keep facts effective at `as_of`, order canonically, group by kind.

Canonical order (effective time, then content for exact ties) makes every "latest X"
independent of the order the facts arrived in, so the same facts give the same decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from protocols.facts import (
    AboRh,
    ActiveRequirement,
    AntibodyIdentification,
    AntibodyScreen,
    AntigenTyping,
    DirectAntiglobulin,
    Fact,
    Immunofixation,
    MProteinIsotype,
    MSpike,
    Order,
    PatientFacts,
    ShiftResult,
    Therapy,
    Transfusion,
)


def aware(moment: datetime) -> datetime:
    """Naive clinical times are read as UTC so mixed inputs compare instead of raising."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(slots=True)
class FactIndex:
    as_of: datetime
    today: date
    therapies: list[Therapy] = field(default_factory=list)
    screens: list[AntibodyScreen] = field(default_factory=list)
    identifications: list[AntibodyIdentification] = field(default_factory=list)
    dats: list[DirectAntiglobulin] = field(default_factory=list)
    abo: list[AboRh] = field(default_factory=list)
    typings: list[AntigenTyping] = field(default_factory=list)
    transfusions: list[Transfusion] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    mspikes: list[MSpike] = field(default_factory=list)
    ifes: list[Immunofixation] = field(default_factory=list)
    isotypes: list[MProteinIsotype] = field(default_factory=list)
    shifts: list[ShiftResult] = field(default_factory=list)
    trigger: Fact | None = None
    active_requirements: list[ActiveRequirement] = field(default_factory=list)

    @staticmethod
    def time(fact: Fact) -> datetime:
        """The fact's clinical time, timezone-aware (safe to compare across facts)."""
        return aware(fact.effective)


_BUCKET = {
    "therapy": "therapies",
    "antibody_screen": "screens",
    "antibody_identification": "identifications",
    "dat": "dats",
    "abo_rh": "abo",
    "antigen_typing": "typings",
    "transfusion": "transfusions",
    "order": "orders",
    "mspike": "mspikes",
    "ife": "ifes",
    "mprotein_isotype": "isotypes",
    "shift_result": "shifts",
}


# Cheap per-kind discriminators order most exact ties; the JSON form settles what remains.
_SECONDARY = {
    "antigen_typing": "antigen",
    "antibody_screen": "method",
    "therapy": "agent",
    "order": "code",
    "shift_result": "assay",
}


def _settle(group: list[Fact]) -> list[Fact]:
    field_name = _SECONDARY.get(group[0].kind)
    if field_name is None:
        return sorted(group, key=lambda f: f.model_dump_json())
    keyed = sorted(group, key=lambda f: getattr(f, field_name))
    values = [getattr(f, field_name) for f in keyed]
    if len(set(values)) == len(values):
        return keyed
    return sorted(keyed, key=lambda f: (getattr(f, field_name), f.model_dump_json()))


def _ordered(items: list[tuple[float, int, Fact]]) -> list[Fact]:
    """One kind's facts by time; (timestamp, arrival position) tuples sort in C, never comparing
    facts (aware-datetime comparisons are several times slower than floats).
    Exact time ties are then settled by content so arrival order cannot leak into the result."""
    items.sort()
    ordered = [item[2] for item in items]
    if len({item[0] for item in items}) == len(items):
        return ordered
    n = len(items)
    i = 0
    while i < n - 1:
        j = i + 1
        while j < n and items[j][0] == items[i][0]:
            j += 1
        if j - i > 1:
            ordered[i:j] = _settle(ordered[i:j])
        i = j
    return ordered


def index_facts(patient: PatientFacts, as_of: datetime) -> FactIndex:
    moment = aware(as_of)
    index = FactIndex(as_of=moment, today=as_of.date(), trigger=patient.trigger)
    buckets: dict[str, list[tuple[float, int, Fact]]] = {kind: [] for kind in _BUCKET}
    limit = moment.timestamp()
    candidates = list(patient.facts)
    trigger = patient.trigger
    if trigger is not None and all(f is not trigger for f in patient.facts):
        candidates.append(trigger)
    for position, fact in enumerate(candidates):
        effective = fact.effective
        if effective.tzinfo is None:
            effective = effective.replace(tzinfo=UTC)
        stamp = effective.timestamp()
        if stamp <= limit:
            buckets[fact.kind].append((stamp, position, fact))
    for kind, items in buckets.items():
        if items:
            setattr(index, _BUCKET[kind], _ordered(items))
    index.active_requirements = sorted(
        (r for r in patient.active_requirements if aware(r.since) <= moment),
        key=lambda r: (r.code, aware(r.since)),
    )
    return index
