"""Rule groups C to I: IAT interpretation, DTT/Kell, crossmatch, DTT-positive, no DTT,
emergency, anti-CD47."""

from __future__ import annotations

import pytest

from .builders import (
    NEGATIVE,
    PANREACTIVE,
    abo,
    comments,
    dose,
    flags,
    full_baseline,
    ident,
    ongoing,
    order,
    reflex,
    reqs,
    requirement,
    run,
    screen,
    typing,
)


def test_r_c1_silent_when_screen_not_panreactive() -> None:
    decision = run(ongoing(), screen(0, {"I": "1+", "II": "0", "III": "0"}))
    assert "IAT_INTERFERENCE_SUSPECTED" not in flags(decision)


def test_r_c1_silent_when_is_rt_phase_reactive() -> None:
    decision = run(ongoing(), screen(0, PANREACTIVE, phase="IS"), screen(0, PANREACTIVE))
    assert "IAT_INTERFERENCE_SUSPECTED" not in flags(decision)
    assert "IS_RT_REACTIVITY_UNEXPLAINED" in comments(decision)


def test_r_c1_no_reflex_when_dtt_screen_already_done_after() -> None:
    decision = run(ongoing(), screen(1, PANREACTIVE), screen(0, method="DTT"))
    assert "IAT_INTERFERENCE_SUSPECTED" in flags(decision)
    assert "DTT_ANTIBODY_SCREEN" not in reflex(decision)


def test_r_c1_strong_reactivity_warning_threshold() -> None:
    strong = {"I": "3+", "II": "3+", "III": "3+"}
    assert "STRONG_IAT_REACTIVITY" in comments(run(ongoing(), screen(0, strong)))
    assert "STRONG_IAT_REACTIVITY" not in comments(run(ongoing(), screen(0, PANREACTIVE)))
    decision = run(ongoing(), screen(0, PANREACTIVE), profile={"iat_strength_warning_grade": 1})
    assert "STRONG_IAT_REACTIVITY" in comments(decision)


def test_r_c1_panreactive_before_first_dose_is_not_drug() -> None:
    decision = run(screen(100, PANREACTIVE), ongoing(started_days_ago=60))
    assert "IAT_INTERFERENCE_SUSPECTED" not in flags(decision)
    assert "PANREACTIVE_NO_KNOWN_THERAPY" in flags(decision)


@pytest.mark.parametrize(
    ("action", "expect_reflex", "expect_irl"),
    [("suggest_dtt", True, False), ("irl_referral", False, True)],
)
def test_r_c2_post_window_action(action: str, expect_reflex: bool, expect_irl: bool) -> None:
    decision = run(dose(days_ago=300), screen(0, PANREACTIVE),
                   profile={"post_window_panreactive_action": action})
    assert "PANREACTIVE_NO_KNOWN_THERAPY" in flags(decision)
    assert "IAT_INTERFERENCE_SUSPECTED" not in flags(decision)
    assert ("DTT_ANTIBODY_SCREEN" in reflex(decision)) is expect_reflex
    assert ("IRL_REFERRAL" in reqs(decision)) is expect_irl
    assert decision.crossmatch is not None and not decision.crossmatch.electronic_allowed


def test_r_c3_abo_flag_only_for_anti_cd47() -> None:
    assert "ABO_REVERSE_MAY_BE_INVALID" in flags(run(ongoing("magrolimab")))
    assert "ABO_REVERSE_MAY_BE_INVALID" not in flags(run(ongoing(), abo()))


def test_r_c4_carryover_optional() -> None:
    facts = [ongoing(), screen(0, PANREACTIVE, analyser="IH-1000")]
    assert "ANALYSER_CARRYOVER_RISK" not in comments(run(*facts))
    decision = run(*facts, profile={"analyser_carryover_warning": True})
    assert "ANALYSER_CARRYOVER_RISK" in comments(decision)
    other = run(ongoing(), screen(0, PANREACTIVE, analyser="Other"),
                profile={"analyser_carryover_warning": True})
    assert "ANALYSER_CARRYOVER_RISK" not in comments(other)


def test_r_d1_transfusion_order_without_current_dtt_screen_reflexes() -> None:
    assert "DTT_ANTIBODY_SCREEN" in reflex(run(ongoing(), order("RBC")))
    fresh = run(ongoing(), screen(1, method="DTT"), order("RBC"))
    assert "DTT_ANTIBODY_SCREEN" not in reflex(fresh)
    stale = run(ongoing(), screen(10, method="DTT"), order("RBC"))
    assert "DTT_ANTIBODY_SCREEN" in reflex(stale)


