"""One pass over PatientFacts: keep facts effective at `as_of`, order canonically, group by kind.

Canonical order (effective time, kind, then the JSON form for exact ties) makes every "latest X"
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
    times: dict[int, datetime] = field(default_factory=dict)

    def time(self, fact: Fact) -> datetime:
        """The fact's clinical time, timezone-aware (safe to compare across facts)."""
        return self.times.get(id(fact)) or aware(fact.effective)


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


def _canonical(facts: list[tuple[datetime, str, Fact]]) -> list[Fact]:
    facts.sort(key=lambda item: (item[0], item[1]))
    ordered = [item[2] for item in facts]
    # Exact ties in (time, kind) are rare; only they pay for the JSON tie-break.
    i = 0
    n = len(facts)
    while i < n - 1:
        j = i + 1
        while j < n and facts[j][0] == facts[i][0] and facts[j][1] == facts[i][1]:
            j += 1
        if j - i > 1:
            ordered[i:j] = sorted(ordered[i:j], key=lambda f: f.model_dump_json())
        i = j
    return ordered


def index_facts(patient: PatientFacts, as_of: datetime) -> FactIndex:
    moment = aware(as_of)
    index = FactIndex(as_of=moment, today=as_of.date(), trigger=patient.trigger)
    kept: list[tuple[datetime, str, Fact]] = []
    seen_trigger = False
    for fact in patient.facts:
        effective = aware(fact.effective)
        if effective <= moment:
            kept.append((effective, fact.kind, fact))
            if fact is patient.trigger:
                seen_trigger = True
    trigger = patient.trigger
    if (
        trigger is not None
        and not seen_trigger
        and aware(trigger.effective) <= moment
        and trigger not in patient.facts
    ):
        kept.append((aware(trigger.effective), trigger.kind, trigger))
    index.active_requirements = sorted(
        (r for r in patient.active_requirements if aware(r.since) <= moment),
        key=lambda r: (r.code, aware(r.since)),
    )
    times = index.times
    for moment_, _, fact in kept:
        times[id(fact)] = moment_
    for fact in _canonical(kept):
        getattr(index, _BUCKET[fact.kind]).append(fact)
    return index
