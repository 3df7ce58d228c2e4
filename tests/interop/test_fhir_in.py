"""FHIR R4 inbound: every concept of the default terminology map, and every bad-input class."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from labflow.interop.fhir_in import map_fhir
from labflow.interop.model import CodeMaps, MappingError
from protocols.facts import (
    AboRh,
    AntibodyIdentification,
    AntibodyScreen,
    AntigenTyping,
    DirectAntiglobulin,
    Immunofixation,
    MProteinIsotype,
    MSpike,
    Order,
    ShiftResult,
    Therapy,
    Transfusion,
)

from .conftest import fhir_bytes, fhir_dict

NO_CODES = CodeMaps()
LF = "http://labflow.example.org/fhir/CodeSystem/labflow"


def _map(data: dict[str, Any], codes: CodeMaps = NO_CODES):
    return map_fhir(json.dumps(data).encode(), codes)


def _errors(data: dict[str, Any] | bytes, codes: CodeMaps = NO_CODES) -> str:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    with pytest.raises(MappingError) as info:
        map_fhir(body, codes)
    return "\n".join(info.value.errors)


def _entry(bundle: dict[str, Any], rid: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"].get("id") == rid)


# -- therapy -------------------------------------------------------------------------------


def test_medication_administration_is_a_dose_given_on_its_clinical_date() -> None:
    msg = map_fhir(fhir_bytes("medication_administration.json"), NO_CODES)
    assert msg.mrn == "MRN123"  # from the contained Patient's MR identifier
    (fact,) = msg.facts
    assert isinstance(fact, Therapy)
    assert (fact.agent, fact.route, fact.record) == ("daratumumab", "SC", "administered")
    assert fact.first_dose == fact.last_dose == date(2026, 1, 5)
    assert fact.effective == datetime(2026, 1, 5, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert msg.clinical_time == fact.effective


def test_medication_administration_not_done_is_not_a_dose() -> None:
    data = fhir_dict("medication_administration.json")
    data["status"] = "not-done"
    assert "skipped (status not-done)" in _errors(data)


def test_medication_request_is_planned_therapy() -> None:
    msg = map_fhir(fhir_bytes("medication_request.json"), NO_CODES)
    (fact,) = msg.facts
    assert isinstance(fact, Therapy)
    assert (fact.agent, fact.route, fact.record) == ("isatuximab", "IV", "planned")
    assert fact.first_dose == date(2026, 6, 8)
    assert fact.effective == datetime(2026, 6, 1, 8, 55, tzinfo=UTC)  # authoredOn


def test_medication_statements_are_history_with_ongoing_and_last_dose() -> None:
    msg = map_fhir(fhir_bytes("medication_statement_bundle.json"), NO_CODES)
    assert msg.control_id == "HIE-2026-0001"
    old, current = msg.facts
    assert isinstance(old, Therapy) and isinstance(current, Therapy)
    assert (old.agent, old.record, old.ongoing) == ("daratumumab", "history", False)
    assert (old.first_dose, old.last_dose) == (date(2024, 3, 1), date(2025, 2, 15))
    assert (current.agent, current.ongoing, current.last_dose) == ("isatuximab", True, None)
    assert current.route == "IV"


def test_drug_codes_map_a_hospital_formulary_code() -> None:
    data = fhir_dict("medication_administration.json")
    data["medicationCodeableConcept"] = {
        "coding": [{"system": "urn:hosp:formulary", "code": "F-7781"}]}
    codes = CodeMaps(drug_codes={"urn:hosp:formulary|F-7781": "felzartamab"})
    (fact,) = _map(data, codes).facts
    assert isinstance(fact, Therapy) and fact.agent == "felzartamab"


def test_unknown_drug_names_the_code() -> None:
    data = fhir_dict("medication_administration.json")
    data["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.whocc.no/atc", "code": "N02BE01"}]}
    assert "unknown drug code 'http://www.whocc.no/atc|N02BE01'" in _errors(data)


def test_unknown_route_names_the_code() -> None:
    data = fhir_dict("medication_administration.json")
    data["dosage"]["route"]["coding"][0]["code"] = "26643006"  # oral
    assert "unknown route code 'http://snomed.info/sct|26643006'" in _errors(data)


# -- blood bank results ----------------------------------------------------------------------


def test_antibody_screen_with_cells_phase_and_dtt_method() -> None:
    msg = map_fhir(fhir_bytes("antibody_screen_message.json"), NO_CODES)
    assert (msg.mrn, msg.control_id, msg.sender) == ("MRN123", "MSG-20260302-0451", "LIS")
    assert msg.message_type == "Bundle/message"
    (screen,) = msg.facts
    assert isinstance(screen, AntibodyScreen)
    assert screen.interpretation == "positive"
    assert screen.cells == {"I": "0", "II": "w+", "III": "2+"}
    assert (screen.auto_control, screen.phase, screen.method) == ("0", "IAT", "DTT")
    assert screen.source_ref == "ACC20260302-17"
    # effectiveDateTime wins over issued
    assert screen.effective == datetime(2026, 3, 2, 8, 45, tzinfo=UTC)


def test_antibody_screen_negative_without_method_is_untreated() -> None:
    data = fhir_dict("antibody_screen_message.json")
    obs = _entry(data, "screen-1")
    obs["valueCodeableConcept"]["coding"][0]["code"] = "260385009"
    del obs["method"]
    (screen,) = _map(data).facts
    assert isinstance(screen, AntibodyScreen)
    assert (screen.interpretation, screen.method) == ("negative", "UNTREATED")


def test_serology_results_map_to_their_facts() -> None:
    msg = map_fhir(fhir_bytes("serology_transaction.json"), NO_CODES)
    abo, dat, ag_k, ag_e, abid, hist = msg.facts
    assert isinstance(abo, AboRh) and abo.group == "O POS"
    assert abo.reverse_unexpected_reactions is True
    assert isinstance(dat, DirectAntiglobulin) and dat.positive is False
    assert isinstance(ag_k, AntigenTyping)
    assert (ag_k.antigen, ag_k.positive, ag_k.method) == ("K", False, "genotype")
    assert isinstance(ag_e, AntigenTyping)
    assert (ag_e.antigen, ag_e.positive, ag_e.method) == ("E", True, "serology-iat")
    assert isinstance(abid, AntibodyIdentification)
    assert (abid.specificities, abid.method, abid.historical) == (("anti-E", "anti-Jka"),
                                                                  "DTT", False)
    assert isinstance(hist, AntibodyIdentification)
    assert hist.historical and hist.specificities == ("anti-K",)
    # a date-only effectiveDateTime is midnight in the lab's zone
    assert hist.effective == datetime(2019, 5, 5, tzinfo=UTC)


def test_antigen_typing_with_a_typing_method_on_a_screen_is_rejected() -> None:
    data = fhir_dict("antibody_screen_message.json")
    _entry(data, "screen-1")["method"]["coding"][0]["code"] = "genotype"
    assert "not a cell/plasma treatment" in _errors(data)


def test_transfusion_procedure() -> None:
    (fact,) = map_fhir(fhir_bytes("transfusion_procedure.json"), NO_CODES).facts
    assert isinstance(fact, Transfusion)
    assert fact.effective == datetime(2026, 2, 10, 13, 0, tzinfo=UTC)


# -- M-protein ---------------------------------------------------------------------------------


def test_mprotein_results() -> None:
    facts = map_fhir(fhir_bytes("mprotein_collection.json"), NO_CODES).facts
    mspike, ife, ife_neg, iso, hs_dara, hs_isa, ms = facts
    assert isinstance(mspike, MSpike) and mspike.g_dl == pytest.approx(0.18)  # 1.8 g/L
    assert isinstance(ife, Immunofixation) and ife.bands == ("IgG-kappa", "kappa")
    assert isinstance(ife_neg, Immunofixation) and ife_neg.bands == ()
    assert isinstance(iso, MProteinIsotype) and iso.isotype == "IgA-lambda"
    assert isinstance(hs_dara, ShiftResult)
    assert (hs_dara.assay, hs_dara.value) == ("HYDRASHIFT_DARATUMUMAB", "RESIDUAL_BAND")
    assert hs_dara.effective == datetime(2026, 4, 15, 11, 0, tzinfo=UTC)  # from issued
    assert isinstance(hs_isa, ShiftResult) and hs_isa.value == "SHIFTED_COMPLETE"
    assert isinstance(ms, ShiftResult) and (ms.assay, ms.value) == ("MASS_SPEC_MPROTEIN",
                                                                    "DETECTED")


@pytest.mark.parametrize(("value", "unit", "g_dl"), [(0.4, "g/dL", 0.4), (4, "g/L", 0.4),
                                                      (400, "mg/dL", 0.4)])
def test_mspike_units_convert_to_g_dl(value: float, unit: str, g_dl: float) -> None:
    data = fhir_dict("mprotein_collection.json")
    _entry(data, "mspike")["valueQuantity"] = {"value": value, "unit": unit}
    assert _map(data).facts[0] == MSpike(effective=datetime(2026, 4, 15, 10, tzinfo=UTC),
                                         source_ref="Observation/mspike", g_dl=g_dl)


def test_mspike_in_unknown_unit_is_rejected() -> None:
    data = fhir_dict("mprotein_collection.json")
    _entry(data, "mspike")["valueQuantity"] = {"value": 5, "unit": "mmol/L"}
    assert "M-spike unit 'mmol/L' is not g/dL, g/L or mg/dL" in _errors(data)


def test_shift_value_outside_the_assay_vocabulary_is_rejected() -> None:
    data = fhir_dict("mprotein_collection.json")
    _entry(data, "hs-dara")["valueString"] = "DETECTED"
    assert "HYDRASHIFT_DARATUMUMAB value 'DETECTED'" in _errors(data)


# -- orders -------------------------------------------------------------------------------


def test_service_requests_become_orders() -> None:
    msg = map_fhir(fhir_bytes("orders_batch.json"), NO_CODES)
    orders = [f for f in msg.facts if isinstance(f, Order)]
    assert [(o.code, o.priority) for o in orders] == [
        ("TYPE_AND_SCREEN", "stat"), ("CROSSMATCH", "routine"), ("RBC", "urgent"),
        ("PLT", "routine"), ("FFP", "routine"), ("EMERGENCY_RELEASE", "asap"),
        ("IFE", "routine"),
    ]
    ife = orders[-1]
    assert ife.suspected_cr is True  # reasonCode LF#suspected-cr; the ICD-10 reason is ignored
    assert ife.effective == datetime(2026, 4, 20, 9, 20, tzinfo=UTC)  # occurrenceDateTime
    assert not any(o.suspected_cr for o in orders[:-1])
    assert msg.warnings == ("ServiceRequest/cancelled: skipped (status revoked)",)


# -- local codes ---------------------------------------------------------------------------


def test_local_code_map_translates_codes_values_methods_and_components() -> None:
    lab = "http://hospital.example.org/lab"
    codes = CodeMaps(local_codes={f"{lab}|ABSC": "890-4", f"{lab}|NEG": "260385009",
                                  f"{lab}|DTT-CELLS": "DTT", f"{lab}|CELL1": "screen-cell-I"})
    msg = map_fhir(fhir_bytes("local_codes_observation.json"), codes)
    assert msg.mrn == "MRN123"  # untyped subject.identifier
    (screen,) = msg.facts
    assert isinstance(screen, AntibodyScreen)
    assert (screen.interpretation, screen.method, screen.cells) == ("negative", "DTT",
                                                                    {"I": "0"})


def test_without_the_local_map_the_local_code_is_named() -> None:
    errors = _errors(fhir_bytes("local_codes_observation.json"))
    assert "Observation/loc-1 code: unknown code 'http://hospital.example.org/lab|ABSC'" in errors


# -- bad input -----------------------------------------------------------------------------


def test_malformed_json() -> None:
    assert "body is not valid JSON" in _errors(b'{"resourceType": "Observation",')


def test_json_that_is_not_a_resource() -> None:
    assert "no resourceType" in _errors(b'[1, 2]')
    assert "'Banana' is not a FHIR R4 resource" in _errors({"resourceType": "Banana"})


def test_invalid_fhir_names_resource_and_field() -> None:
    data = fhir_dict("mprotein_collection.json")
    _entry(data, "mspike")["valueQuantity"]["value"] = "about two"
    errors = _errors(data)
    assert "invalid FHIR Bundle entry 1 (Observation/mspike): valueQuantity.value" in errors


def test_invalid_single_resource_names_the_field() -> None:
    data = fhir_dict("medication_administration.json")
    data["dosage"]["route"]["colour"] = "blue"
    assert "invalid FHIR MedicationAdministration: dosage.route.colour" in _errors(data)


def test_unknown_observation_code_names_the_code() -> None:
    data = fhir_dict("antibody_screen_message.json")
    _entry(data, "screen-1")["code"]["coding"][0]["code"] = "2345-7"
    assert "unknown code 'http://loinc.org|2345-7'" in _errors(data)


def test_unknown_component_code_names_the_code() -> None:
    data = fhir_dict("antibody_screen_message.json")
    _entry(data, "screen-1")["component"].append(
        {"code": {"coding": [{"system": LF, "code": "cell-IV"}]}, "valueString": "0"})
    assert f"component 5: unknown code '{LF}|cell-IV'" in _errors(data)


def test_no_mrn() -> None:
    data = fhir_dict("transfusion_procedure.json")
    data["subject"] = {"reference": "Patient/unknown"}
    assert "no patient MRN" in _errors(data)


def test_patient_without_mr_identifier_gives_no_mrn() -> None:
    data = fhir_dict("serology_transaction.json")
    patient = data["entry"][0]["resource"]
    patient["identifier"] = [i for i in patient["identifier"] if "type" not in i]
    assert "no patient MRN" in _errors(data)


def test_two_patients_in_one_message_are_rejected() -> None:
    data = fhir_dict("transfusion_procedure.json")
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": data},
        {"resource": {"resourceType": "Patient", "identifier": [
            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                  "code": "MR"}]}, "value": "OTHER9"}]}}]}
    errors = _errors(bundle)
    assert "more than one patient MRN" in errors
    assert "OTHER9 (Patient)" in errors and "MRN123 (Procedure/tx-1.subject)" in errors


def test_missing_clinical_time() -> None:
    data = fhir_dict("antibody_screen_message.json")
    obs = _entry(data, "screen-1")
    del obs["effectiveDateTime"], obs["issued"]
    assert "Observation/screen-1: no clinical time" in _errors(data)


def test_order_without_time() -> None:
    data = fhir_dict("orders_batch.json")
    del _entry(data, "xm")["authoredOn"]
    assert "ServiceRequest/xm: no clinical time" in _errors(data)


def test_message_with_nothing_labflow_reads() -> None:
    data = {"resourceType": "Bundle", "type": "collection",
            "entry": [fhir_dict("serology_transaction.json")["entry"][0]]}
    assert "carries no result, order or therapy" in _errors(data)


def test_unsupported_bundle_type() -> None:
    data = fhir_dict("mprotein_collection.json")
    data["type"] = "searchset"
    assert "Bundle.type 'searchset' is not supported" in _errors(data)


def test_mapping_error_carries_mrn_when_known() -> None:
    data = fhir_dict("orders_batch.json")
    del _entry(data, "xm")["authoredOn"]
    with pytest.raises(MappingError) as info:
        _map(data)
    assert (info.value.mrn, info.value.message_type) == ("MRN123", "Bundle/batch")


def test_local_code_map_can_name_the_agent() -> None:
    data = fhir_dict("medication_request.json")
    data["medicationCodeableConcept"] = {"coding": [{"system": "urn:hosp:rx", "code": "SARC"}]}
    codes = CodeMaps(local_codes={"urn:hosp:rx|SARC": "isatuximab"})
    (fact,) = _map(data, codes).facts
    assert isinstance(fact, Therapy) and fact.agent == "isatuximab"
