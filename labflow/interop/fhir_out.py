"""Outbound FHIR R4 (R4B models): Flag for flags and requirements, ServiceRequest for reflex
orders, Observation (code LF#decision) for a recorded decision.

Rule ids travel as `extension` RULE_EXT (one valueString per rule): no core element holds them.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.servicerequest import ServiceRequest

from labflow.interop.outbound import ACTIVATING, OutboundEvent, parse_event
from labflow.interop.terminology import LF, V2_0203

RULE_EXT = "http://labflow.example.org/fhir/StructureDefinition/rule-id"
EVENT_EXT = "http://labflow.example.org/fhir/StructureDefinition/event"
EVENT_ID_SYSTEM = "http://labflow.example.org/fhir/event-id"
DECISION_ID_SYSTEM = "http://labflow.example.org/fhir/decision-id"
_FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"


def render_fhir(event: Mapping[str, Any] | OutboundEvent) -> dict[str, Any]:
    """The validated FHIR resource for an outbound event, as a JSON-ready dict."""
    ev = parse_event(event)
    if ev.event == "reflex.requested":
        resource: Any = ServiceRequest.model_validate(_service_request(ev))
    elif ev.event == "decision.recorded":
        resource = Observation.model_validate(_decision(ev))
    else:
        resource = Flag.model_validate(_flag(ev))
    result: dict[str, Any] = resource.model_dump(mode="json", exclude_none=True)
    return result


def _common(ev: OutboundEvent) -> dict[str, Any]:
    return {
        "identifier": [{"system": EVENT_ID_SYSTEM, "value": ev.event_id}],
        "extension": [{"url": EVENT_EXT, "valueCode": ev.event}]
        + [{"url": RULE_EXT, "valueString": rule} for rule in ev.rules],
        "subject": {"identifier": {"type": {"coding": [{"system": V2_0203, "code": "MR"}]},
                                   "value": ev.patient.mrn}},
        "text": {"status": "generated",
                 "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{html.escape(ev.display)}'
                        f"</p><p>{html.escape(ev.explanation)}</p></div>"},
    }


def _code(ev: OutboundEvent) -> dict[str, Any]:
    return {"coding": [{"system": LF, "code": ev.code, "display": ev.display}],
            "text": ev.display}


def _flag(ev: OutboundEvent) -> dict[str, Any]:
    active = ev.event in ACTIVATING
    category = "safety" if ev.event.startswith("requirement.") else "lab"
    return {
        "resourceType": "Flag", **_common(ev),
        "status": "active" if active else "inactive",
        "category": [{"coding": [{"system": _FLAG_CATEGORY, "code": category}]}],
        "code": _code(ev),
        "period": {"start": ev.occurred_at.isoformat()} if active
        else {"end": ev.occurred_at.isoformat()},
    }


def _service_request(ev: OutboundEvent) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest", **_common(ev),
        "status": "active", "intent": "order", "priority": "routine",
        "code": _code(ev), "authoredOn": ev.occurred_at.isoformat(),
        "note": [{"text": ev.explanation}] if ev.explanation else None,
    }


def _decision(ev: OutboundEvent) -> dict[str, Any]:
    components = [{"code": {"coding": [{"system": LF, "code": "rule"}]}, "valueString": rule}
                  for rule in ev.rules]
    if ev.code:
        components.append({"code": {"coding": [{"system": LF, "code": "code"}]},
                           "valueString": ev.code})
    common = _common(ev)
    if ev.decision_id:
        common["identifier"].append({"system": DECISION_ID_SYSTEM, "value": ev.decision_id})
    return {
        "resourceType": "Observation", **common,
        "status": "final",
        "code": {"coding": [{"system": LF, "code": "decision", "display": "labflow decision"}]},
        "effectiveDateTime": ev.occurred_at.isoformat(),
        "issued": ev.occurred_at.isoformat(),
        "valueString": ev.explanation or ev.display,
        "component": components or None,
    }