@pytest.mark.parametrize(
    ("method", "k_rule"),
    [("DTT", True), ("TCEP", True), ("TRYPSIN", False), ("CD38-NEUTRALIZATION", False)],
)
def test_r_g2_k_rule_is_method_aware(method: str, k_rule: bool) -> None:
    # Window over, so only the method of the screen in use drives the K rule.
    decision = run(dose(days_ago=100), screen(0, method=method),
                   profile={"window_months": {"daratumumab": 1}})
    assert ("K_NEGATIVE_RBC" in reqs(decision)) is k_rule


def test_r_g2_k_rule_methods_configurable() -> None:
    decision = run(dose(days_ago=100), screen(0, method="TRYPSIN"),
                   profile={"window_months": {"daratumumab": 1},
                            "k_rule_methods": ["DTT", "TCEP", "TRYPSIN"]})
    assert "K_NEGATIVE_RBC" in reqs(decision)


def test_r_g2_comment_lists_method_antigens() -> None:
    decision = run(ongoing(), screen(0, method="TCEP"))
    (comment,) = [c for c in decision.comments if c.code == "ANTIBODIES_NOT_EXCLUDED:TCEP"]
    assert "KEL" in comment.explanation and "YT" not in comment.explanation


def test_r_d2_dtt_table_editable() -> None:
    decision = run(ongoing(), screen(0, method="DTT"), ident("anti-Yta", historical=True),
                   profile={"dtt_sensitive_antigens": ["K", "k"]})
    assert "DTT_SENSITIVE_ANTIBODY_UNDETECTABLE" not in flags(decision)
    default = run(ongoing(), screen(0, method="DTT"), ident("anti-Yta", historical=True))
    assert "DTT_SENSITIVE_ANTIBODY_UNDETECTABLE" in flags(default)


def test_r_d3_silent_without_dtt_and_without_exposure() -> None:
    assert "K_NEGATIVE_RBC" not in reqs(run(screen(0)))


def test_r_d4_supported_requirement_raises_no_review() -> None:
    decision = run(ongoing(), screen(0, method="DTT"), active=(requirement("K_NEGATIVE_RBC"),))
    assert "REQUIREMENT_REVIEW_DUE" not in flags(decision)


def test_r_d4_k_positive_typing_makes_requirement_reviewable_but_kept() -> None:
    decision = run(ongoing(), screen(0, method="DTT"), typing("K", True, 1, method="genotype"),
                   active=(requirement("K_NEGATIVE_RBC"), requirement("IRRADIATED")))
    assert "K_NEGATIVE_RBC" in reqs(decision)
    assert "IRRADIATED" not in reqs(decision)  # not ours: left alone
    (flag,) = [f for f in decision.flags if f.code == "REQUIREMENT_REVIEW_DUE"]
    assert flag.refs == ("K_NEGATIVE_RBC",)


@pytest.mark.parametrize(
    ("policy", "antigens_needed"), [("rh_k", 5), ("extended", 11)]
)
def test_r_d5_matching_policy(policy: str, antigens_needed: int) -> None:
    with_profile = run(*full_baseline(), ongoing(), profile={"extra_matching_policy": policy})
    assert "EXTENDED_MATCH_RBC" in reqs(with_profile)
    without = run(ongoing(), profile={"extra_matching_policy": policy})
    assert "EXTENDED_MATCH_RBC" not in reqs(without)
    assert "RBC_GENOTYPE" in reflex(without)
    assert "EXTENDED_MATCH_RBC" not in reqs(run(*full_baseline(), ongoing()))
    assert antigens_needed in (5, 11)


@pytest.mark.parametrize(
    ("mode", "electronic"),
    [("ELECTRONIC", True), ("IMMEDIATE_SPIN", False), ("AHG_DTT", False)],
)
def test_r_e1_configured_crossmatch_mode(mode: str, electronic: bool) -> None:
    decision = run(ongoing(), screen(0, method="DTT"),
                   profile={"crossmatch_mode_when_dtt_screen_negative": mode})
    assert decision.crossmatch is not None
    assert decision.crossmatch.mode == mode
    assert decision.crossmatch.electronic_allowed is electronic
    assert ("ELECTRONIC_XM_BLOCKED" in reqs(decision)) is not electronic
    assert ("AHG_XM_DTT_DONOR_CELLS" in reqs(decision)) is (mode == "AHG_DTT")


