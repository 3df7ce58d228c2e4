"""Hypothesis properties over generated patient histories (default profile unless drawn)."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import Fact, PatientFacts, evaluate, load_protocol, profile_from_mapping

from .builders import (
    NEGATIVE,
    NOW,
    PANREACTIVE,
    abo,
    dose,
    ident,
    ife,
    isotype,
    mspike,
    ongoing,
    order,
    planned,
    screen,
    shift,
    transfused,
    typing,
)

AGENTS = ["daratumumab", "isatuximab", "felzartamab", "mezagitamab", "magrolimab", "elotuzumab"]
TYPING_METHODS = ["serology-direct", "serology-iat", "genotype"]
METHODS = ["UNTREATED", "DTT", "TCEP", "TRYPSIN", "CD38-NEUTRALIZATION"]
CELLS = st.sampled_from([PANREACTIVE, NEGATIVE, {"I": "2+", "II": "0", "III": "0"},
                         {"I": "3+", "II": "3+", "III": "3+"}])
DAYS = st.integers(min_value=1, max_value=500)  # day 0 is reserved for the facts under test

therapy = st.one_of(
    st.builds(lambda a, d, r: dose(a, d, route=r), st.sampled_from(AGENTS), DAYS,
              st.sampled_from(["IV", "SC"])),
    st.builds(lambda a, d: ongoing(a, d), st.sampled_from(AGENTS), DAYS),
    st.builds(lambda a, d: planned(a, d), st.sampled_from(AGENTS), DAYS),
)
lab_fact = st.one_of(
    st.builds(lambda d, c, m: screen(d, c, method=m), DAYS, CELLS, st.sampled_from(METHODS)),
    st.builds(lambda d, c: screen(d, c, phase="IS"), DAYS, CELLS),
    st.builds(lambda s, d, h, m: ident(s, days_ago=d, historical=h, method=m),
              st.sampled_from(["anti-E", "anti-K", "anti-Yta", "panreactive", "anti-Fya"]),
              DAYS, st.booleans(), st.sampled_from(METHODS)),
    st.builds(lambda a, p, d, m: typing(a, p, d, method=m), st.sampled_from(["K", "E", "c"]),
              st.booleans(), DAYS, st.sampled_from(TYPING_METHODS)),
    st.builds(transfused, DAYS),
    st.builds(lambda c, d: order(c, d), st.sampled_from(["RBC", "TYPE_AND_SCREEN", "IFE"]), DAYS),
    st.builds(lambda d: abo(days_ago=d), DAYS),
    st.builds(lambda g, d: mspike(g, d), st.sampled_from([0, 0.1, 0.25, 1.8]), DAYS),
    st.builds(lambda b, d: ife(*b, days_ago=d),
              st.sampled_from([(), ("IgG-kappa",), ("IgA-lambda", "IgG-kappa")]), DAYS),
    st.builds(lambda i: isotype(i), st.sampled_from(["IgG-kappa", "IgA-lambda", "kappa"])),
    st.builds(lambda a, v, d: shift(a, v, d),
              st.sampled_from(["HYDRASHIFT_DARATUMUMAB", "HYDRASHIFT_ISATUXIMAB"]),
              st.sampled_from(["SHIFTED_COMPLETE", "RESIDUAL_BAND"]), DAYS),
)
histories = st.lists(st.one_of(therapy, lab_fact), max_size=14)
profiles = st.fixed_dictionaries(
    {},
    optional={
        "dtt_available": st.booleans(),
        "crossmatch_mode_when_dtt_screen_negative": st.sampled_from(
            ["ELECTRONIC", "IMMEDIATE_SPIN", "AHG_DTT"]),
        "window_months": st.fixed_dictionaries({"daratumumab": st.sampled_from([3, 6, 12])}),
        "mass_spec": st.sampled_from(["in_house", "send_out", "none"]),
        "hydrashift_available": st.fixed_dictionaries(
            {"daratumumab": st.booleans(), "isatuximab": st.booleans()}),
        "extra_matching_policy": st.sampled_from(["none", "rh_k", "extended"]),
        "post_window_panreactive_action": st.sampled_from(["suggest_dtt", "irl_referral"]),
    },
)
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
PROTOCOL = load_protocol()


def decide(facts: list[Fact], profile: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    return evaluate(PROTOCOL, profile_from_mapping(profile or {}), PatientFacts(facts=tuple(facts)),
                    NOW)


@SETTINGS
@given(histories, profiles)
def test_emergency_release_is_never_blocked(facts: list[Fact], profile: dict[str, object]) -> None:
    decision = decide([*facts, order("EMERGENCY_RELEASE", priority="stat")], profile)
    assert "EMERGENCY_RELEASE" in {f.code for f in decision.flags}
    findings = decision.flags + decision.requirements + decision.reflex_orders + decision.comments
    assert not any(f.blocks_issue for f in findings)
    text = " ".join(f.explanation for f in findings).lower()
    assert "hold issue" not in text and "do not issue" not in text
    if decision.crossmatch is not None:
        assert "uncrossmatched" in decision.crossmatch.explanation
        assert "R-H1" in decision.crossmatch.rules


@SETTINGS
@given(histories, st.sampled_from(["DTT", "TCEP"]), st.booleans())
def test_k_rule_whenever_detection_relies_on_dtt_or_tcep(
    facts: list[Fact], method: str, k_on_file: bool
) -> None:
    # The latest screen is DTT/TCEP-treated; K typings are dropped so the patient is not validly
    # K+ unless a K-negative-only typing is added.
    kept = [f for f in facts if not (f.kind == "antigen_typing" and f.antigen == "K")]
    extra = [typing("K", False, 1, method="genotype")] if k_on_file else []
    decision = decide([*kept, *extra, screen(0, method=method)])
    assert "K_NEGATIVE_RBC" in {f.code for f in decision.requirements}


@SETTINGS
@given(histories, st.sampled_from(["DTT", "TCEP"]))
def test_valid_k_positive_relaxes_the_k_rule(facts: list[Fact], method: str) -> None:
    kept = [f for f in facts if f.kind != "antigen_typing"
            and not (f.kind == "antibody_identification" and "anti-K" in f.specificities)]
    decision = decide([*kept, typing("K", True, 1, method="genotype"), screen(0, method=method)])
    assert "K_NEGATIVE_RBC" not in {f.code for f in decision.requirements}


@SETTINGS
@given(histories, profiles)
def test_no_interference_label_without_anti_cd38_in_window(
    facts: list[Fact], profile: dict[str, object]
) -> None:
    kept = [f for f in facts if f.kind != "therapy" or f.agent in ("magrolimab", "elotuzumab")]
    decision = decide([*kept, screen(0, PANREACTIVE)], profile)
    assert "IAT_INTERFERENCE_SUSPECTED" not in {f.code for f in decision.flags}


@SETTINGS
@given(histories, profiles)
def test_hydrashift_only_for_drugs_received(facts: list[Fact], profile: dict[str, object]) -> None:
    decision = decide(facts, profile)
    given_agents = {
        f.agent for f in facts if f.kind == "therapy" and f.record != "planned"
        and f.effective <= NOW
    }
    reflexes = {f.code for f in decision.reflex_orders}
    if "daratumumab" not in given_agents:
        assert "HYDRASHIFT_DARATUMUMAB" not in reflexes
    if "isatuximab" not in given_agents:
        assert "HYDRASHIFT_ISATUXIMAB" not in reflexes


@SETTINGS
@given(histories, profiles, st.randoms(use_true_random=False))
def test_same_facts_same_decision_in_any_order(
    facts: list[Fact], profile: dict[str, object], rnd: random.Random
) -> None:
    first = decide(facts, profile)
    shuffled = list(facts)
    rnd.shuffle(shuffled)
    second = decide(shuffled, profile)
    assert first == second
    assert first.model_dump_json() == second.model_dump_json()


@SETTINGS
@given(histories, profiles)
def test_outputs_sorted_and_crossmatch_consistent(
    facts: list[Fact], profile: dict[str, object]
) -> None:
    decision = decide(facts, profile)
    for group in (decision.flags, decision.requirements, decision.reflex_orders, decision.comments):
        assert [f.code for f in group] == sorted(f.code for f in group)
        assert all(f.rules and f.explanation for f in group)
    requirements = {f.code for f in decision.requirements}
    if decision.crossmatch is not None:
        blocked = "ELECTRONIC_XM_BLOCKED" in requirements
        assert blocked is not decision.crossmatch.electronic_allowed
    flags = {f.code for f in decision.flags}
    if flags & {"ANTI_CD38_ACTIVE", "ANTI_CD47_ACTIVE", "IAT_INTERFERENCE_SUSPECTED",
                "PANREACTIVE_NO_KNOWN_THERAPY"}:
        assert decision.crossmatch is not None
    cited = {r for g in (decision.flags, decision.requirements, decision.reflex_orders,
                         decision.comments) for f in g for r in f.rules}
    assert cited <= set(decision.rules_fired)
