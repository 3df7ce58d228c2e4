"""Exposure registry and interference windows (R-A1..R-A4), derived from Therapy facts."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, datetime
from operator import attrgetter, itemgetter
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from protocols.codes import HandlingProfile
from protocols.decision import trusted
from protocols.fact_index import index_facts
from protocols.facts import PatientFacts, Route, Therapy
from protocols.model import Protocol
from protocols.profile import LabProfile


class Exposure(BaseModel):
    """One agent's exposure as of a time (R-A1): dates, route, window and handling profile."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: str
    route: Route | None
    product: str | None
    first_dose: date | None
    last_dose: date | None
    ongoing: bool
    planned: bool
    interference_until: date | None
    ife_until: date | None
    profile: HandlingProfile
    evidence: str
    isotype: str | None
    active: bool
    ife_active: bool
    sources: tuple[str, ...] = ()

    def covers(self, day: date) -> bool:
        """Was `day` inside this exposure's interference window (first dose .. until)?"""
        if self.planned or self.profile == "none":
            return False
        if self.first_dose is not None and day < self.first_dose:
            return False
        return self.interference_until is None or day <= self.interference_until


class InterferenceSummary(NamedTuple):
    active: bool
    profiles: tuple[str, ...]
    until: date | None


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year = day.year + month_index // 12
    month = month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


_route_of = itemgetter("route")
_product_of = itemgetter("product")
_source_of = itemgetter("evidence_source")
_record_of = itemgetter("record")


def _one_agent(
    agent: str,
    records: list[Therapy],
    protocol: Protocol,
    profile: LabProfile,
    today: date,
) -> Exposure:
    known = protocol.agents.get(agent)
    handling: HandlingProfile = profile.agent_profiles.get(
        agent, known.profile if known else profile.unknown_agent_profile
    )
    # Field dicts, read once: pydantic attribute access is several times slower than a dict
    # lookup, and this runs over every dose of a long therapy. Canonical order throughout.
    rows = [record.__dict__ for record in records]
    # Latest non-empty route / product; every non-empty evidence source (C-level passes).
    route: Route | None = next(filter(None, map(_route_of, reversed(rows))), None)
    product: str | None = next(filter(None, map(_product_of, reversed(rows))), None)
    sources = set(filter(None, map(_source_of, rows)))
    doses_given = rows if "planned" not in map(_record_of, rows) else [
        r for r in rows if r["record"] != "planned"
    ]
    given = len(doses_given)
    first: date | None = None
    last: date | None = None
    ongoing = False
    if doses_given:
        # A record without dose dates is read as a dose on its own date: the latest the dose
        # can have been, so the window is never shorter than the evidence allows.
        doses = [r["last_dose"] or r["first_dose"] or r["effective"].date() for r in doses_given]
        first = min([r["first_dose"] or dose for r, dose in zip(doses_given, doses, strict=True)])
        last = max(doses)
        ongoing = doses_given[-1]["ongoing"]
    if last is not None and last > today:
        last = today
    planned = not given
    until: date | None = None
    ife_until: date | None = None
    if last is not None and not ongoing:
        months = (
            profile.ife_window_months
            if handling == "ife-only"
            else profile.window_for(agent, route)
        )
        until = add_months(last, months)
        ife_until = add_months(last, profile.ife_window_months)
    in_window = not planned and (ongoing or (until is not None and today <= until))
    ife_relevant = agent in profile.ife_agents and handling != "none"
    ife_active = (
        ife_relevant and not planned and (ongoing or (ife_until is not None and today <= ife_until))
    )
    return trusted(
        Exposure,
        {
            "agent": agent,
            "route": route,
            "product": product,
            "first_dose": first,
            "last_dose": last,
            "ongoing": ongoing,
            "planned": planned,
            "interference_until": until,
            "ife_until": ife_until,
            "profile": handling,
            "evidence": known.evidence if known else "unknown",
            "isotype": known.isotype if known else None,
            "active": in_window and handling != "none",
            "ife_active": ife_active,
            "sources": tuple(sorted(sources)),
        },
    )


_agent_of = attrgetter("agent")


def agent_names(
    protocol: Protocol, profile: LabProfile, therapies: Sequence[Therapy]
) -> dict[str, str]:
    """Raw drug reference -> agent (R-K3), resolved once per distinct reference."""
    lookup = protocol.lookup
    local = profile.local_codes
    return {raw: lookup.resolve_agent(raw, local) for raw in set(map(_agent_of, therapies))}


def compute_exposures(
    protocol: Protocol,
    profile: LabProfile,
    therapies: Sequence[Therapy],
    today: date,
    names: dict[str, str] | None = None,
) -> list[Exposure]:
    """One Exposure per agent, sorted by agent; `names` as from agent_names() if at hand."""
    if names is None:
        names = agent_names(protocol, profile, therapies)
    by_agent: dict[str, list[Therapy]]
    if len(names) == 1:  # the usual history: one agent under one spelling, in canonical order
        by_agent = {agent: list(therapies) for agent in names.values()}
    else:
        by_agent = {}
        for record in therapies:
            by_agent.setdefault(names[record.agent], []).append(record)
    return [
        _one_agent(agent, by_agent[agent], protocol, profile, today) for agent in sorted(by_agent)
    ]


def exposures(
    protocol: Protocol, profile: LabProfile, facts: PatientFacts, as_of: datetime
) -> list[Exposure]:
    """Per-agent exposure records for the patient read API (sorted by agent)."""
    index = index_facts(facts, as_of)
    return compute_exposures(protocol, profile, index.therapies, index.today)


def summarise(records: Sequence[Exposure]) -> InterferenceSummary:
    active = [e for e in records if e.active]
    if not active:
        return InterferenceSummary(False, (), None)
    profiles = tuple(sorted({e.profile for e in active}))
    ends = [e.interference_until for e in active if e.interference_until is not None]
    if len(ends) < len(active):  # an ongoing therapy has no end yet
        return InterferenceSummary(True, profiles, None)
    return InterferenceSummary(True, profiles, max(ends))


def interference_summary(
    protocol: Protocol, profile: LabProfile, facts: PatientFacts, as_of: datetime
) -> InterferenceSummary:
    """(active, profiles, until) for the read API; until None while therapy is ongoing."""
    return summarise(exposures(protocol, profile, facts, as_of))
