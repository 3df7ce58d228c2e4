"""Rule group H: emergency release is never blocked (R-H1).

The collector clears `blocks_issue` on every finding when an emergency is in progress, and the
crossmatch explanation says that uncrossmatched issue proceeds; this module adds the flag, the
group to issue and the follow-up tests.
"""

from __future__ import annotations

from protocols.collector import Collector
from protocols.context import Context
from protocols.decision import Crossmatch, trusted


def issue_group(ctx: Context) -> str:
    # Anti-CD47 may invalidate the reverse group (R-C3): fall back to the emergency group.
    if ctx.group and not ctx.cd47:
        return f"ABO/RhD-compatible with {ctx.group}"
    return f"group {ctx.protocol.emergency.group_when_unknown}"


def apply(ctx: Context, out: Collector) -> None:
    order = ctx.emergency
    if order is None:
        return
    profile = ctx.profile
    out.flag(
        "EMERGENCY_RELEASE",
        ("R-H1",),
        f"{ctx.protocol.emergency.explanation} Issue {issue_group(ctx)} RBC now; record the "
        "signed emergency request.",
    )
    if ctx.cd38 and profile.emergency_prefer_k_neg:
        limit = profile.emergency_k_neg_search_limit_minutes
        out.comment(
            "EMERGENCY_PREFER_K_NEG",
            ("R-H1",),
            "Prefer K-negative units only if on the shelf "
            + ("immediately" if limit == 0 else f"within {limit} min")
            + "; never delay the release for them.",
        )
    retrospective = [
        s for s in ctx.facts.screens if s.method != "UNTREATED" and s.effective >= order.effective
    ]
    if ctx.cd38 and profile.dtt_available and not retrospective:
        out.order(
            "RETROSPECTIVE_DTT_SCREEN",
            ("R-H1",),
            "DTT-treated screen on the pre-transfusion sample after the emergency release.",
        )
    out.fire(
        "R-H1",
        "Emergency release in progress: not blocked.",
        order_time=order.effective,
        group=ctx.group,
        issue=issue_group(ctx),
        anti_cd38_active=bool(ctx.cd38),
    )


def wrap_crossmatch(ctx: Context, crossmatch: Crossmatch | None) -> Crossmatch | None:
    """The crossmatch becomes the retrospective one; the release itself goes ahead now."""
    if ctx.emergency is None or crossmatch is None:
        return crossmatch
    return trusted(
        Crossmatch,
        {
            "mode": crossmatch.mode,
            "electronic_allowed": crossmatch.electronic_allowed,
            "rules": tuple(sorted({*crossmatch.rules, "R-H1"})),
            "explanation": (
                f"Emergency: uncrossmatched {issue_group(ctx)} RBC issue proceeds without delay. "
                f"Retrospective crossmatch: {crossmatch.explanation}"
            ),
        },
    )
