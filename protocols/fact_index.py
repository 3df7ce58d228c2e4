"""One pass over PatientFacts: keep facts effective at `as_of`, order canonically, group by kind.

Canonical order (effective time, then content for exact ties) makes every "latest X"
independent of the order the facts arrived in, so the same facts give the same decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from operator import attrgetter, itemgetter, lt

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
    kind: attrgetter(name)
    for kind, name in {
        "antigen_typing": "antigen",
        "antibody_screen": "method",
        "therapy": "agent",
        "order": "code",
        "shift_result": "assay",
    }.items()
}


def _settle(group: list[Fact]) -> list[Fact]:
    secondary = _SECONDARY.get(group[0].kind)
    if secondary is None:
        return sorted(group, key=lambda f: f.model_dump_json())
    values = list(map(secondary, group))
    if len(set(values)) == len(values):
        return list(map(group.__getitem__, sorted(range(len(values)), key=values.__getitem__)))
    return sorted(group, key=lambda f: (secondary(f), f.model_dump_json()))


_key = itemgetter(0)
_fact = itemgetter(1)


def _ordered(keys: list[datetime], facts: list[Fact]) -> list[Fact]:
    """One kind's facts by time (`keys[i]` is `facts[i]`'s time). Keys are UTC datetimes sharing
    the `UTC` tzinfo object, so they compare bytewise in C (no utcoffset() calls). Exact time
    ties are settled by content so arrival order cannot leak into the result."""
    if len(keys) == 1 or all(map(lt, keys, islice(keys, 1, None))):
        return facts  # usual case: arrived in order, no ties
    n = len(keys)
    if keys.count(keys[0]) == n:  # one shared time (e.g. a panel typed at once): a single tie
        return _settle(facts)
    if n == 2:  # not in order and not tied: reversed
        return [facts[1], facts[0]]
    order = sorted(range(n), key=keys.__getitem__)
    ranked = list(map(keys.__getitem__, order))
    if all(map(lt, ranked, islice(ranked, 1, None))):  # no ties: time order is the order
        return list(map(facts.__getitem__, order))
    secondary = _SECONDARY.get(facts[0].kind)
    if secondary is not None:
        # Ties that the discriminator settles: (time, discriminator) unique, so ordering by it
        # is what settling each tie below would give.
        composite = list(zip(keys, map(secondary, facts), strict=True))
        order = sorted(range(n), key=composite.__getitem__)
        pairs = list(map(composite.__getitem__, order))
        if all(map(lt, pairs, islice(pairs, 1, None))):  # strictly increasing: all unique
            return list(map(facts.__getitem__, order))
    items = sorted(zip(keys, facts, strict=True), key=_key)  # stable: ties keep arrival order
    ordered = list(map(_fact, items))
    keys = list(map(_key, items))
    n = len(items)
    i = 0
    while i < n - 1:
        j = i + 1
        while j < n and keys[j] == keys[i]:
            j += 1
        if j - i > 1:
            ordered[i:j] = _settle(ordered[i:j])
        i = j
    return ordered


def _utc(moment: datetime) -> datetime:
    """`moment` as a UTC datetime whose tzinfo is the `UTC` singleton (naive read as UTC)."""
    tz = moment.tzinfo
    if tz is UTC:
        return moment
    if tz is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# Fact class -> FactIndex attribute (each kind is exactly one class of the Fact union).
_BUCKET_OF_CLASS: dict[type, str] = {
    cls: _BUCKET[cls.model_fields["kind"].default]
    for cls in (
        Therapy,
        AntibodyScreen,
        AntibodyIdentification,
        DirectAntiglobulin,
        AboRh,
        AntigenTyping,
        Transfusion,
        Order,
        MSpike,
        Immunofixation,
        MProteinIsotype,
        ShiftResult,
    )
}


def index_facts(patient: PatientFacts, as_of: datetime) -> FactIndex:
    moment = aware(as_of)
    index = FactIndex(as_of=moment, today=as_of.date(), trigger=patient.trigger)
    # Per class: the facts and, in parallel, their UTC times (no per-fact tuples to unpack).
    keys: dict[type, list[datetime]] = {}
    kept: dict[type, list[Fact]] = {}
    limit = _utc(moment)
    facts = patient.facts
    trigger = patient.trigger
    if trigger is not None and all(f is not trigger for f in facts):
        facts = (*facts, trigger)
    for fact in facts:
        key = fact.effective
        if key.tzinfo is not UTC:
            key = _utc(key)
        if key <= limit:
            cls = type(fact)
            found = keys.get(cls)
            if found is None:
                keys[cls] = [key]
                kept[cls] = [fact]
            else:
                found.append(key)
                kept[cls].append(fact)
    for cls, times in keys.items():
        setattr(index, _BUCKET_OF_CLASS[cls], _ordered(times, kept[cls]))
    index.active_requirements = sorted(
        (r for r in patient.active_requirements if aware(r.since) <= moment),
        key=lambda r: (r.code, aware(r.since)),
    )
    return index
