"""Rule group G: laboratories without DTT (R-G1). Method-aware exclusions (R-G2) live with the
DTT exclusions in rules_kell.py because both read the same method -> antigen table."""

from __future__ import annotations

from protocols.collector import Collector
from protocols.context import Context


def apply(ctx: Context, out: Collector) -> None:
    profile = ctx.profile
    if profile.dtt_available or not ctx.cd38_context or ctx.xm_screen is not None:
        return
    latest = ctx.latest_untreated
    negative_in_window = (
        latest is not None
        and latest.interpretation == "negative"
        and ctx.covered_by(latest.effective.date(), "anti-CD38") is not None
    )
    if not negative_in_window:
        out.flag(
            "SCREEN_NOT_INTERPRETABLE",
            ("R-G1",),
            "Antibody screen not interpretable due to anti-CD38 and no DTT available.",
        )
    antigens = profile.no_dtt_matched_antigens
    out.comment(
        "NO_DTT_OPTIONS",
        ("R-G1",),
        f"Options: refer to {profile.irl_referral_lab}, or issue {','.join(antigens)}-matched "
        "units (phenotype or genotype) with documented medical-director approval.",
    )
    if profile.no_dtt_workflow == "irl_referral":
        out.require(
            "IRL_REFERRAL",
            ("R-G1",),
            f"No DTT in this laboratory: refer the sample to {profile.irl_referral_lab}.",
            blocks_issue=True,
        )
    else:
        missing = ctx.untyped(antigens)
        out.require(
            "EXTENDED_MATCH_RBC",
            ("R-G1",),
            f"No DTT: {','.join(antigens)}-matched units with medical-director approval.",
        )
        if missing:
            out.order(
                "RBC_GENOTYPE",
                ("R-G1",),
                f"Matched units need the patient's {', '.join(missing)} type.",
            )
    out.fire(
        "R-G1",
        "No DTT available while anti-CD38 interference is unresolved.",
        workflow=profile.no_dtt_workflow,
        latest_screen=latest.effective if latest else None,
        matched_antigens=list(antigens),
    )
