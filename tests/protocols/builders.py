"""Terse builders for facts in tests: times are days relative to a fixed clinical `NOW`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from protocols import (
    AboRh,
    ActiveRequirement,
    AntibodyIdentification,
    AntibodyScreen,
    AntigenTyping,
    Decision,
    Fact,
    Immunofixation,
    LabProfile,
    MProteinIsotype,
    MSpike,
    Order,
    PatientFacts,
    ShiftResult,
    Therapy,
    Transfusion,
    evaluate,
    load_protocol,
    profile_from_mapping,
)

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
PANREACTIVE = {"I": "1+", "II": "1+", "III": "1+"}
NEGATIVE = {"I": "0", "II": "0", "III": "0"}


def at(days: float = 0) -> datetime:
    """`days` before NOW (positive = in the past)."""
    return NOW - timedelta(days=days)


def day(days: float = 0) -> date:
    return at(days).date()


def dose(agent: str = "daratumumab", days_ago: float = 0, **kw: Any) -> Therapy:
    kw.setdefault("route", "IV")
    return Therapy(effective=at(days_ago), agent=agent, last_dose=day(days_ago), **kw)


def ongoing(agent: str = "daratumumab", started_days_ago: float = 60, **kw: Any) -> Therapy:
    kw.setdefault("route", "IV")
    return Therapy(
        effective=at(started_days_ago),
        agent=agent,
        first_dose=day(started_days_ago),
        last_dose=day(min(started_days_ago, 7)),
        ongoing=True,
        **kw,
    )


def planned(agent: str = "daratumumab", days_ago: float = 0, **kw: Any) -> Therapy:
    kw.setdefault("route", "IV")
    return Therapy(effective=at(days_ago), agent=agent, record="planned", **kw)


def screen(
    days_ago: float = 0, cells: dict[str, str] | None = None, method: str = "UNTREATED", **kw: Any
) -> AntibodyScreen:
    cells = NEGATIVE if cells is None else cells
    positive = any(g not in ("0", "") for g in cells.values())
    return AntibodyScreen(
        effective=at(days_ago),
        interpretation="positive" if positive else "negative",
        cells=cells,
        method=method,  # type: ignore[arg-type]
        **kw,
    )


def ident(*specs: str, days_ago: float = 0, method: str = "UNTREATED", **kw: Any
          ) -> AntibodyIdentification:
    return AntibodyIdentification(
        effective=at(days_ago), specificities=specs, method=method, **kw  # type: ignore[arg-type]
    )


def typing(antigen: str, positive: bool, days_ago: float = 0, method: str = "serology-direct"
           ) -> AntigenTyping:
    return AntigenTyping(
        effective=at(days_ago), antigen=antigen, positive=positive, method=method  # type: ignore[arg-type]
    )


def transfused(days_ago: float) -> Transfusion:
    return Transfusion(effective=at(days_ago))


def order(code: str, days_ago: float = 0, **kw: Any) -> Order:
    return Order(effective=at(days_ago), code=code, **kw)  # type: ignore[arg-type]


def abo(group: str = "O POS", days_ago: float = 0, **kw: Any) -> AboRh:
    return AboRh(effective=at(days_ago), group=group, **kw)


def mspike(g_dl: float, days_ago: float = 0) -> MSpike:
    return MSpike(effective=at(days_ago), g_dl=g_dl)


def ife(*bands: str, days_ago: float = 0, **kw: Any) -> Immunofixation:
    return Immunofixation(effective=at(days_ago), bands=bands, **kw)


def isotype(value: str, days_ago: float = 400) -> MProteinIsotype:
    return MProteinIsotype(effective=at(days_ago), isotype=value)


def shift(assay: str, value: str, days_ago: float = 0) -> ShiftResult:
    return ShiftResult(effective=at(days_ago), assay=assay, value=value)  # type: ignore[arg-type]


def requirement(code: str, since_days_ago: float = 200) -> ActiveRequirement:
    return ActiveRequirement(code=code, since=at(since_days_ago))


def full_baseline(days_ago: float = 400, k_positive: bool = False) -> list[Fact]:
    """ABO/RhD, screen and the default extended phenotype, before any therapy."""
    antigens = LabProfile().baseline_antigen_set
    facts: list[Fact] = [abo(days_ago=days_ago), screen(days_ago)]
    facts += [typing(a, a == "K" and k_positive, days_ago) for a in antigens]
    return facts


def run(
    *facts: Fact,
    profile: dict[str, Any] | LabProfile | None = None,
    active: tuple[ActiveRequirement, ...] = (),
    as_of: datetime = NOW,
) -> Decision:
    lab = profile if isinstance(profile, LabProfile) else profile_from_mapping(profile)
    return evaluate(
        load_protocol(), lab, PatientFacts(facts=facts, active_requirements=active), as_of
    )


def codes(decision: Decision) -> dict[str, set[str]]:
    return {
        "flags": {f.code for f in decision.flags},
        "requirements": {f.code for f in decision.requirements},
        "reflex": {f.code for f in decision.reflex_orders},
        "comments": {f.code for f in decision.comments},
    }


def flags(d: Decision) -> set[str]:
    return {f.code for f in d.flags}


def reqs(d: Decision) -> set[str]:
    return {f.code for f in d.requirements}


def reflex(d: Decision) -> set[str]:
    return {f.code for f in d.reflex_orders}


def comments(d: Decision) -> set[str]:
    return {f.code for f in d.comments}
