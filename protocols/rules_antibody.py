"""Rule groups E2 and F: known antibodies, DTT-positive work-up, DTT-resistant reactivity."""

from __future__ import annotations

from protocols.collector import Collector
from protocols.context import Context, is_panreactive


def apply(ctx: Context, out: Collector) -> None:
    _antigen_negative(ctx, out)
    if not ctx.cd38_context:
        return
    if dtt_resistant(ctx):
        _dtt_resistant(ctx, out)
    elif ctx.treated_id is not None:
        _identified_on_treated_panel(ctx, out)
    elif dtt_positive_unidentified(ctx):
        out.order(
            "DTT_ANTIBODY_ID_PANEL",
            ("R-F1",),
            "DTT-treated screen positive: identify on a DTT-treated panel (rule-outs only for "
            "antigens that survive DTT).",
        )
        out.fire("R-F1", "DTT screen positive, panel requested.", screen=_screen_time(ctx))


def _screen_time(ctx: Context) -> object:
    return ctx.xm_screen.effective if ctx.xm_screen else None


def dtt_resistant(ctx: Context) -> bool:
    """R-F2: reactivity with every treated cell (panel says panreactive, or all screen cells)."""
    ident = ctx.treated_id
    if ident is not None and "panreactive" in ident.specificities:
        return True
    screen = ctx.xm_screen
    return screen is not None and len(screen.cells) >= 2 and is_panreactive(screen)


def dtt_positive_unidentified(ctx: Context) -> bool:
    screen = ctx.xm_screen
    return screen is not None and screen.interpretation == "positive" and ctx.treated_id is None


def _antigen_negative(ctx: Context, out: Collector) -> None:
    """R-E2: antigen-negative units for every clinically significant antibody (anti-K -> K rule)."""
    if not ctx.antibodies:
        return
    sensitive = set(ctx.lost_antigens("DTT"))
    undetectable: list[str] = []
    for antigen, source in sorted(ctx.antibodies.items()):
        origin = "historical" if source.historical else f"identified ({source.method})"
        if antigen != "K":
            out.require(
                f"ANTIGEN_NEGATIVE:{antigen}",
                ("R-F1", "R-E2") if source.method != "UNTREATED" else ("R-E2",),
                f"Anti-{antigen} {origin}: {antigen}-negative units.",
            )
        if antigen in sensitive:
            undetectable.append(antigen)
    out.fire(
        "R-E2",
        "Clinically significant antibodies present or historical.",
        antibodies=sorted(ctx.antibodies),
    )
    if undetectable and ctx.dtt_path:
        names = ", ".join(f"anti-{a}" for a in undetectable)
        out.flag(
            "DTT_SENSITIVE_ANTIBODY_UNDETECTABLE",
            ("R-E2", "R-D2"),
            f"{names}: the antigen is destroyed by DTT, so a crossmatch with DTT-treated donor "
            "cells cannot detect incompatibility. Units must be antigen-negative by typing; "
            "alert the medical director.",
        )
        out.comment(
            "MEDICAL_DIRECTOR_ALERT",
            ("R-E2",),
            f"{names} with DTT-based testing: antigen-negative units by typing only.",
        )


def _identified_on_treated_panel(ctx: Context, out: Collector) -> None:
    ident = ctx.treated_id
    assert ident is not None
    out.comment(
        "IRL_REFERRAL_OFFERED",
        ("R-F1",),
        f"Antibody identified on a {ident.method}-treated panel; referral to "
        f"{ctx.profile.irl_referral_lab} may be offered for confirmation.",
    )
    out.fire(
        "R-F1",
        "Antibody identified on treated panel.",
        specificities=list(ident.specificities),
        method=ident.method,
    )


def _dtt_resistant(ctx: Context, out: Collector) -> None:
    out.flag(
        "DTT_RESISTANT_PANREACTIVITY",
        ("R-F2",),
        "Reactivity persists with DTT-treated cells: suspect a non-CD38 cause (warm autoantibody, "
        "anti-CD47, antibody to a DTT-resistant high-prevalence antigen).",
        blocks_issue=True,
    )
    out.require(
        "IRL_REFERRAL",
        ("R-F2",),
        f"DTT-resistant panreactivity: refer to {ctx.profile.irl_referral_lab}.",
        blocks_issue=True,
    )
    out.fire("R-F2", "DTT-treated cells still panreactive.", screen=_screen_time(ctx))
