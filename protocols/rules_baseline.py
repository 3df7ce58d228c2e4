"""Rule group B: baseline before the first dose (R-B1), typing validity (R-B2, R-B3)."""

from __future__ import annotations

from protocols.collector import Collector
from protocols.context import Context


def apply(ctx: Context, out: Collector) -> None:
    _possibly_affected(ctx, out)
    if ctx.planned:
        _baseline(ctx, out)


def _possibly_affected(ctx: Context, out: Collector) -> None:
    """R-B3: typings by a method that needs an IAT phase, done inside an exposure window."""
    affected = sorted(
        {t.antigen for t in ctx.facts.typings if ctx.typing_problem(t) == "R-B3"}
    )
    if not affected:
        return
    out.flag(
        "PHENOTYPE_POSSIBLY_AFFECTED",
        ("R-B3",),
        f"Typing of {', '.join(affected)} was done after exposure with a method not accepted "
        "post-exposure; it may be drug-affected and cannot relax any requirement.",
    )
    out.fire(
        "R-B3",
        "Post-exposure typings not accepted.",
        antigens=affected,
        accepted_methods=list(ctx.profile.post_exposure_valid_typing_methods),
    )


def _baseline(ctx: Context, out: Collector) -> None:
    profile = ctx.profile
    missing: list[str] = []
    if not any(a.group for a in ctx.facts.abo):
        missing.append("ABO/RhD")
    if not any(s.method == "UNTREATED" for s in ctx.facts.screens):
        missing.append("antibody screen")
    untyped = ctx.untyped(profile.baseline_antigen_set)
    if untyped:
        missing.append("phenotype/genotype " + ",".join(untyped))
    agents = ", ".join(e.agent for e in ctx.planned)
    out.fire(
        "R-B1",
        f"Baseline check before first dose of {agents}.",
        agents=[e.agent for e in ctx.planned],
        missing=missing,
        antigen_set=list(profile.baseline_antigen_set),
        mode=profile.baseline_required,
    )
    if not missing:
        return
    hard = profile.baseline_required == "hard_stop"
    prefix = "Hard stop before the first dose" if hard else "Advisory"
    out.flag(
        "BASELINE_WORKUP_MISSING",
        ("R-B1",),
        f"{prefix}: no valid pre-treatment baseline for {agents} (missing: {'; '.join(missing)}).",
    )
    out.order(
        "BASELINE_WORKUP",
        ("R-B1",),
        "ABO/RhD, antibody screen and extended phenotype or genotype "
        f"({','.join(profile.baseline_antigen_set)}) before the first dose of {agents}.",
    )
    if untyped and ctx.recently_transfused():
        days = profile.serologic_phenotype_invalid_if_transfused_within_days
        out.order(
            "RBC_GENOTYPE",
            ("R-B2",),
            f"Transfused within {days} days: a serological phenotype would be unreliable "
            "(mixed field); genotype instead.",
        )
        out.fire("R-B2", "Recent transfusion: genotype requested.", days=days, antigens=untyped)
    elif untyped and profile.baseline_prefer_genotype:
        out.order(
            "RBC_GENOTYPE",
            ("R-B1",),
            "Laboratory prefers a genotype for the baseline extended red-cell profile.",
        )
