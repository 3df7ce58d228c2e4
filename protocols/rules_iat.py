"""Rule group C: interpreting screen / panel reactivity (R-C1..R-C4)."""

from __future__ import annotations

from protocols.collector import Collector
from protocols.context import Context, reaction_grade
from protocols.facts import AntibodyScreen


def apply(ctx: Context, out: Collector) -> None:
    if ctx.panreactive is not None:
        day = ctx.panreactive.effective.date()
        # Only a window that was open on the day of the sample may explain it (R-C1 vs R-C2).
        cd38 = ctx.covered_by(day, "anti-CD38")
        if cd38 is not None and not ctx.is_rt_reactive:
            _consistent_with_cd38(ctx, out, cd38.agent)
        elif cd38 is not None:
            out.comment(
                "IS_RT_REACTIVITY_UNEXPLAINED",
                ("R-C1",),
                "Reactivity at IS/RT is not typical of anti-CD38: do not attribute it to the drug; "
                "standard work-up.",
            )
            out.fire("R-C1", "Panreactive but IS/RT reactive: drug pattern not met.", date=day)
        elif ctx.covered_by(day, "anti-CD47") is None:
            _no_known_therapy(ctx, out)
    _anti_cd47_abo(ctx, out)
    _carryover(ctx, out)


def _consistent_with_cd38(ctx: Context, out: Collector, agent: str) -> None:
    sample = ctx.panreactive
    assert sample is not None
    grades = sample.cells if isinstance(sample, AntibodyScreen) else {}
    strongest = max((reaction_grade(g) for g in grades.values()), default=0.0)
    out.flag(
        "IAT_INTERFERENCE_SUSPECTED",
        ("R-C1",),
        f"IAT panreactivity during the {agent} window is consistent with anti-CD38 interference. "
        "Do not finalise as alloantibody or warm autoantibody; DAT and autocontrol do not "
        "exclude the drug.",
    )
    resolved_after = ctx.xm_screen is not None and ctx.xm_screen.effective >= sample.effective
    if ctx.profile.dtt_available and not resolved_after:
        out.order(
            "DTT_ANTIBODY_SCREEN",
            ("R-C1", "R-D1"),
            "Repeat the screen with DTT-treated reagent cells; AHG crossmatch with untreated "
            "cells is not used.",
        )
    if strongest >= ctx.profile.iat_strength_warning_grade:
        out.comment(
            "STRONG_IAT_REACTIVITY",
            ("R-C1",),
            f"Reactivity {strongest:g}+ is stronger than usual for anti-CD38: review for an "
            "underlying antibody.",
        )
    out.fire(
        "R-C1",
        "Panreactive IAT pattern inside an anti-CD38 window.",
        agent=agent,
        sample=sample.effective,
        cells=dict(grades),
        strongest=strongest,
        dtt_screen_after=resolved_after,
    )


def _no_known_therapy(ctx: Context, out: Collector) -> None:
    sample = ctx.panreactive
    assert sample is not None
    out.flag(
        "PANREACTIVE_NO_KNOWN_THERAPY",
        ("R-C2",),
        "Panreactivity without anti-CD38/anti-CD47 therapy in its window: not attributed to a "
        "drug; standard work-up before routine issue.",
        blocks_issue=True,
    )
    out.comment(
        "MEDICATION_RECONCILIATION",
        ("R-C2",),
        "Reconcile medications for anti-CD38 (daratumumab, isatuximab...) and anti-CD47 "
        "(magrolimab) agents; work up warm autoantibody, antibody to a high-prevalence antigen and "
        "rouleaux (myeloma).",
    )
    past = [e for e in ctx.rbc_given if e.profile == "anti-CD38"]
    action = ctx.profile.post_window_panreactive_action
    if past:
        if action == "suggest_dtt" and ctx.profile.dtt_available:
            out.order(
                "DTT_ANTIBODY_SCREEN",
                ("R-C2",),
                "Anti-CD38 given before the window: DTT-treated screen suggested, with director "
                "review.",
            )
        else:
            out.require(
                "IRL_REFERRAL",
                ("R-C2",),
                "Panreactivity after the anti-CD38 window: refer to "
                f"{ctx.profile.irl_referral_lab}.",
                blocks_issue=True,
            )
    out.fire(
        "R-C2",
        "Panreactivity not covered by a therapy window.",
        sample=sample.effective,
        past_anti_cd38=[e.agent for e in past],
        post_window_action=action if past else None,
    )


def _anti_cd47_abo(ctx: Context, out: Collector) -> None:
    if not ctx.cd47:
        return
    unexpected = any(a.reverse_unexpected_reactions for a in ctx.facts.abo)
    detail = " Unexpected reverse-group reactions were recorded." if unexpected else ""
    out.flag(
        "ABO_REVERSE_MAY_BE_INVALID",
        ("R-C3", "R-I1"),
        "Anti-CD47 therapy can disturb ABO reverse grouping; confirm the group by forward typing "
        f"and history (anti-CD38 does not affect ABO/RhD).{detail}",
    )
    out.fire("R-C3", "Anti-CD47 active: ABO reverse grouping questioned.", unexpected=unexpected)


def _carryover(ctx: Context, out: Collector) -> None:
    profile = ctx.profile
    if not (profile.analyser_carryover_warning and ctx.cd38):
        return
    latest = ctx.facts.screens[-1] if ctx.facts.screens else None
    if latest is None or latest.analyser not in profile.carryover_analysers:
        return
    used = [latest.analyser]
    out.comment(
        "ANALYSER_CARRYOVER_RISK",
        ("R-C4",),
        f"Anti-CD38 sample run on {', '.join(used)}: check following samples for carry-over "
        "false positives.",
    )
    out.fire("R-C4", "Carry-over warning.", analysers=used)
