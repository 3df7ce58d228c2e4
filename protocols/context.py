"""Clinical state derived once per evaluation from the fact index; the rule modules read it.

Keeping these derivations in one place means each rule group states *what* it decides, and the
"which screen counts", "is this typing valid" questions are answered the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from protocols.exposure import Exposure
from protocols.exposure import agent_names as exposure_agent_names
from protocols.fact_index import FactIndex, aware
from protocols.facts import (
    AntibodyIdentification,
    AntibodyScreen,
    AntigenTyping,
    Order,
    Transfusion,
)
from protocols.model import Lookup, Protocol
from protocols.profile import LabProfile

TRANSFUSION_ORDERS = frozenset({"RBC", "CROSSMATCH", "TYPE_AND_SCREEN"})
_NEGATIVE_GRADES = frozenset({"", "0", "neg", "-", "negative", "nt"})


@lru_cache(maxsize=256)  # pure; a lab reports a handful of distinct grade spellings
def reaction_grade(grade: str) -> float:
    """0 for negative; w+/mf = 0.5; "n+" = n. Unknown non-negative text counts as reactive."""
    text = grade.strip().lower()
    if text in _NEGATIVE_GRADES:
        return 0.0
    if text[:1].isdigit():
        return float(text[0])
    return 0.5


def is_panreactive(screen: AntibodyScreen) -> bool:
    """Positive with every tested cell reactive (R-C1 pattern); needs the cell grades."""
    cells = screen.cells
    return (
        screen.interpretation == "positive"
        and bool(cells)
        and all(reaction_grade(g) > 0 for g in cells.values())
    )


def antigen_of(specificity: str) -> str | None:
    text = specificity.strip()
    return text[5:] if text.lower().startswith("anti-") and len(text) > 5 else None


@dataclass(slots=True)
class Context:
    protocol: Protocol
    profile: LabProfile
    facts: FactIndex
    exposures: list[Exposure]
    lookup: Lookup
    agent_names: dict[str, str] = field(default_factory=dict)  # raw drug reference -> agent
    cd38: list[Exposure] = field(default_factory=list)  # active anti-CD38 (R-A2)
    cd47: list[Exposure] = field(default_factory=list)  # active anti-CD47 (R-I1)
    rbc_given: list[Exposure] = field(default_factory=list)  # any anti-CD38/47 ever given
    planned: list[Exposure] = field(default_factory=list)  # ordered, no dose yet (R-B1)
    current_orders: list[Order] = field(default_factory=list)
    emergency: Order | None = None
    # screens (IAT phase unless said otherwise)
    latest_untreated: AntibodyScreen | None = None
    latest_untreated_positive: AntibodyScreen | None = None
    is_rt_reactive: bool = False
    relied_screen: AntibodyScreen | None = None  # treated screen detection now relies on
    xm_screen: AntibodyScreen | None = None  # treated screen not older than any positive one
    treated_id: AntibodyIdentification | None = None  # latest current treated-cell panel
    panreactive: AntibodyScreen | AntibodyIdentification | None = None
    antibodies: dict[str, AntibodyIdentification] = field(default_factory=dict)
    k_positive: bool | None = None
    k_invalid_reasons: list[str] = field(default_factory=list)
    group: str | None = None
    _typing_memo: dict[int, str | None] = field(default_factory=dict)
    # profile.serologic_phenotype_invalid_if_transfused_within_days, as a timedelta
    transfused_window: timedelta = timedelta(0)

    # ---- exposure helpers -------------------------------------------------------------
    def covered_by(self, day: date, profile: str) -> Exposure | None:
        for exposure in self.rbc_given:
            if exposure.profile == profile and exposure.covers(day):
                return exposure
        return None

    @property
    def cd38_context(self) -> bool:
        """Anti-CD38 active now, or the current panreactivity arose inside its window."""
        if self.cd38:
            return True
        return self.panreactive is not None and bool(
            self.covered_by(self.panreactive.effective.date(), "anti-CD38")
        )

    @property
    def dtt_path(self) -> bool:
        return self.cd38_context and self.profile.dtt_available

    # ---- typing validity (R-B2, R-B3) -----------------------------------------------------
    def typing_problem(self, typing: AntigenTyping) -> str | None:
        """None if the typing may be relied on; else the rule id that invalidates it."""
        key = id(typing)
        if key in self._typing_memo:
            return self._typing_memo[key]
        problem = self._typing_problem(typing)
        self._typing_memo[key] = problem
        return problem

    def _typing_problem(self, typing: AntigenTyping) -> str | None:
        return _problem(typing.__dict__, self.facts.transfusions, self.transfused_window,
                        self.profile.post_exposure_valid_typing_methods, _windows(self.rbc_given))

    def valid_typing(self, antigen: str) -> AntigenTyping | None:
        for typing in reversed(self.facts.typings):
            if typing.antigen == antigen and self.typing_problem(typing) is None:
                return typing
        return None

    def untyped(self, antigens: list[str]) -> list[str]:
        return [a for a in antigens if self.valid_typing(a) is None]

    def recently_transfused(self) -> bool:
        days = self.transfused_window
        return any(aware(t.effective) + days >= self.facts.as_of for t in self.facts.transfusions)

    def lost_antigens(self, method: str) -> list[str]:
        """Antigens a treatment method destroys or weakens (R-D2 / R-G2, profile overrides)."""
        if method == "DTT":
            return self.profile.dtt_sensitive_antigens
        override = self.profile.method_destroyed_antigens.get(method)  # type: ignore[call-overload]
        if override is not None:
            return list(override)
        known = self.protocol.methods.get(method)
        return list(known.antigens()) if known else []


def _derive_screens(ctx: Context) -> None:
    resolving = ctx.lookup.resolving_methods
    untreated: list[AntibodyScreen] = []
    treated: list[AntibodyScreen] = []
    other_phases: list[AntibodyScreen] = []  # IS / RT
    for screen in ctx.facts.screens:
        fields = screen.__dict__  # one slow pydantic attribute read instead of two
        if fields["phase"] != "IAT":
            other_phases.append(screen)
        elif fields["method"] in resolving:
            treated.append(screen)
        else:
            untreated.append(screen)
    if untreated:
        ctx.latest_untreated = untreated[-1]
        ctx.latest_untreated_positive = next(
            (s for s in reversed(untreated) if s.interpretation == "positive"), None
        )
    if treated:
        last = treated[-1]
        last_time = last.effective
        later = [s for s in untreated if s.effective > last_time]
        # Drug noise on untreated cells inside an anti-CD38 window does not displace the
        # treated screen; a later negative or out-of-window untreated screen does (R-D4).
        if all(
            s.interpretation == "positive" and ctx.covered_by(s.effective.date(), "anti-CD38")
            for s in later
        ):
            ctx.relied_screen = last
        positive = ctx.latest_untreated_positive
        if positive is None or last_time >= positive.effective:
            ctx.xm_screen = last
    since = ctx.latest_untreated.effective.date() if ctx.latest_untreated else None
    ctx.is_rt_reactive = any(
        s.interpretation == "positive" and (since is None or s.effective.date() >= since)
        for s in other_phases
    )
    current = [i for i in ctx.facts.identifications if not i.historical]
    untreated_ids = [i for i in current if i.method not in resolving]
    treated_ids = [i for i in current if i.method in resolving]
    if treated_ids and (
        ctx.relied_screen is None or treated_ids[-1].effective >= ctx.relied_screen.effective
    ):
        ctx.treated_id = treated_ids[-1]
    candidates: list[AntibodyScreen | AntibodyIdentification] = []
    if ctx.latest_untreated is not None:
        candidates.append(ctx.latest_untreated)
    if untreated_ids:
        candidates.append(untreated_ids[-1])
    if candidates:
        latest = max(candidates, key=lambda f: f.effective)
        if (isinstance(latest, AntibodyScreen) and is_panreactive(latest)) or (
            isinstance(latest, AntibodyIdentification) and "panreactive" in latest.specificities
        ):
            ctx.panreactive = latest


# id(profile) -> (profile, transfusion window, current-order window). Profiles are frozen, so
# the timedeltas are computed once per profile object; the entry keeps the profile alive so its
# id cannot be reused while cached.
_PROFILE_WINDOWS: dict[int, tuple[LabProfile, timedelta, timedelta]] = {}


def _profile_windows(profile: LabProfile) -> tuple[timedelta, timedelta]:
    found = _PROFILE_WINDOWS.get(id(profile))
    if found is not None and found[0] is profile:
        return found[1], found[2]
    if len(_PROFILE_WINDOWS) >= 64:
        _PROFILE_WINDOWS.clear()
    transfused = timedelta(days=profile.serologic_phenotype_invalid_if_transfused_within_days)
    orders = timedelta(hours=profile.current_order_hours)
    _PROFILE_WINDOWS[id(profile)] = (profile, transfused, orders)
    return transfused, orders


def _windows(given: list[Exposure]) -> list[tuple[date | None, date | None]]:
    """(first dose, interference until) of exposures whose covers() reads only those two (not
    planned, profile not "none"), as plain tuples."""
    return [
        (e.first_dose, e.interference_until)
        for e in given
        if not e.planned and e.profile != "none"
    ]


def _problem(
    fields: dict[str, Any],
    transfusions: list[Transfusion],
    days: timedelta,
    valid_methods: Sequence[str],
    windows: list[tuple[date | None, date | None]],
) -> str | None:
    """Context.typing_problem for a typing's field dict (R-B2, R-B3)."""
    method = fields["method"]
    if method == "genotype":
        return None
    effective: datetime = fields["effective"]
    if transfusions:
        moment = aware(effective)
        for transfusion in transfusions:
            given = aware(transfusion.effective)
            if given <= moment <= given + days:
                return "R-B2"
    if windows and method not in valid_methods:
        day = effective.date()
        for first, until in windows:
            if (first is None or day >= first) and (until is None or day <= until):
                return "R-B3"
    return None


