"""Rule groups A, B and K: windows, agents, baseline, typing validity, code matching."""

from __future__ import annotations

from datetime import date

import pytest

from protocols import (
    PatientFacts,
    Therapy,
    exposures,
    interference_summary,
    load_profile,
    load_protocol,
)

from .builders import (
    NOW,
    PANREACTIVE,
    at,
    dose,
    flags,
    full_baseline,
    ongoing,
    planned,
    reflex,
    reqs,
    run,
    screen,
    transfused,
    typing,
)


@pytest.mark.parametrize(
    ("days_ago", "window", "active"),
    [(150, 6, True), (200, 6, False), (200, 12, True), (350, 12, True), (380, 12, False)],
)
def test_r_a2_window_length_from_profile(days_ago: int, window: int, active: bool) -> None:
    decision = run(dose(days_ago=days_ago), profile={"window_months": {"daratumumab": window}})
    assert ("ANTI_CD38_ACTIVE" in flags(decision)) is active
    assert ("DTT_TREATED_SCREEN" in reqs(decision)) is active


def test_r_a2_window_ends_exactly_n_months_after_last_dose() -> None:
    records = exposures(
        load_protocol(),
        load_profile(None),
        PatientFacts(facts=(dose(days_ago=10),)),
        NOW,
    )
    assert records[0].interference_until == date(2026, 12, 5)
    assert records[0].active


def test_r_a2_ongoing_has_no_end_and_summary_reports_it() -> None:
    lab = load_profile(None)
    summary = interference_summary(load_protocol(), lab, PatientFacts(facts=(ongoing(),)), NOW)
    assert summary == (True, ("anti-CD38",), None)
    summary = interference_summary(
        load_protocol(), lab, PatientFacts(facts=(dose(days_ago=400),)), NOW
    )
    assert summary.active is False


def test_r_a1_planned_therapy_is_not_interfering() -> None:
    lab = load_profile(None)
    (record,) = exposures(load_protocol(), lab, PatientFacts(facts=(planned(),)), NOW)
    assert record.planned and not record.active
    assert "ANTI_CD38_ACTIVE" not in flags(run(planned()))


def test_r_a3_route_specific_window_override() -> None:
    profile = {"window_months": {"daratumumab_sc": 12}}
    assert "ANTI_CD38_ACTIVE" in flags(run(dose(days_ago=250, route="SC"), profile=profile))
    assert "ANTI_CD38_ACTIVE" not in flags(run(dose(days_ago=250, route="IV"), profile=profile))


@pytest.mark.parametrize("agent", ["felzartamab", "mezagitamab", "new-anti-cd38-x"])
def test_r_a4_unknown_agents_handled_as_anti_cd38(agent: str) -> None:
    decision = run(ongoing(agent))
    assert "ANTI_CD38_ACTIVE" in flags(decision)
    assert "R-A4" in decision.rules_fired


def test_r_a4_director_override_to_none_silences_agent() -> None:
    decision = run(ongoing("mezagitamab"), screen(0, PANREACTIVE),
                   profile={"agent_profiles": {"mezagitamab": "none"}})
    assert "ANTI_CD38_ACTIVE" not in flags(decision)
    assert "PANREACTIVE_NO_KNOWN_THERAPY" in flags(decision)


@pytest.mark.parametrize(
    "reference",
    ["http://www.whocc.no/atc|L01FC01", "WC|L01FC01", "ATC|L01FC01", "LF|daratumumab",
     "http://labflow.example.org/fhir/CodeSystem/labflow|daratumumab", "Darzalex"],
)
def test_r_k3_drug_codes_resolve_to_agent(reference: str) -> None:
    decision = run(Therapy(effective=at(10), agent=reference, ongoing=True))
    assert "ANTI_CD38_ACTIVE" in flags(decision)
    assert "R-K3" in decision.rules_fired


def test_r_k3_local_code_from_profile() -> None:
    from protocols import profile_from_mapping

    facts = PatientFacts(facts=(Therapy(effective=at(10), agent="L|DARA", ongoing=True),))
    unmapped = exposures(load_protocol(), profile_from_mapping({}), facts, NOW)
    assert unmapped[0].agent == "l|dara"  # unknown agent: R-A4 default handling
    assert unmapped[0].evidence == "unknown"
    lab = profile_from_mapping({"local_codes": {"L|DARA": "daratumumab"}})
    (mapped,) = exposures(load_protocol(), lab, facts, NOW)
    assert mapped.agent == "daratumumab"
    assert mapped.evidence == "known-to-interfere"


