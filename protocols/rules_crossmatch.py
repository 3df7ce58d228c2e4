"""Rule group E: choosing the crossmatch for the patient's situation (policies are YAML data).

ELECTRONIC_XM_BLOCKED is required exactly when the chosen policy disallows electronic issue, and
AHG_XM_DTT_DONOR_CELLS exactly when the mode is AHG_DTT, so the requirement list and the
crossmatch block never disagree.
"""

from __future__ import annotations

from protocols.collector import Collector
from protocols.context import Context
from protocols.decision import Crossmatch, CrossmatchMode, trusted
from protocols.model import XmSituation
from protocols.rules_antibody import dtt_positive_unidentified, dtt_resistant


def situation(ctx: Context) -> XmSituation | None:
    if ctx.cd47:
        return "anti_cd47"
    if ctx.cd38_context:
        screen = ctx.xm_screen
        if dtt_resistant(ctx):
            return "dtt_resistant"
        if screen is None and not ctx.profile.dtt_available:
            return "no_dtt_with_antibody" if ctx.antibodies else "no_dtt"
        if ctx.antibodies:
            return "antibody_present"
        if screen is None:
            return "dtt_screen_pending"
        if screen.interpretation == "positive":
            return "dtt_screen_positive_unidentified" if dtt_positive_unidentified(ctx) else (
                "antibody_present"
            )
        return "dtt_screen_negative" if screen.method in ("DTT", "TCEP") else (
            "resolved_screen_negative"
        )
    if ctx.panreactive is not None:
        post_window = any(e.profile == "anti-CD38" for e in ctx.rbc_given)
        if (
            post_window
            and ctx.profile.post_window_panreactive_action == "suggest_dtt"
            and ctx.profile.dtt_available
        ):
            return "panreactive_post_window_dtt"
        return "panreactive_no_therapy"
    return None


def apply(ctx: Context, out: Collector) -> Crossmatch | None:
    chosen = situation(ctx)
    if chosen is None:
        return None
    policy = ctx.protocol.crossmatch[chosen]
    explanation = policy.explanation
    mode: CrossmatchMode
    if policy.mode is None:  # R-E1: the laboratory's configured mode
        mode = ctx.profile.crossmatch_mode_when_dtt_screen_negative
        electronic = mode == "ELECTRONIC"
        explanation = f"{explanation} Configured mode: {mode}."
    else:
        mode = policy.mode
        electronic = bool(policy.electronic_allowed)
    if not electronic:
        out.require(
            "ELECTRONIC_XM_BLOCKED",
            policy.rules,
            f"No electronic crossmatch: {explanation}",
        )
    if mode == "AHG_DTT":
        out.require(
            "AHG_XM_DTT_DONOR_CELLS",
            policy.rules,
            "AHG crossmatch with DTT-treated donor cells (untreated donor cells react by design).",
        )
    for rule in policy.rules:
        out.fire(rule, f"Crossmatch situation '{chosen}'.", situation=chosen, mode=mode,
                 electronic_allowed=electronic)
    return trusted(
        Crossmatch,
        {
            "mode": mode,
            "electronic_allowed": electronic,
            "rules": tuple(sorted(policy.rules)),
            "explanation": explanation,
        },
    )