def _typing_problems(ctx: Context) -> None:
    """Every indexed typing's problem, in one pass (the rules ask about all of them)."""
    typings = ctx.facts.typings
    if not typings:
        return
    memo = ctx._typing_memo
    transfusions = ctx.facts.transfusions
    days = ctx.transfused_window
    valid = ctx.profile.post_exposure_valid_typing_methods
    windows = _windows(ctx.rbc_given)
    for typing in typings:
        memo[id(typing)] = _problem(typing.__dict__, transfusions, days, valid, windows)


def build_context(
    protocol: Protocol,
    profile: LabProfile,
    facts: FactIndex,
    exposures: list[Exposure],
    agent_names: dict[str, str] | None = None,
) -> Context:
    if agent_names is None:
        agent_names = exposure_agent_names(protocol, profile, facts.therapies)
    transfused_window, order_window = _profile_windows(profile)
    ctx = Context(
        protocol=protocol,
        profile=profile,
        facts=facts,
        exposures=exposures,
        lookup=protocol.lookup,
        agent_names=agent_names,
        transfused_window=transfused_window,
    )
    for exposure in exposures:
        if exposure.profile not in ("anti-CD38", "anti-CD47"):
            continue
        if exposure.planned:
            ctx.planned.append(exposure)
            continue
        ctx.rbc_given.append(exposure)
        if exposure.active:
            (ctx.cd38 if exposure.profile == "anti-CD38" else ctx.cd47).append(exposure)
    horizon = facts.as_of - order_window
    ctx.current_orders = [
        o for o in facts.orders if aware(o.effective) >= horizon or o is facts.trigger
    ]
    ctx.emergency = next(
        (o for o in reversed(ctx.current_orders) if o.code == "EMERGENCY_RELEASE"), None
    )
    _derive_screens(ctx)
    insignificant = ctx.lookup.insignificant
    for ident in facts.identifications:
        for spec in ident.specificities:
            antigen = antigen_of(spec)
            if antigen and spec.strip().lower() not in insignificant:
                ctx.antibodies[antigen] = ident
    _typing_problems(ctx)
    k_typing = ctx.valid_typing("K")
    ctx.k_positive = k_typing.positive if k_typing else None
    ctx.k_invalid_reasons = sorted(
        {p for t in facts.typings if t.antigen == "K" and (p := ctx.typing_problem(t))}
    )
    if facts.abo:
        ctx.group = facts.abo[-1].group
    return ctx
