"""Rule group J: SPEP/IFE routing with therapeutic IgG-kappa antibodies."""

from __future__ import annotations

import pytest

from protocols import Decision

from .builders import (
    comments,
    dose,
    flags,
    ife,
    isotype,
    mspike,
    ongoing,
    planned,
    run,
    shift,
)
from .builders import reflex as all_reflex

IFE_REFLEX = {"HYDRASHIFT_DARATUMUMAB", "HYDRASHIFT_ISATUXIMAB", "MASS_SPEC_MPROTEIN"}


def reflex(decision: Decision) -> set[str]:
    """Only the M-protein reflexes (anti-CD38 patients also get blood-bank reflexes)."""
    return all_reflex(decision) & IFE_REFLEX

IGGK = isotype("IgG-kappa")


def test_r_j1_ife_window_is_separate_from_iat_window() -> None:
    profile = {"ife_window_months": 12, "window_months": {"daratumumab": 6}}
    decision = run(dose(days_ago=250), profile=profile)
    assert "IFE_MAB_ACTIVE" in flags(decision)
    assert "ANTI_CD38_ACTIVE" not in flags(decision)


def test_r_j1_elotuzumab_is_ife_only() -> None:
    decision = run(ongoing("elotuzumab"))
    assert "IFE_MAB_ACTIVE" in flags(decision)
    assert "ANTI_CD38_ACTIVE" not in flags(decision)
    assert decision.crossmatch is None


def test_r_j1_silent_for_planned_or_anti_cd47() -> None:
    assert "IFE_MAB_ACTIVE" not in flags(run(planned()))
    assert "IFE_MAB_ACTIVE" not in flags(run(ongoing("magrolimab")))


def test_r_j2_band_present_before_therapy_is_not_the_drug() -> None:
    decision = run(isotype("IgA-lambda"), ife("IgA-lambda", "IgG-kappa", days_ago=300),
                   ongoing(), ife("IgA-lambda", "IgG-kappa"))
    assert "IFE_THERAPEUTIC_MAB_BAND" not in flags(decision)
    assert "IGG_KAPPA_BAND_PREDATES_THERAPY" in comments(decision)


def test_r_j2_auto_confirm_orders_matching_kit() -> None:
    facts = [isotype("IgG-lambda"), ongoing(), ife("IgG-lambda", "IgG κ")]
    assert "HYDRASHIFT_DARATUMUMAB" not in reflex(run(*facts))
    decision = run(*facts, profile={"auto_confirm_new_igg_kappa_band": True})
    assert "HYDRASHIFT_DARATUMUMAB" in reflex(decision)


@pytest.mark.parametrize(
    ("threshold", "spike", "reflexed"), [(0.25, 0.2, True), (0.25, 0.3, False), (0.5, 0.3, True)]
)
def test_r_j3_threshold_from_profile(threshold: float, spike: float, reflexed: bool) -> None:
    decision = run(IGGK, ongoing(), mspike(spike), ife("IgG-kappa"),
                   profile={"mspike_threshold_g_dl": threshold})
    assert ("HYDRASHIFT_DARATUMUMAB" in reflex(decision)) is reflexed
    assert ("MSPIKE_MAB_CONTRIBUTION" in flags(decision)) is not reflexed


@pytest.mark.parametrize("triggers", [True, False])
def test_r_j3_spep_negative_ife_positive_configurable(triggers: bool) -> None:
    decision = run(IGGK, ongoing(), mspike(0), ife("IgG-kappa"),
                   profile={"spep_negative_ife_positive_triggers_reflex": triggers})
    assert ("HYDRASHIFT_DARATUMUMAB" in reflex(decision)) is triggers


def test_r_j3_comigration_above_threshold_reflexes() -> None:
    decision = run(IGGK, ongoing(), mspike(0.8), ife("IgG-kappa", comigrates_with_drug=True))
    assert "HYDRASHIFT_DARATUMUMAB" in reflex(decision)


def test_r_j3_silent_when_ife_negative() -> None:
    decision = run(IGGK, ongoing(), mspike(0), ife())
    assert not reflex(decision)


def test_r_j4_residual_band() -> None:
    decision = run(IGGK, ongoing(), mspike(0.1, 1), ife("IgG-kappa", days_ago=1),
                   shift("HYDRASHIFT_DARATUMUMAB", "RESIDUAL_BAND"))
    assert "IFE_RESIDUAL_MPROTEIN" in flags(decision)
    assert "IFE_NO_ENDOGENOUS_MPROTEIN" not in flags(decision)
    assert not reflex(decision)


