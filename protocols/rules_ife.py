"""Rule group J: SPEP/IFE with therapeutic IgG-kappa antibodies (R-J1..R-J8).

Drug-specific shift assays are only ever ordered for drugs the patient actually received inside
the IFE window (R-J5); any drug without a usable kit sends the case to mass spectrometry (R-J6).
"""

from __future__ import annotations

from functools import lru_cache

from protocols.collector import Collector
from protocols.context import Context
from protocols.exposure import Exposure
from protocols.facts import Immunofixation, ShiftResult


@lru_cache(maxsize=256)  # pure; called per band on every evaluation with few distinct spellings
def norm_isotype(text: str) -> str:
    t = text.lower().replace("κ", "kappa").replace("λ", "lambda")
    t = "".join(ch for ch in t if ch.isalnum())
    if t.endswith("k") and not t.endswith("kappa"):
        t = t[:-1] + "kappa"
    elif t.endswith("l") and not t.endswith("lambda"):
        t = t[:-1] + "lambda"
    return t


def apply(ctx: Context, out: Collector) -> None:
    drugs = [e for e in ctx.exposures if e.ife_active]
    if not drugs:
        return
    names = ", ".join(e.agent for e in drugs)
    band_iso = ctx.protocol.ife.drug_band_isotype
    out.flag(
        "IFE_MAB_ACTIVE",
        ("R-J1",),
        f"{names} ({band_iso}) within the IFE window: a therapeutic-antibody band is expected ("
        + "; ".join(f"{e.agent}: {_band(ctx, e)}" for e in drugs)
        + ").",
    )
    facts = ctx.facts
    ife = facts.ifes[-1] if facts.ifes else None
    mspike = facts.mspikes[-1].g_dl if facts.mspikes else None
    out.fire("R-J1", "Therapeutic IgG-kappa band expected.", agents=[e.agent for e in drugs])
    if ife is None and mspike is None:
        return
    patient = norm_isotype(facts.isotypes[-1].isotype) if facts.isotypes else None
    drug_iso = norm_isotype(band_iso)
    has_band = ife is not None and drug_iso in {norm_isotype(b) for b in ife.bands}
    if patient is None:
        out.flag(
            "MPROTEIN_ISOTYPE_UNKNOWN",
            ("R-J2", "R-J3"),
            "The patient's own M-protein isotype is not recorded: drug band and endogenous "
            "IgG-kappa cannot be told apart without a shift assay.",
        )
    if ife is not None and _interpret_shifts(ctx, out, drugs, ife):
        return
    if patient is not None and patient != drug_iso:
        if has_band and ife is not None:
            _new_band(ctx, out, drugs, ife)
        return
    if has_band and ife is not None:
        _igg_kappa_patient(ctx, out, drugs, ife, mspike)


def _band(ctx: Context, exposure: Exposure) -> str:
    agent = ctx.protocol.agents.get(exposure.agent)
    return (agent.ife_band if agent else None) or "gamma region"


def _new_band(ctx: Context, out: Collector, drugs: list[Exposure], ife: Immunofixation) -> None:
    """R-J2: non-IgG-kappa patient with an IgG-kappa band that appeared after the first dose."""
    drug_iso = norm_isotype(ctx.protocol.ife.drug_band_isotype)
    first = min((e.first_dose for e in drugs if e.first_dose), default=None)
    before = [
        f for f in ctx.facts.ifes
        if first is not None and f.effective.date() < first
        and drug_iso in {norm_isotype(b) for b in f.bands}
    ]
    if before:
        out.comment(
            "IGG_KAPPA_BAND_PREDATES_THERAPY",
            ("R-J2",),
            "An IgG-kappa band was already present before therapy: not attributable to the drug.",
        )
        out.fire("R-J2", "IgG-kappa band predates therapy.", first_dose=first)
        return
    out.flag(
        "IFE_THERAPEUTIC_MAB_BAND",
        ("R-J1", "R-J2"),
        "New IgG-kappa band in a patient whose M-protein is not IgG-kappa: probable therapeutic "
        "antibody, not a new clone or progression.",
    )
    out.comment(
        "PROBABLE_THERAPEUTIC_MAB_BAND",
        ("R-J2",),
        "IgG-kappa band consistent with " + ", ".join(e.agent for e in drugs)
        + "; confirmation by drug-specific shift assay or mass spectrometry is optional.",
    )
    out.fire("R-J2", "New IgG-kappa band read as therapeutic antibody.", bands=list(ife.bands))
    if ctx.profile.auto_confirm_new_igg_kappa_band:
        _route(ctx, out, drugs, ("R-J2",), ["auto-confirm new IgG-kappa band"])


