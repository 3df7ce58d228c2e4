"""Pick the mapper for a body by its content type."""

from __future__ import annotations

from labflow.interop.fhir_in import map_fhir
from labflow.interop.hl7_in import map_hl7
from labflow.interop.json_in import map_json
from labflow.interop.model import CodeMaps, MappedMessage, MappingError

FHIR = "application/fhir+json"
HL7 = "application/hl7-v2"
JSON = "application/json"
_ALIASES = {
    "application/fhir+json": FHIR,
    "application/json+fhir": FHIR,
    "application/hl7-v2": HL7,
    "x-application/hl7-v2+er7": HL7,
    "application/hl7-v2+er7": HL7,
    "application/json": JSON,
}


def media_type(content_type: str | None) -> str | None:
    """The canonical media type we handle, or None if we do not accept it."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(base)


def map_body(content_type: str, body: bytes, codes: CodeMaps) -> MappedMessage:
    kind = media_type(content_type)
    if kind == FHIR:
        return map_fhir(body, codes)
    if kind == HL7:
        return map_hl7(body, codes)
    if kind == JSON:
        return map_json(body)
    raise MappingError([f"unsupported content type {content_type!r}"])
