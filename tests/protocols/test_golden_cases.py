"""Every worked case of decision-cases.md: facts -> expected codes and rules (default profile
unless the case says otherwise)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from protocols import DirectAntiglobulin, Fact

from .builders import (
    PANREACTIVE,
    abo,
    at,
    codes,
    dose,
    ident,
    ife,
    isotype,
    mspike,
    ongoing,
    order,
    planned,
    requirement,
    run,
    screen,
    shift,
    typing,
)


@dataclass
class Case:
    facts: list[Fact]
    present: set[str]
    absent: set[str] = field(default_factory=set)
    rules: set[str] = field(default_factory=set)
    xm: tuple[str, bool] | str | None = "any"  # (mode, electronic_allowed), None, or "any"
    profile: dict[str, Any] | None = None
    active: tuple[Any, ...] = ()


DTT_NEG = screen(0, method="DTT")
CASES: dict[str, Case] = {
    "01-new-dara-order": Case(
        facts=[planned()],
        present={"BASELINE_WORKUP_MISSING", "BASELINE_WORKUP", "NOTIFY_BLOOD_BANK"},
        absent={"ANTI_CD38_ACTIVE", "DTT_TREATED_SCREEN", "K_NEGATIVE_RBC"},
        rules={"R-A1", "R-B1", "R-K2"},
        xm=None,
    ),
    "02-k-positive-dtt-negative": Case(
        facts=[ongoing(), typing("K", True, 400), DTT_NEG, order("RBC")],
        present={"ANTI_CD38_ACTIVE", "DTT_TREATED_SCREEN", "ANTIBODIES_NOT_EXCLUDED:DTT"},
        absent={"K_NEGATIVE_RBC", "ELECTRONIC_XM_BLOCKED", "RBC_GENOTYPE"},
        rules={"R-D3", "R-E1"},
        xm=("ELECTRONIC", True),
    ),
    "03-k-unknown-dtt-negative": Case(
        facts=[ongoing(), DTT_NEG],
        present={"K_NEGATIVE_RBC", "RBC_GENOTYPE"},
        absent={"ELECTRONIC_XM_BLOCKED"},
        rules={"R-D3", "R-E1", "R-B3"},
        xm=("ELECTRONIC", True),
    ),
    "07-panreactive-5-months-after-dose": Case(
        facts=[dose(days_ago=150), screen(0, PANREACTIVE)],
        present={"IAT_INTERFERENCE_SUSPECTED", "DTT_ANTIBODY_SCREEN", "ELECTRONIC_XM_BLOCKED"},
        absent={"PANREACTIVE_NO_KNOWN_THERAPY"},
        rules={"R-A2", "R-C1", "R-D1"},
        xm=("AHG_DTT", False),
    ),
    "08-window-expired-requirement-kept": Case(
        facts=[dose(days_ago=213), screen(0)],
        active=(requirement("K_NEGATIVE_RBC"),),
        present={"REQUIREMENT_REVIEW_DUE", "K_NEGATIVE_RBC"},
        absent={"ANTI_CD38_ACTIVE", "DTT_TREATED_SCREEN", "IAT_INTERFERENCE_SUSPECTED"},
        rules={"R-A2", "R-D4"},
        xm=None,
    ),
    "10-dara-sc-same-path": Case(
        facts=[dose(days_ago=90, route="SC", product="DARZALEX FASPRO")],
        present={"ANTI_CD38_ACTIVE", "DTT_TREATED_SCREEN", "K_NEGATIVE_RBC"},
        rules={"R-A3", "R-D1", "R-D3"},
        xm=("AHG_DTT", False),
    ),
    "11-isatuximab-panreactive": Case(
        facts=[ongoing("isatuximab"), screen(0, PANREACTIVE)],
        present={"IAT_INTERFERENCE_SUSPECTED", "DTT_ANTIBODY_SCREEN", "DTT_TREATED_SCREEN",
                 "K_NEGATIVE_RBC"},
        rules={"R-A2", "R-D1", "R-D3"},
    ),
    "13-panreactive-no-history": Case(
        facts=[
            screen(0, PANREACTIVE, auto_control="0"),
            DirectAntiglobulin(effective=at(0), positive=False),
        ],
        present={"PANREACTIVE_NO_KNOWN_THERAPY", "MEDICATION_RECONCILIATION",
                 "ELECTRONIC_XM_BLOCKED"},
        absent={"IAT_INTERFERENCE_SUSPECTED", "DTT_ANTIBODY_SCREEN", "ANTI_CD38_ACTIVE"},
        rules={"R-C2"},
        xm=("AHG", False),
    ),
    "15-dtt-panel-anti-e": Case(
        facts=[
            ongoing(),
            screen(1, {"I": "1+", "II": "0", "III": "0"}, method="DTT"),
            ident("anti-E", days_ago=0, method="DTT"),
        ],
        present={"ANTIGEN_NEGATIVE:E", "K_NEGATIVE_RBC", "AHG_XM_DTT_DONOR_CELLS",
                 "ELECTRONIC_XM_BLOCKED", "ANTIBODIES_NOT_EXCLUDED:DTT", "IRL_REFERRAL_OFFERED"},
        absent={"DTT_RESISTANT_PANREACTIVITY", "DTT_ANTIBODY_ID_PANEL"},
        rules={"R-F1", "R-E2", "R-D3"},
        xm=("AHG_DTT", False),
    ),
    "17-historical-anti-k": Case(
        facts=[ident("anti-K", days_ago=1000, historical=True), ongoing(), DTT_NEG],
        present={"K_NEGATIVE_RBC", "DTT_SENSITIVE_ANTIBODY_UNDETECTABLE",
                 "ELECTRONIC_XM_BLOCKED", "AHG_XM_DTT_DONOR_CELLS", "MEDICAL_DIRECTOR_ALERT"},
        absent={"ANTIGEN_NEGATIVE:K"},
        rules={"R-E2", "R-D2"},
        xm=("AHG_DTT", False),
    ),
    "20-massive-haemorrhage": Case(
        facts=[ongoing(), order("EMERGENCY_RELEASE", priority="stat")],
        present={"EMERGENCY_RELEASE", "RETROSPECTIVE_DTT_SCREEN", "EMERGENCY_PREFER_K_NEG"},
        rules={"R-H1"},
    ),
    "22-no-dtt-routine": Case(
        facts=[ongoing(), screen(0, PANREACTIVE), order("RBC")],
        profile={"dtt_available": False},
        present={"SCREEN_NOT_INTERPRETABLE", "IRL_REFERRAL", "NO_DTT_OPTIONS", "K_NEGATIVE_RBC"},
        absent={"DTT_TREATED_SCREEN", "DTT_ANTIBODY_SCREEN", "AHG_XM_DTT_DONOR_CELLS"},
        rules={"R-G1"},
        xm=("IMMEDIATE_SPIN", False),
    ),
    "22b-no-dtt-matched-units": Case(
        facts=[ongoing(), screen(0, PANREACTIVE), order("RBC")],
        profile={"dtt_available": False, "no_dtt_workflow": "matched_units"},
        present={"SCREEN_NOT_INTERPRETABLE", "EXTENDED_MATCH_RBC", "RBC_GENOTYPE"},
        absent={"IRL_REFERRAL"},
        rules={"R-G1"},
    ),
    "25-magrolimab": Case(
        facts=[
            ongoing("magrolimab"),
            abo(reverse_unexpected_reactions=True),
            screen(0, PANREACTIVE, phase="IS"),
            screen(0, PANREACTIVE),
        ],
        present={"ANTI_CD47_ACTIVE", "ABO_REVERSE_MAY_BE_INVALID", "IRL_REFERRAL",
                 "ELECTRONIC_XM_BLOCKED", "ANTI_CD47_WORKUP"},
        absent={"DTT_TREATED_SCREEN", "DTT_ANTIBODY_SCREEN", "IAT_INTERFERENCE_SUSPECTED",
                "PANREACTIVE_NO_KNOWN_THERAPY", "AHG_XM_DTT_DONOR_CELLS", "K_NEGATIVE_RBC"},
        rules={"R-I1", "R-C3"},
        xm=("AHG", False),
    ),
    "29-iga-lambda-new-igg-kappa-band": Case(
        facts=[
            isotype("IgA-lambda"),
            ife("IgA-lambda", days_ago=300),
            ongoing(),
            ife("IgA-lambda", "IgG-kappa"),
        ],
        present={"IFE_MAB_ACTIVE", "IFE_THERAPEUTIC_MAB_BAND", "PROBABLE_THERAPEUTIC_MAB_BAND"},
        absent={"HYDRASHIFT_DARATUMUMAB", "MASS_SPEC_MPROTEIN", "IFE_RESIDUAL_MPROTEIN"},
        rules={"R-J1", "R-J2"},
    ),
    "30-igg-kappa-low-spike": Case(
        facts=[isotype("IgG-kappa"), ongoing(), order("IFE", suspected_cr=True), mspike(0.10),
               ife("IgG-kappa")],
        present={"HYDRASHIFT_DARATUMUMAB"},
        absent={"HYDRASHIFT_ISATUXIMAB", "MASS_SPEC_MPROTEIN", "MSPIKE_MAB_CONTRIBUTION"},
        rules={"R-J3"},
    ),
    "31-complete-shift": Case(
        facts=[isotype("IgG-kappa"), ongoing(), mspike(0.10, 1), ife("IgG-kappa", days_ago=1),
               shift("HYDRASHIFT_DARATUMUMAB", "SHIFTED_COMPLETE")],
        present={"IFE_NO_ENDOGENOUS_MPROTEIN", "CR_CONFIRMATION_CANDIDATE"},
        absent={"HYDRASHIFT_DARATUMUMAB", "IFE_RESIDUAL_MPROTEIN"},
        rules={"R-J4"},
    ),
    "33-large-spike": Case(
        facts=[isotype("IgG-kappa"), ongoing(), mspike(1.8), ife("IgG-kappa")],
        present={"MSPIKE_MAB_CONTRIBUTION"},
        absent={"HYDRASHIFT_DARATUMUMAB", "MASS_SPEC_MPROTEIN"},
        rules={"R-J3", "R-J7"},
    ),
    "34-isatuximab-kit": Case(
        facts=[isotype("IgG-kappa"), ongoing("isatuximab"), mspike(0.08), ife("IgG-kappa")],
        present={"HYDRASHIFT_ISATUXIMAB"},
        absent={"HYDRASHIFT_DARATUMUMAB"},
        rules={"R-J3"},
    ),
    "36-no-kit-mass-spec": Case(
        facts=[isotype("IgG-kappa"), ongoing(), mspike(0.08), ife("IgG-kappa")],
        profile={"hydrashift_available": {"daratumumab": False}},
        present={"MASS_SPEC_MPROTEIN"},
        absent={"HYDRASHIFT_DARATUMUMAB", "IFE_INTERPRETATION_LIMITED"},
        rules={"R-J6"},
    ),
    "36b-no-kit-no-mass-spec": Case(
        facts=[isotype("IgG-kappa"), ongoing(), mspike(0.08), ife("IgG-kappa")],
        profile={"hydrashift_available": {"daratumumab": False}, "mass_spec": "none"},
        present={"IFE_INTERPRETATION_LIMITED"},
        absent={"HYDRASHIFT_DARATUMUMAB", "MASS_SPEC_MPROTEIN", "IFE_NO_ENDOGENOUS_MPROTEIN"},
        rules={"R-J6"},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_decision_case(name: str) -> None:
    case = CASES[name]
    decision = run(*case.facts, profile=case.profile, active=case.active)
    emitted = set().union(*codes(decision).values())
    assert case.present <= emitted, f"missing {case.present - emitted}"
    assert not (case.absent & emitted), f"unexpected {case.absent & emitted}"
    fired = set(decision.rules_fired)
    assert case.rules <= fired, f"rules not fired: {case.rules - fired}"
    if case.xm is None:
        assert decision.crossmatch is None
    elif case.xm != "any":
        assert decision.crossmatch is not None
        assert (decision.crossmatch.mode, decision.crossmatch.electronic_allowed) == case.xm


def test_case_02_report_comment_names_dtt_sensitive_systems() -> None:
    decision = run(*CASES["02-k-positive-dtt-negative"].facts)
    (comment,) = [c for c in decision.comments if c.code == "ANTIBODIES_NOT_EXCLUDED:DTT"]
    assert "KEL/YT/DO/LU/LW/JMH/KN/IN/CROM" in comment.explanation


def test_case_08_review_flag_names_the_requirement() -> None:
    case = CASES["08-window-expired-requirement-kept"]
    decision = run(*case.facts, active=case.active)
    (flag,) = [f for f in decision.flags if f.code == "REQUIREMENT_REVIEW_DUE"]
    assert flag.refs == ("K_NEGATIVE_RBC",)
    assert "K_NEGATIVE_RBC" in flag.explanation
    assert "negative standard screen on" in flag.explanation  # evidence for removal found


def test_case_10_sc_and_iv_take_the_same_path() -> None:
    iv = run(dose(days_ago=90, route="IV"))
    sc = run(dose(days_ago=90, route="SC", product="DARZALEX FASPRO"))
    assert codes(iv) == codes(sc)
    assert iv.crossmatch == sc.crossmatch


def test_case_20_emergency_issue_group_o_when_group_unknown() -> None:
    decision = run(*CASES["20-massive-haemorrhage"].facts)
    assert decision.crossmatch is not None
    assert "uncrossmatched group O" in decision.crossmatch.explanation
    assert not any(f.blocks_issue for f in decision.requirements + decision.flags)


def test_case_20_known_group_is_used() -> None:
    decision = run(abo("A NEG", 400), *CASES["20-massive-haemorrhage"].facts)
    (flag,) = [f for f in decision.flags if f.code == "EMERGENCY_RELEASE"]
    assert "ABO/RhD-compatible with A NEG" in flag.explanation


def test_case_31_never_assigns_cr() -> None:
    decision = run(*CASES["31-complete-shift"].facts)
    text = " ".join(f.explanation for f in decision.flags + decision.comments)
    assert "no automatic response assignment" in text