def test_drug_codes_cover_every_system_spelling() -> None:
    table = load_protocol().drug_codes()
    assert table["http://www.whocc.no/atc|L01FC02"] == "isatuximab"
    assert table["WC|L01FC02"] == table["ATC|L01FC02"] == "isatuximab"
    assert table["LF|magrolimab"] == "magrolimab"


def test_r_b1_valid_baseline_silences_workup() -> None:
    decision = run(*full_baseline(), planned())
    assert "BASELINE_WORKUP_MISSING" not in flags(decision)
    assert "BASELINE_WORKUP" not in reflex(decision)


def test_r_b1_partial_baseline_names_missing_antigens() -> None:
    decision = run(*full_baseline()[:-1], planned())  # drops the last antigen (s)
    (flag,) = [f for f in decision.flags if f.code == "BASELINE_WORKUP_MISSING"]
    assert "phenotype/genotype s" in flag.explanation


def test_r_b1_hard_stop_wording() -> None:
    decision = run(planned(), profile={"baseline_required": "hard_stop"})
    (flag,) = [f for f in decision.flags if f.code == "BASELINE_WORKUP_MISSING"]
    assert flag.explanation.startswith("Hard stop")


def test_r_b1_applies_to_anti_cd47_too() -> None:
    assert "BASELINE_WORKUP" in reflex(run(planned("magrolimab")))
    assert "BASELINE_WORKUP" not in reflex(run(planned("elotuzumab")))


def test_r_b2_recent_transfusion_invalidates_serology_and_requests_genotype() -> None:
    facts = [*full_baseline(days_ago=20), transfused(30), planned()]
    decision = run(*facts)
    assert "BASELINE_WORKUP_MISSING" in flags(decision)
    assert "RBC_GENOTYPE" in reflex(decision)
    assert "R-B2" in decision.rules_fired


def test_r_b2_window_length_is_configurable() -> None:
    facts = [*full_baseline(days_ago=20), transfused(30), planned()]
    profile = {"serologic_phenotype_invalid_if_transfused_within_days": 5}
    assert "BASELINE_WORKUP_MISSING" not in flags(run(*facts, profile=profile))


def test_r_b2_genotype_is_valid_despite_transfusion() -> None:
    decision = run(ongoing(), transfused(10), typing("K", True, 5, method="genotype"),
                   screen(0, method="DTT"))
    assert "K_NEGATIVE_RBC" not in reqs(decision)


def test_r_b3_post_exposure_iat_typing_is_flagged_and_cannot_relax_k_rule() -> None:
    decision = run(ongoing(), typing("K", True, 5, method="serology-iat"), screen(0, method="DTT"))
    assert "PHENOTYPE_POSSIBLY_AFFECTED" in flags(decision)
    assert "K_NEGATIVE_RBC" in reqs(decision)
    assert "RBC_GENOTYPE" in reflex(decision)


def test_r_b3_direct_agglutination_after_exposure_is_accepted() -> None:
    decision = run(ongoing(), typing("K", True, 5), screen(0, method="DTT"))
    assert "PHENOTYPE_POSSIBLY_AFFECTED" not in flags(decision)
    assert "K_NEGATIVE_RBC" not in reqs(decision)


def test_r_b3_accepted_methods_configurable() -> None:
    profile = {"post_exposure_valid_typing_methods": ["genotype"]}
    decision = run(ongoing(), typing("K", True, 5), screen(0, method="DTT"), profile=profile)
    assert "PHENOTYPE_POSSIBLY_AFFECTED" in flags(decision)
    assert "K_NEGATIVE_RBC" in reqs(decision)


def test_r_b3_pre_exposure_iat_typing_is_fine() -> None:
    decision = run(ongoing(started_days_ago=60), typing("K", True, 100, method="serology-iat"))
    assert "PHENOTYPE_POSSIBLY_AFFECTED" not in flags(decision)


def test_r_k2_notify_only_on_first_order() -> None:
    assert "NOTIFY_BLOOD_BANK" in {c.code for c in run(planned()).comments}
    assert "NOTIFY_BLOOD_BANK" not in {c.code for c in run(ongoing(), planned()).comments}


def test_facts_after_as_of_are_ignored() -> None:
    decision = run(dose(days_ago=-5))  # a dose recorded for the future
    assert "ANTI_CD38_ACTIVE" not in flags(decision)
    assert decision.fired == ()