def _igg_kappa_patient(
    ctx: Context, out: Collector, drugs: list[Exposure], ife: Immunofixation, mspike: float | None
) -> None:
    """R-J3 reflex below the threshold / co-migrating / SPEP-negative; R-J7 above it."""
    threshold = ctx.profile.mspike_threshold_g_dl
    reasons: list[str] = []
    if mspike is not None and 0 < mspike <= threshold:
        reasons.append(f"M-spike {mspike:g} g/dL <= {threshold:g} g/dL")
    if mspike == 0 and ctx.profile.spep_negative_ife_positive_triggers_reflex:
        reasons.append("SPEP negative, IFE positive")
    if ife.comigrates_with_drug:
        reasons.append("band co-migrates with the drug")
    if mspike is None and any(o.suspected_cr for o in ctx.facts.orders if o.code == "IFE"):
        reasons.append("suspected CR, no SPEP quantitation")
    if reasons:
        _route(ctx, out, drugs, ("R-J3",), reasons)
    elif mspike is not None and mspike > threshold and ife.comigrates_with_drug is not False:
        contribution = ctx.protocol.ife.max_mab_contribution_g_dl
        out.flag(
            "MSPIKE_MAB_CONTRIBUTION",
            ("R-J7",),
            f"M-spike {mspike:g} g/dL > {threshold:g} g/dL: no shift assay needed; the drug may "
            f"add up to about {contribution:g} g/dL to the quantitation.",
        )
        out.fire("R-J7", "Quantitation note.", mspike=mspike, threshold=threshold)
    out.fire(
        "R-J3",
        "IgG-kappa routing evaluated.",
        mspike=mspike,
        threshold=threshold,
        reasons=reasons,
        comigrates=ife.comigrates_with_drug,
    )


def _route(
    ctx: Context, out: Collector, drugs: list[Exposure], rules: tuple[str, ...], why: list[str]
) -> None:
    """Pick drug-matched kits (R-J3/R-J5) or mass spectrometry / limited comment (R-J6)."""
    profile = ctx.profile
    kits: dict[str, str] = {}
    lacking: list[str] = []
    for exposure in drugs:
        known = ctx.protocol.agents.get(exposure.agent)
        kit = known.ife_kit if known else None
        if kit and profile.hydrashift_available.get(exposure.agent, False):
            kits[exposure.agent] = kit
        else:
            lacking.append(exposure.agent)
    both = ("R-J5",) if len(drugs) > 1 else ()
    reason = "; ".join(why)
    if not lacking:
        for agent, kit in sorted(kits.items()):
            out.order(kit, (*rules, *both), f"{reason}: shift assay matched to {agent}.")
    elif profile.mass_spec != "none":
        where = "in-house" if profile.mass_spec == "in_house" else "send-out"
        out.order(
            ctx.protocol.ife.fallback_reflex,
            (*rules, *both, "R-J6"),
            f"{reason}: no usable shift kit for {', '.join(lacking)}; mass spectrometry ({where}).",
        )
    else:
        for agent, kit in sorted(kits.items()):
            out.order(kit, (*rules, *both), f"{reason}: shift assay matched to {agent}.")
        out.flag("IFE_INTERPRETATION_LIMITED", ("R-J6",), ctx.protocol.ife.limited_comment)
    out.fire(
        "R-J8",
        "Reflex reasons recorded for response adjudication.",
        reasons=why,
        drugs=[e.agent for e in drugs],
        kits=sorted(kits.values()),
        lacking_kit=lacking,
        mass_spec=profile.mass_spec,
    )


def _interpret_shifts(
    ctx: Context, out: Collector, drugs: list[Exposure], ife: Immunofixation
) -> bool:
    """R-J4 / R-J5: read shift or MS results done on or after the latest IFE. True if concluded."""
    results = [s for s in ctx.facts.shifts if ctx.facts.time(s) >= ctx.facts.time(ife)]
    if not results:
        return False
    received = {e.agent for e in ctx.exposures if not e.planned}
    kit_agent = {a.ife_kit: name for name, a in ctx.protocol.agents.items() if a.ife_kit}
    residual: list[ShiftResult] = []
    cleared: set[str] = set()
    ms_clear = False
    for result in results:
        kit_for = kit_agent.get(result.assay)
        if kit_for is not None and kit_for not in received:
            out.comment(
                "KIT_DRUG_MISMATCH",
                ("R-J5",),
                f"{result.assay} used on a patient who did not receive {kit_for}: not read as "
                "persistent M-protein.",
            )
            continue
        if result.value in ("RESIDUAL_BAND", "DETECTED"):
            residual.append(result)
        elif result.value == "NOT_DETECTED":
            ms_clear = True
        elif result.value == "SHIFTED_COMPLETE" and kit_for is not None:
            cleared.add(kit_for)
    out.fire(
        "R-J4",
        "Shift / mass-spectrometry results interpreted (no automatic response assignment).",
        results=[f"{r.assay}={r.value}" for r in results],
    )
    if residual:
        out.flag(
            "IFE_RESIDUAL_MPROTEIN",
            ("R-J4",),
            "Residual IgG-kappa M-protein after drug-band shift: keep the VGPR/PR category and "
            "continue monitoring.",
        )
        return True
    if ms_clear or {e.agent for e in drugs} <= cleared:
        out.flag(
            "IFE_NO_ENDOGENOUS_MPROTEIN",
            ("R-J4",),
            "No endogenous M-protein detected by IFE after drug-band shift.",
        )
        out.comment(
            "CR_CONFIRMATION_CANDIDATE",
            ("R-J4",),
            "Candidate for CR confirmation (urine IFE, bone marrow, FLC per IMWG); no automatic "
            "response assignment.",
        )
        return True
    if cleared:
        pending = sorted({e.agent for e in drugs} - cleared)
        out.comment(
            "SHIFT_INCOMPLETE",
            ("R-J5",),
            f"Drug band shifted for {', '.join(sorted(cleared))}; {', '.join(pending)} not yet "
            "tested: no conclusion.",
        )
        _route(ctx, out, [e for e in drugs if e.agent in pending], ("R-J5",), ["other drug"])
        return True
    return False
