"""Rule group D: DTT-treated screening, method-aware exclusions, K-negative rule, matching.

R-D4 (requirement lifecycle) runs last, in lifecycle.py, because it compares against everything
the other groups require.
"""

from __future__ import annotations

from protocols.collector import Collector
from protocols.context import Context

RH_K = ["C", "c", "E", "e", "K"]
EXTENDED = [*RH_K, "Fya", "Fyb", "Jka", "Jkb", "S", "s"]


def apply(ctx: Context, out: Collector) -> None:
    if ctx.cd38 and ctx.profile.dtt_available:
        _dtt_screen(ctx, out)
    _exclusions(ctx, out)
    _k_rule(ctx, out)
    if ctx.cd38 and ctx.profile.extra_matching_policy != "none":
        _matching(ctx, out)


def _dtt_screen(ctx: Context, out: Collector) -> None:
    """R-D1: while the window is active the screen and panel use DTT-treated cells."""
    out.require(
        "DTT_TREATED_SCREEN",
        ("R-D1",),
        "Anti-CD38 window active: antibody screen and panel with 0.2 M DTT-treated reagent cells "
        "(record DTT lot, preparation date and QC).",
    )
    transfusion_orders = [o for o in ctx.current_orders if o.code in ("RBC", "CROSSMATCH",
                                                                     "TYPE_AND_SCREEN")]
    screen = ctx.xm_screen
    stale = screen is None or (ctx.facts.today - screen.effective.date()).days > (
        ctx.profile.sample_validity_days
    )
    if transfusion_orders and stale:
        out.order(
            "DTT_ANTIBODY_SCREEN",
            ("R-D1",),
            "Transfusion requested and no current DTT-treated screen.",
        )
    out.fire(
        "R-D1",
        "DTT-treated screening required.",
        agents=[e.agent for e in ctx.cd38],
        current_dtt_screen=screen.effective if screen else None,
        orders=[o.code for o in transfusion_orders],
    )


def _exclusions(ctx: Context, out: Collector) -> None:
    """R-D2 / R-G2: antibodies to antigens the method destroys cannot be excluded."""
    methods: dict[str, tuple[str, ...]] = {}
    if ctx.relied_screen is not None:
        methods[ctx.relied_screen.method] = ("R-D2", "R-G2")
    if ctx.treated_id is not None:
        methods[ctx.treated_id.method] = ("R-D2", "R-G2", "R-F1")
    for method, rules in sorted(methods.items()):
        lost = ctx.lost_antigens(method)
        if not lost:
            out.comment(
                f"ANTIBODIES_NOT_EXCLUDED:{method}",
                rules,
                f"{method}: reagent antigens preserved; usual rule-outs apply.",
            )
            continue
        out.comment(
            f"ANTIBODIES_NOT_EXCLUDED:{method}",
            rules,
            f"{method}-treated cells: antibodies to {ctx.lookup.systems(lost)} antigens "
            f"({', '.join(lost)}) cannot be excluded.",
        )
        out.fire("R-G2" if method != "DTT" else "R-D2", f"{method} exclusions.", lost=lost)


def _k_rule(ctx: Context, out: Collector) -> None:
    """R-D3: K-negative RBC unless validly K+, when detection relies on DTT/TCEP cells or the
    anti-CD38 interference is unresolved."""
    k_methods = ctx.profile.k_rule_methods
    relied = ctx.relied_screen
    by_method = (relied is not None and relied.method in k_methods) or (
        ctx.treated_id is not None and ctx.treated_id.method in k_methods
    )
    planned_dtt = bool(ctx.cd38) and ctx.profile.dtt_available and "DTT" in k_methods
    unresolved = bool(ctx.cd38) and relied is None and not ctx.profile.dtt_available
    anti_k = "K" in ctx.antibodies
    if not (by_method or planned_dtt or unresolved or anti_k):
        return
    reasons = []
    if by_method:
        reasons.append("antibody detection relies on DTT/TCEP-treated cells (Kell destroyed)")
    elif planned_dtt:
        reasons.append("screening will use DTT-treated cells (Kell destroyed)")
    if unresolved:
        reasons.append("anti-CD38 interference unresolved")
    if anti_k:
        reasons.append("anti-K present or historical")
        out.require(
            "K_NEGATIVE_RBC",
            ("R-E2",),
            "Anti-K present or historical: K-negative units by typing.",
        )
    inputs = {"k_positive": ctx.k_positive, "reasons": reasons, "methods": list(k_methods)}
    if ctx.k_positive and not anti_k:
        out.fire("R-D3", "Patient validly K+: no K-negative requirement.", **inputs)
        return
    if not (by_method or planned_dtt or unresolved):
        out.fire("R-D3", "K-negative required by antibody history.", **inputs)
        return
    out.require(
        "K_NEGATIVE_RBC",
        ("R-D3",),
        f"K-negative RBC-containing components: {'; '.join(reasons)}; patient not validly K+.",
    )
    if ctx.k_positive is None:
        rules = ("R-D3", "R-B3", *ctx.k_invalid_reasons)
        out.order(
            "RBC_GENOTYPE",
            tuple(dict.fromkeys(rules)),
            "K status unknown or only from typings that cannot be relied on: genotype the patient.",
        )
    out.fire("R-D3", "K-negative requirement.", **inputs)


def _matching(ctx: Context, out: Collector) -> None:
    """R-D5: optional Rh+K or extended matching when a baseline profile exists."""
    policy = ctx.profile.extra_matching_policy
    antigens = RH_K if policy == "rh_k" else EXTENDED
    missing = ctx.untyped(antigens)
    if missing:
        out.order(
            "RBC_GENOTYPE",
            ("R-D5",),
            f"Matching policy '{policy}' needs the patient's {', '.join(missing)} type.",
        )
    else:
        negatives = [a for a in antigens if (t := ctx.valid_typing(a)) and not t.positive]
        out.require(
            "EXTENDED_MATCH_RBC",
            ("R-D5",),
            f"Match {', '.join(antigens)} (patient negative for {', '.join(negatives) or 'none'}).",
        )
    out.fire("R-D5", "Antigen matching policy.", policy=policy, missing=missing)