def test_r_j4_mass_spec_not_detected() -> None:
    decision = run(IGGK, ongoing(), mspike(0.1, 1), ife("IgG-kappa", days_ago=1),
                   shift("MASS_SPEC_MPROTEIN", "NOT_DETECTED"))
    assert "IFE_NO_ENDOGENOUS_MPROTEIN" in flags(decision)


def test_r_j4_old_shift_before_new_ife_is_not_reused() -> None:
    decision = run(IGGK, ongoing(), shift("HYDRASHIFT_DARATUMUMAB", "SHIFTED_COMPLETE", 30),
                   mspike(0.1), ife("IgG-kappa"))
    assert "IFE_NO_ENDOGENOUS_MPROTEIN" not in flags(decision)
    assert "HYDRASHIFT_DARATUMUMAB" in reflex(decision)


def test_r_j5_both_drugs_both_kits() -> None:
    decision = run(IGGK, dose(days_ago=100), ongoing("isatuximab"), mspike(0.1), ife("IgG-kappa"))
    assert {"HYDRASHIFT_DARATUMUMAB", "HYDRASHIFT_ISATUXIMAB"} <= reflex(decision)
    assert "R-J5" in decision.rules_fired


def test_r_j5_both_drugs_one_kit_missing_goes_to_mass_spec() -> None:
    decision = run(IGGK, dose(days_ago=100), ongoing("isatuximab"), mspike(0.1), ife("IgG-kappa"),
                   profile={"hydrashift_available": {"isatuximab": False}})
    assert reflex(decision) == {"MASS_SPEC_MPROTEIN"}


def test_r_j5_one_drug_shifted_other_pending() -> None:
    decision = run(IGGK, dose(days_ago=100), ongoing("isatuximab"), mspike(0.1, 1),
                   ife("IgG-kappa", days_ago=1),
                   shift("HYDRASHIFT_DARATUMUMAB", "SHIFTED_COMPLETE"))
    assert "IFE_NO_ENDOGENOUS_MPROTEIN" not in flags(decision)
    assert reflex(decision) == {"HYDRASHIFT_ISATUXIMAB"}


def test_r_j5_wrong_kit_is_not_read_as_persistent_mprotein() -> None:
    decision = run(IGGK, ongoing("isatuximab"), mspike(0.1, 1), ife("IgG-kappa", days_ago=1),
                   shift("HYDRASHIFT_DARATUMUMAB", "RESIDUAL_BAND"))
    assert "IFE_RESIDUAL_MPROTEIN" not in flags(decision)
    assert "KIT_DRUG_MISMATCH" in comments(decision)
    assert reflex(decision) == {"HYDRASHIFT_ISATUXIMAB"}


@pytest.mark.parametrize("mass_spec", ["in_house", "send_out"])
def test_r_j6_elotuzumab_has_no_kit(mass_spec: str) -> None:
    decision = run(IGGK, ongoing("elotuzumab"), mspike(0.1), ife("IgG-kappa"),
                   profile={"mass_spec": mass_spec})
    assert reflex(decision) == {"MASS_SPEC_MPROTEIN"}


def test_r_j7_silent_when_band_does_not_comigrate() -> None:
    decision = run(IGGK, ongoing(), mspike(1.8), ife("IgG-kappa", comigrates_with_drug=False))
    assert "MSPIKE_MAB_CONTRIBUTION" not in flags(decision)


def test_r_j8_reflex_reasons_recorded() -> None:
    decision = run(IGGK, ongoing(), mspike(0.1), ife("IgG-kappa"))
    (audit,) = [f for f in decision.fired if f.rule == "R-J8"]
    assert audit.inputs["kits"] == ["HYDRASHIFT_DARATUMUMAB"]
    assert audit.inputs["reasons"]


def test_isotype_unknown_flag() -> None:
    decision = run(ongoing(), mspike(0.1), ife("IgG-kappa"))
    assert "MPROTEIN_ISOTYPE_UNKNOWN" in flags(decision)
    assert "HYDRASHIFT_DARATUMUMAB" in reflex(decision)
    assert "MPROTEIN_ISOTYPE_UNKNOWN" not in flags(run(IGGK, ongoing(), mspike(0.1), ife()))
