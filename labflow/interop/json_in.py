"""labflow's own JSON inbound schema (`LabflowEvent`) -> `MappedMessage`."""

from __future__ import annotations

from pydantic import ValidationError

from labflow.interop.clock import aware, zone
from labflow.interop.model import LabflowEvent, MappedMessage, MappingError


def map_json(body: bytes, timezone: str = "UTC") -> MappedMessage:
    """Validate a `LabflowEvent`; MappingError lists one `loc: msg` line per problem.

    Naive `effective` times are read in `timezone`, as for HL7 v2, so facts from every
    format compare with each other.
    """
    try:
        event = LabflowEvent.model_validate_json(body)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
                 for err in exc.errors()]
        raise MappingError(lines, message_type="labflow.facts") from None
    tz = zone(timezone)
    facts = tuple(
        f if f.effective.tzinfo else f.model_copy(update={"effective": aware(f.effective, tz)})
        for f in event.facts
    )
    return MappedMessage(mrn=event.patient.mrn, message_type=event.message_type, facts=facts,
                         accession=event.accession)
