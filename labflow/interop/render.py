"""Outbound renderers by webhook `format` (contract section 1: json | fhir | hl7v2)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from labflow.interop.fhir_out import render_fhir
from labflow.interop.hl7_out import render_hl7
from labflow.interop.outbound import OutboundEvent, parse_event

__all__ = ["OutboundEvent", "render", "render_fhir", "render_hl7"]

CONTENT_TYPES = {"json": "application/json", "fhir": "application/fhir+json",
                 "hl7v2": "application/hl7-v2"}


def render(event: Mapping[str, Any], fmt: str) -> tuple[bytes, str]:
    """(body, content type) of an outbound event in a webhook's format."""
    if fmt == "fhir":
        return json.dumps(render_fhir(event)).encode(), CONTENT_TYPES[fmt]
    if fmt == "hl7v2":
        return render_hl7(event).encode(), CONTENT_TYPES[fmt]
    if fmt == "json":
        return parse_event(event).model_dump_json().encode(), CONTENT_TYPES[fmt]
    raise ValueError(f"unknown outbound format {fmt!r} (json, fhir or hl7v2)")