def test_r_e2_current_antibody_blocks_electronic_and_requires_antigen_negative() -> None:
    decision = run(ongoing(), screen(0, method="DTT"), ident("anti-Fya", historical=True))
    assert {"ANTIGEN_NEGATIVE:Fya", "ELECTRONIC_XM_BLOCKED", "AHG_XM_DTT_DONOR_CELLS"} <= reqs(
        decision
    )
    assert "DTT_SENSITIVE_ANTIBODY_UNDETECTABLE" not in flags(decision)


def test_r_e2_insignificant_specificity_ignored() -> None:
    decision = run(ongoing(), screen(0, method="DTT"), ident("anti-Lea", historical=True))
    assert "ANTIGEN_NEGATIVE:Lea" not in reqs(decision)
    assert decision.crossmatch is not None and decision.crossmatch.electronic_allowed


def test_r_f1_positive_dtt_screen_without_panel_orders_panel() -> None:
    decision = run(ongoing(), screen(0, {"I": "2+", "II": "0", "III": "0"}, method="DTT"))
    assert "DTT_ANTIBODY_ID_PANEL" in reflex(decision)
    assert decision.crossmatch is not None and not decision.crossmatch.electronic_allowed


def test_r_f2_dtt_panel_still_panreactive() -> None:
    decision = run(ongoing(), screen(1, PANREACTIVE, method="DTT"),
                   ident("panreactive", method="DTT"))
    assert "DTT_RESISTANT_PANREACTIVITY" in flags(decision)
    assert {"IRL_REFERRAL", "ELECTRONIC_XM_BLOCKED"} <= reqs(decision)
    assert any(f.blocks_issue for f in decision.requirements)


def test_r_g1_negative_untreated_screen_in_window_is_interpretable() -> None:
    decision = run(ongoing(), screen(0, NEGATIVE), profile={"dtt_available": False})
    assert "SCREEN_NOT_INTERPRETABLE" not in flags(decision)
    assert "NO_DTT_OPTIONS" in comments(decision)


def test_r_g1_silent_when_dtt_available() -> None:
    decision = run(ongoing(), screen(0, PANREACTIVE))
    assert "SCREEN_NOT_INTERPRETABLE" not in flags(decision)
    assert "NO_DTT_OPTIONS" not in comments(decision)


def test_r_h1_no_retrospective_screen_without_anti_cd38() -> None:
    decision = run(order("EMERGENCY_RELEASE"))
    assert "EMERGENCY_RELEASE" in flags(decision)
    assert "RETROSPECTIVE_DTT_SCREEN" not in reflex(decision)


def test_r_h1_retrospective_screen_done_is_not_reordered() -> None:
    decision = run(ongoing(), order("EMERGENCY_RELEASE", days_ago=1), screen(0, method="DTT"))
    assert "RETROSPECTIVE_DTT_SCREEN" not in reflex(decision)


def test_r_h1_old_emergency_is_no_longer_current() -> None:
    assert "EMERGENCY_RELEASE" not in flags(run(ongoing(), order("EMERGENCY_RELEASE", 30)))


def test_r_h1_k_neg_preference_configurable() -> None:
    facts = [ongoing(), order("EMERGENCY_RELEASE")]
    assert "EMERGENCY_PREFER_K_NEG" in comments(run(*facts))
    assert "EMERGENCY_PREFER_K_NEG" not in comments(
        run(*facts, profile={"emergency_prefer_k_neg": False})
    )


def test_r_h1_anti_cd47_emergency_uses_group_o_even_with_group_on_file() -> None:
    decision = run(abo("A POS", 100), ongoing("magrolimab"), order("EMERGENCY_RELEASE"))
    (flag,) = [f for f in decision.flags if f.code == "EMERGENCY_RELEASE"]
    assert "group O" in flag.explanation


def test_r_i1_silent_for_anti_cd38() -> None:
    decision = run(ongoing(), screen(0, PANREACTIVE))
    assert "ANTI_CD47_WORKUP" not in comments(decision)
    assert "IRL_REFERRAL" not in reqs(decision)
