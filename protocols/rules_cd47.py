"""Rule group I: the separate anti-CD47 pathway (R-I1). ABO reverse grouping is R-C3."""

from __future__ import annotations

from protocols.collector import Collector
from protocols.context import Context


def apply(ctx: Context, out: Collector) -> None:
    if not ctx.cd47:
        return
    agents = ", ".join(e.agent for e in ctx.cd47)
    out.comment(
        "ANTI_CD47_WORKUP",
        ("R-I1",),
        f"{agents}: DTT is not effective. Use an anti-IgG that does not detect IgG4 (e.g. "
        "gamma-clone) and alloadsorption with pooled platelets or papain-treated RBCs.",
    )
    out.require(
        "IRL_REFERRAL",
        ("R-I1",),
        f"Anti-CD47 interference: refer to {ctx.profile.irl_referral_lab}.",
        blocks_issue=True,
    )
    out.fire("R-I1", "Anti-CD47 pathway.", agents=[e.agent for e in ctx.cd47])
