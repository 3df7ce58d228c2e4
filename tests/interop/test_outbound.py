"""Outbound FHIR validates against the R4B models; outbound HL7 against hl7apy's v2.5."""

from __future__ import annotations

import json
from typing import Any

import hl7
import pytest
from fhir.resources.R4B import get_fhir_model_class
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from labflow.interop.fhir_out import RULE_EXT, render_fhir
from labflow.interop.hl7_out import render_hl7
from labflow.interop.render import render
from labflow.interop.terminology import LF

EXPLANATION = "Panreactive screen | anti-CD38 ^ DTT & K~neg \\ see R-D1\nsecond line"


def _event(name: str, code: str = "DTT_ANTIBODY_SCREEN", **extra: Any) -> dict[str, Any]:
    return {"event": name, "event_id": "3f1c2a9e-5b7d-4c1e-9a2f-1b2c3d4e5f60",
            "occurred_at": "2026-05-01T10:00:00+02:00", "patient": {"mrn": "MRN123"},
            "code": code, "status": "requested", "rules": ["R-D1", "R-C1"],
            "explanation": EXPLANATION, "decision_id": "dec-42", **extra}


ALL = ["flag.raised", "flag.resolved", "requirement.added", "requirement.removed",
       "reflex.requested", "decision.recorded"]


@pytest.mark.parametrize("name", ALL)
def test_fhir_output_is_a_valid_r4_resource_for_the_patient(name: str) -> None:
    resource = render_fhir(_event(name))
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)  # raises if invalid
    assert resource["subject"]["identifier"]["value"] == "MRN123"
    assert resource["subject"]["identifier"]["type"]["coding"][0]["code"] == "MR"
    rules = [e["valueString"] for e in resource["extension"] if e["url"] == RULE_EXT]
    assert rules == ["R-D1", "R-C1"]


def test_flags_and_requirements_are_flags_with_status() -> None:
    raised = render_fhir(_event("flag.raised", "IAT_INTERFERENCE_SUSPECTED"))
    assert raised["resourceType"] == "Flag" and raised["status"] == "active"
    assert raised["code"]["coding"][0] == {"system": LF, "code": "IAT_INTERFERENCE_SUSPECTED",
                                           "display": "IAT INTERFERENCE SUSPECTED"}
    assert raised["category"][0]["coding"][0]["code"] == "lab"
    resolved = render_fhir(_event("flag.resolved", "IAT_INTERFERENCE_SUSPECTED"))
    assert resolved["status"] == "inactive" and "end" in resolved["period"]
    req = render_fhir(_event("requirement.added", "ANTIGEN_NEGATIVE:E"))
    assert (req["resourceType"], req["status"]) == ("Flag", "active")
    assert req["code"]["coding"][0]["code"] == "ANTIGEN_NEGATIVE:E"
    assert render_fhir(_event("requirement.removed", "K_NEGATIVE_RBC"))["status"] == "inactive"


def test_reflex_is_an_active_service_request_order() -> None:
    sr = render_fhir(_event("reflex.requested"))
    assert (sr["resourceType"], sr["status"], sr["intent"]) == ("ServiceRequest", "active",
                                                                "order")
    assert sr["code"]["coding"][0]["code"] == "DTT_ANTIBODY_SCREEN"
    assert sr["authoredOn"] == "2026-05-01T10:00:00+02:00"
    assert sr["note"][0]["text"] == EXPLANATION


def test_decision_is_an_observation_with_rules_and_explanation() -> None:
    obs = render_fhir(_event("decision.recorded"))
    assert obs["resourceType"] == "Observation" and obs["valueString"] == EXPLANATION
    assert {"system": "http://labflow.example.org/fhir/decision-id",
            "value": "dec-42"} in obs["identifier"]
    assert [c["valueString"] for c in obs["component"]] == ["R-D1", "R-C1",
                                                           "DTT_ANTIBODY_SCREEN"]


def test_explanation_is_escaped_in_the_narrative() -> None:
    div = render_fhir(_event("flag.raised", explanation="<b>K</b> & E"))["text"]["div"]
    assert "&lt;b&gt;K&lt;/b&gt; &amp; E" in div


@pytest.mark.parametrize("name", ALL)
def test_hl7_output_validates_against_v25(name: str) -> None:
    text = render_hl7(_event(name))
    strict = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert strict.validate()
    expected = "OML_O21" if name == "reflex.requested" else "ORU_R01"
    assert strict.name == expected


def test_reflex_order_is_oml_with_obr4_code() -> None:
    msg = hl7.parse(render_hl7(_event("reflex.requested"), receiving_app="LIS",
                               receiving_facility="HOSP"))
    msh = msg.segment("MSH")
    assert str(msh[9]) == "OML^O21^OML_O21"
    assert (str(msh[5]), str(msh[6])) == ("LIS", "HOSP")
    assert len(str(msh[10])) <= 20
    assert msg.segment("PID").extract_field(field_num=3) == "MRN123"
    assert msg.segment("PID").extract_field(field_num=3, component_num=5) == "MR"
    assert str(msg.segment("ORC")[1]) == "NW"
    assert str(msg.segment("OBR")[4]) == "DTT_ANTIBODY_SCREEN^DTT ANTIBODY SCREEN^LF"
    notes = [n.extract_field(field_num=3) for n in msg.segments("NTE")]
    assert notes == [EXPLANATION.replace("\n", "\r"), "Rules: R-D1, R-C1"]


def test_interpretive_comment_is_oru_with_tx_explanation() -> None:
    text = render_hl7(_event("flag.raised", "IAT_INTERFERENCE_SUSPECTED", status="open"))
    msg = hl7.parse(text)
    assert str(msg.segment("MSH")[9]) == "ORU^R01^ORU_R01"
    first, explanation, rules = msg.segments("OBX")
    assert str(first[3]) == "IAT_INTERFERENCE_SUSPECTED^IAT INTERFERENCE SUSPECTED^LF"
    assert str(first[5]) == "open^open^LF"
    assert str(explanation[2]) == "TX"
    # every delimiter in the text is escaped: one segment, the text reads back unchanged
    assert explanation.extract_field(field_num=5) == EXPLANATION.replace("\n", "\r")
    assert str(rules[5]) == "R-D1~R-C1"


def test_redelivery_has_the_same_control_id() -> None:
    a, b = render_hl7(_event("flag.raised")), render_hl7(_event("flag.raised"))
    assert hl7.parse(a).segment("MSH")[10] == hl7.parse(b).segment("MSH")[10]


def test_render_by_webhook_format() -> None:
    body, ctype = render(_event("reflex.requested"), "fhir")
    assert ctype == "application/fhir+json"
    assert json.loads(body)["resourceType"] == "ServiceRequest"
    body, ctype = render(_event("reflex.requested"), "hl7v2")
    assert ctype == "application/hl7-v2" and body.startswith(b"MSH|^~\\&|LABFLOW")
    body, ctype = render(_event("reflex.requested"), "json")
    assert json.loads(body)["patient"] == {"mrn": "MRN123"}


def test_invalid_event_is_rejected() -> None:
    with pytest.raises(ValueError, match="invalid outbound event: event"):
        render_fhir({**_event("flag.raised"), "event": "flag.exploded"})
